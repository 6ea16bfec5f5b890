"""The directed (arborescence) bound of a pricing problem, against enumeration: on small random
plot graphs every admissible farmland set, with its canonical arborescence, satisfies every row
the separators produce at any point, and the bound never exceeds the enumerated optimum."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components

from optimizer.blocks.cuts import FarmlandGraph, check_plan
from optimizer.blocks.master.directed import Arborescence, directed_bound
from optimizer.blocks.rule import Rule, RulePart
from optimizer.model.kpi import FARMLAND
from solvers import get_backend
from solvers.base import SolveOptions
from solvers.model import ArrayModel


def _case(seed: int, n: int = 11) -> tuple[ArrayModel, Rule, np.ndarray, np.ndarray]:
    """A random planar-ish plot graph (a grid with some edges dropped and some diagonals), areas
    5-45 mu, a few plots touching farmland; the pricing problem over farmland x_v and forest
    g_v, x_v + g_v <= 1, costs of either sign. Returns (model, rule, farmland cost, forest)."""
    rng = np.random.default_rng(seed)
    w = 4
    pos = np.arange(n)
    pairs = [(i, j) for i in pos for j in pos if i < j and (
        (j == i + 1 and j % w) or j == i + w or (j == i + w + 1 and j % w and rng.random() < 0.3))]
    pairs = [p for p in pairs if rng.random() < 0.85]
    i, j = np.array(pairs).T if pairs else (np.zeros(0, int), np.zeros(0, int))
    adj = sp.csr_matrix((np.ones(2 * len(i)), (np.r_[i, j], np.r_[j, i])), shape=(n, n))
    root = rng.random(n) < 0.15
    graph = FarmlandGraph(adj, rng.uniform(5, 45, n), root, 100.0)
    cf, cg = rng.normal(-1, 3, n), rng.normal(1, 2, n)
    A = sp.hstack([sp.eye(n), sp.eye(n)], format="csr")
    model = ArrayModel(c=np.r_[cf, cg], A=A, row_lower=np.full(n, -np.inf),
                       row_upper=np.ones(n), col_lower=np.zeros(2 * n),
                       col_upper=np.ones(2 * n), integrality=np.ones(2 * n, bool))
    return model, Rule([RulePart("farmland", graph, np.arange(n), pos, FARMLAND)]), cf, cg


def _admissible(rule: Rule) -> list[np.ndarray]:
    g = rule.parts[0].graph
    sets = (np.array(bits, bool) for bits in itertools.product((False, True), repeat=g.n))
    return [s for s in sets if check_plan(g, s)[0]]


def _canonical(arb: Arborescence, chosen: np.ndarray) -> np.ndarray:
    """The extended vector of a farmland set: each block rooted at its first plot touching
    farmland (else its first plot), spanned by a breadth-first tree."""
    g = arb.graph
    z = np.zeros(arb.num_cols)
    z[arb.x[chosen]] = 1.0
    sub = sp.csr_matrix(g.adj.multiply(np.outer(chosen, chosen)))
    sub.eliminate_zeros()
    _, lab = connected_components(sub, directed=False)
    arc = {(int(u), int(v)): a for a, (u, v) in enumerate(zip(arb.tail, arb.head, strict=True))}
    for b in np.unique(lab[chosen]):
        members = np.flatnonzero(chosen & (lab == b))
        rooted = members[g.root[members]]
        top = int(rooted[0] if len(rooted) else members[0])
        z[arb.r[top]] = 1.0
        _, pred = breadth_first_order(sub, top, directed=False)
        for v in members[members != top]:
            z[arb.f[arc[(int(pred[v]), int(v))]]] = 1.0
    return z


def _random_points(arb: Arborescence, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    pts = []
    for _ in range(count):
        z = np.zeros(arb.num_cols)
        z[arb.x] = rng.random(arb.n) * (rng.random(arb.n) < 0.8)
        z[arb.r] = rng.random(arb.n) * rng.random() * z[arb.x]
        z[arb.f] = rng.random(arb.na) * (rng.random(arb.na) < 0.5) * z[arb.x[arb.tail]]
        pts.append(z)
    return pts


@pytest.mark.parametrize("seed", range(12))
def test_every_cut_holds_for_every_admissible_plan_with_its_canonical_arborescence(
        seed: int) -> None:
    model, rule, _, _ = _case(seed)
    arb = Arborescence(model, rule.parts[0])
    ext = arb.model(model)
    rng = np.random.default_rng(100 + seed)
    cuts = [c for z in _random_points(arb, rng, 60)
            for c in (arb.reach_cuts(z), arb.small_set_cuts(z)) if c.shape[0]]
    assert cuts, "the random points should break some rows"
    rows = sp.vstack(cuts, format="csr")
    plans = _admissible(rule)
    assert len(plans) > 1
    for chosen in plans:
        z = _canonical(arb, chosen)
        z[model.num_cols // 2 + np.flatnonzero(~chosen)] = 0.0  # (no forest: rows hold anyway)
        act = ext.A @ z
        assert (act >= ext.row_lower - 1e-9).all() and (act <= ext.row_upper + 1e-9).all()
        assert (rows @ z <= 1e-9).all(), np.flatnonzero(rows @ z > 1e-9)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("purge", [0, 1])
def test_the_directed_bound_is_at_most_the_enumerated_optimum_and_at_least_the_lp(
        seed: int, purge: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """With slack cut rows deleted every round (purge 1) or never (0)."""
    import optimizer.blocks.master.directed as directed

    monkeypatch.setattr(directed, "PURGE_EVERY", purge)
    model, rule, cf, cg = _case(seed)
    best = min(float(cf[s].sum() + np.minimum(cg[~s], 0.0).sum()) for s in _admissible(rule))
    bound, history, point = directed_bound(model, rule, 30.0)
    relaxed = replace(model, integrality=np.zeros(model.num_cols, bool))
    lp = get_backend("highs").solve(relaxed, SolveOptions()).objective
    assert bound is not None and history and bound == max(history)
    assert lp - 1e-6 <= bound <= best + 1e-6
    # the point comes from the best round: the plots' columns at that LP's optimum
    assert point is not None and point.shape == (model.num_cols,)
    assert float(model.c @ point) + model.offset == pytest.approx(bound, abs=1e-6)


def test_the_directed_bound_reaches_the_optimum_of_a_path() -> None:
    """Path 0-1-2-3, 30 mu each, none touching farmland: only all four (120 mu) or none is
    admissible. Farmland costs -2, 3, 3, -2: the optimum is 0 (none), the LP without the rule
    -4 (the two ends); the rows must lift it to 0."""
    n = 4
    i = np.arange(n - 1)
    adj = sp.csr_matrix((np.ones(2 * (n - 1)), (np.r_[i, i + 1], np.r_[i + 1, i])), (n, n))
    g = FarmlandGraph(adj, np.full(n, 30.0), np.zeros(n, bool), 100.0)
    rule = Rule([RulePart("farmland", g, np.arange(n), np.arange(n), FARMLAND)])
    model = ArrayModel(c=np.array([-2.0, 3.0, 3.0, -2.0]), A=sp.csr_matrix((0, n)),
                       row_lower=np.zeros(0), row_upper=np.zeros(0), col_lower=np.zeros(n),
                       col_upper=np.ones(n), integrality=np.ones(n, bool))
    bound, _, _ = directed_bound(model, rule, 30.0)
    assert bound == pytest.approx(0.0, abs=1e-6)
