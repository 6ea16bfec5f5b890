"""Proof by enumeration of the contiguity machinery (optimizer/blocks/cuts.py, flow.py).

Independent truth: a bitmask dynamic programme over ALL subsets of each small graph (component of
the lowest chosen plot by flood fill on bitmasks, then adm[m] = ok(C(m)) and adm[m minus C(m)]),
cross-checked against networkx. The library is run on all subsets at once by handing it one
block-diagonal graph holding a copy of the small graph per subset (kron(I, adj)).

What is enumerated:
- the rule (check_plan, violating_components): every subset of 3x3, 4x4, 5x4 grids and a 12-plot
  irregular graph, against the bitmask truth; networkx on all of 3x3 / irregular and samples;
- integer cuts: every row generated for every inadmissible subset cuts that subset off, and every
  distinct row is satisfied by every admissible subset (2^16 / 2^20 of them);
- fractional cuts: rows from random LP points and from real LP relaxations, same validity check;
- presolve fixings and singleton cuts; the priority tier; forest (min_size = inf) connectivity;
- flow formulation with f fixed: all 512 subsets of 3x3 and 150 random subsets of each larger
  graph (half admissible) are feasible iff admissible (65k MIP solves would take minutes);
- optimum of min cost s.t. gain >= need with the rule, by flow MIP (HiGHS), row generation
  (HiGHS), SCIP with the lazy separator, equal to the brute-force optimum over all subsets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import shapely

from optimizer.blocks.cuts import (
    FarmlandGraph,
    check_plan,
    component_cuts,
    forest_graph,
    fractional_cuts,
    make_separator,
    presolve_cuts,
    priority_tier,
    violating_components,
)
from optimizer.blocks.flow import add_flow_formulation
from optimizer.model.compactness import add_boundary_penalty, add_isolation_penalty
from solvers import ArrayModel, SolveOptions, Termination, get_backend

# ---------------------------------------------------------------- graphs


def grid(rows: int, cols: int) -> sp.csr_matrix:
    """Rook adjacency of a rows x cols grid, plot id = r * cols + c."""
    idx = np.arange(rows * cols).reshape(rows, cols)
    e = np.concatenate(
        [np.c_[idx[:, :-1].ravel(), idx[:, 1:].ravel()], np.c_[idx[:-1].ravel(), idx[1:].ravel()]]
    )
    return edges_to_adj(e, rows * cols)


def edges_to_adj(e: np.ndarray, n: int) -> sp.csr_matrix:
    e = np.asarray(e)
    A = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    return (A + A.T).tocsr()


# a hand-drawn parcel map: a long strip 0-1-2-3, a fan around 5, a cycle 7-8-9-10, a pendant 11
IRREGULAR_EDGES = np.array(
    [(0, 1), (1, 2), (2, 3), (1, 4), (4, 5), (5, 2), (5, 6), (5, 7), (6, 7), (7, 8), (8, 9),
     (9, 10), (10, 7), (3, 6), (9, 11)]
)


@dataclass
class Case:
    name: str
    adj: sp.csr_matrix
    area: np.ndarray
    root: np.ndarray
    min_size: float

    @property
    def n(self) -> int:
        return self.adj.shape[0]

    def graph(self) -> FarmlandGraph:
        return FarmlandGraph(self.adj, self.area, self.root, self.min_size)


def _roots(n: int, which: list[int]) -> np.ndarray:
    r = np.zeros(n, dtype=bool)
    r[which] = True
    return r


def make_cases() -> list[Case]:
    rng = np.random.default_rng(7)
    return [
        Case("3x3", grid(3, 3), np.full(9, 40.0), _roots(9, [0]), 100.0),
        Case("4x4", grid(4, 4), rng.integers(15, 70, 16).astype(float), _roots(16, [0, 15]), 100.0),
        Case("4x4-noroot", grid(4, 4), rng.integers(20, 50, 16).astype(float), _roots(16, []),
             90.0),
        Case("5x4", grid(5, 4), rng.integers(10, 60, 20).astype(float), _roots(20, [3, 16]),
             100.0),
        # plots of 100+ mu stand alone: no cut may ever force them to have a neighbour
        Case("4x4-bigplots", grid(4, 4), np.where(np.arange(16) % 5 == 2, 130.0,
                                                  rng.integers(15, 45, 16)).astype(float),
             _roots(16, [12]), 100.0),
        Case("irregular", edges_to_adj(IRREGULAR_EDGES, 12),
             np.array([30, 10, 25, 60, 45, 20, 35, 15, 50, 40, 5, 70], float),
             _roots(12, [0, 8]), 100.0),
    ]


CASES = make_cases()
BY_NAME = {c.name: c for c in CASES}

# ---------------------------------------------------------------- bitmask truth

_CHUNK = 10  # lookup tables over 10-bit slices of a subset mask


def _tables(values: np.ndarray, reduce: str) -> list[tuple[int, np.ndarray]]:
    """Per 10-bit slice, table[s] = sum (or OR) of values[j] over the bits j of s."""
    out = []
    for start in range(0, len(values), _CHUNK):
        k = min(_CHUNK, len(values) - start)
        s = np.arange(1 << k, dtype=np.uint32)
        bits = ((s[:, None] >> np.arange(k, dtype=np.uint32)) & 1).astype(bool)
        v = values[start : start + k]
        if reduce == "sum":
            t = bits @ v
        else:
            t = np.bitwise_or.reduce(np.where(bits, v, 0), axis=1).astype(np.uint32)
        out.append((start, t))
    return out


def _apply(tables: list[tuple[int, np.ndarray]], m: np.ndarray) -> np.ndarray:
    out = None
    for start, t in tables:
        v = t[(m >> np.uint32(start)) & np.uint32((1 << _CHUNK) - 1)]
        out = v if out is None else (out + v if t.dtype.kind == "f" else out | v)
    return out


def neighbour_masks(adj: sp.csr_matrix) -> np.ndarray:
    return np.array(
        [sum(1 << int(j) for j in adj.indices[adj.indptr[i] : adj.indptr[i + 1]])
         for i in range(adj.shape[0])], dtype=np.uint32)


def truth(adj: sp.csr_matrix, area: np.ndarray, root: np.ndarray, min_size: float) -> np.ndarray:
    """adm[m] for every subset mask m of the plots (bit i = plot i is farmland)."""
    n = adj.shape[0]
    m = np.arange(1 << n, dtype=np.uint32)
    nbr = _tables(neighbour_masks(adj), "or")
    comp = m & (~m + np.uint32(1))  # lowest chosen plot
    while True:
        grown = (comp | _apply(nbr, comp)) & m
        if np.array_equal(grown, comp):
            break
        comp = grown
    root_mask = np.uint32(sum(1 << int(i) for i in np.flatnonzero(root)))
    ok = ((comp & root_mask) != 0) | (_apply(_tables(area, "sum"), comp) >= min_size)
    ok[0] = True
    rest = m ^ comp
    adm = ok.copy()
    while True:  # adm[m] = ok[m] and adm[m without its first block]
        new = ok & adm[rest]
        if np.array_equal(new, adm):
            return adm
        adm = new


_TRUTH: dict[str, np.ndarray] = {}


def case_truth(case: Case) -> np.ndarray:
    if case.name not in _TRUTH:
        _TRUTH[case.name] = truth(case.adj, case.area, case.root, case.min_size)
    return _TRUTH[case.name]


def bits(masks: np.ndarray, n: int) -> np.ndarray:
    return ((masks[:, None] >> np.arange(n, dtype=np.uint32)) & 1).astype(bool)


def networkx_admissible(case: Case, chosen: np.ndarray) -> bool:
    G = nx.Graph()
    G.add_nodes_from(np.flatnonzero(chosen).tolist())
    coo = sp.triu(case.adj).tocoo()
    G.add_edges_from((int(i), int(j)) for i, j in zip(coo.row, coo.col, strict=True)
                     if chosen[i] and chosen[j])
    return all(
        any(case.root[list(c)]) or case.area[list(c)].sum() >= case.min_size
        for c in nx.connected_components(G)
    )


def test_truth_matches_networkx() -> None:
    """The bitmask truth itself, against networkx: all subsets of the small graphs, samples of
    the larger ones."""
    rng = np.random.default_rng(0)
    for case in CASES:
        adm = case_truth(case)
        masks = np.arange(1 << case.n) if case.n <= 12 else rng.integers(0, 1 << case.n, 400)
        for m in masks:
            chosen = bits(np.array([m], np.uint32), case.n)[0]
            assert adm[m] == networkx_admissible(case, chosen), (case.name, m)


# ---------------------------------------------------------------- library on all subsets


_BATCHED: dict[tuple[str, int], FarmlandGraph] = {}


def batched(case: Case, masks: np.ndarray) -> tuple[FarmlandGraph, np.ndarray]:
    """One graph with a copy of the case per subset, and the concatenated choice vector."""
    k = len(masks)
    if (case.name, k) not in _BATCHED:
        adj = sp.kron(sp.identity(k, format="csr"), case.adj, format="csr")
        g = FarmlandGraph(adj, np.tile(case.area, k), np.tile(case.root, k), case.min_size)
        _BATCHED.clear()  # one at a time: they are large
        _BATCHED[(case.name, k)] = g
    return _BATCHED[(case.name, k)], bits(masks, case.n).ravel()


def unique_keys(b: np.ndarray, nmask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    key = np.unique((b.astype(np.uint64) << np.uint64(32)) | nmask.astype(np.uint64))
    return (key >> np.uint64(32)).astype(np.int64), (key & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def chunks(case: Case, size: int = 1 << 16) -> list[np.ndarray]:
    total = 1 << case.n
    return [np.arange(s, min(s + size, total), dtype=np.uint32) for s in range(0, total, size)]


def row_keys(A: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(b, N mask) of each row x_b - x(N) <= 0, plot ids taken modulo the copy size n."""
    A = A.tocsr()
    A.sort_indices()
    coo = A.tocoo()
    b = np.zeros(A.shape[0], dtype=np.int64)
    pos = coo.data > 0
    assert np.bincount(coo.row[pos], minlength=A.shape[0]).max(initial=1) == 1
    b[coo.row[pos]] = coo.col[pos] % n
    nmask = np.zeros(A.shape[0], dtype=np.uint32)
    np.bitwise_or.at(nmask, coo.row[~pos], (np.uint32(1) << (coo.col[~pos] % n).astype(np.uint32)))
    assert np.allclose(coo.data[~pos], -1.0) and np.allclose(coo.data[pos], 1.0)
    return b, nmask


def assert_valid(
    case: Case, b: np.ndarray, nmask: np.ndarray, adm: np.ndarray | None = None
) -> None:
    """No admissible subset has plot b and none of N: every row x_b <= x(N) holds on all of them
    (``adm``: the admissible flags per mask, default the case's truth)."""
    adm = case_truth(case) if adm is None else adm
    adm_masks = np.flatnonzero(adm).astype(np.uint32)
    for bb, nm in zip(*unique_keys(b, nmask), strict=True):
        has_b = (adm_masks >> np.uint32(bb)) & 1
        cut_off = (has_b == 1) & ((adm_masks & np.uint32(nm)) == 0)
        assert not cut_off.any(), f"{case.name}: x_{bb} <= x({nm:b}) cuts off an admissible plan"


@pytest.mark.parametrize("name", list(BY_NAME))
def test_rule_and_integer_cuts_on_every_subset(name: str) -> None:
    """check_plan == truth on every subset; the integer separation cuts off every inadmissible
    subset (and only those); every distinct generated row is valid."""
    case = BY_NAME[name]
    adm = case_truth(case)
    n = case.n
    all_b, all_n = [], []
    for masks in chunks(case):
        g, chosen = batched(case, masks)
        ok, blocks, b_area, b_root = check_plan(g, chosen)
        bad_block = ~b_root & (b_area < case.min_size)
        plot_bad = np.zeros(g.n, dtype=bool)
        plot_bad[chosen] = bad_block[blocks[chosen]]
        got = ~plot_bad.reshape(len(masks), n).any(axis=1)
        np.testing.assert_array_equal(got, adm[masks])
        assert ok == adm[masks].all()

        comps = violating_components(g, chosen)
        cuts = component_cuts(g, comps, np.arange(g.n), num_cols=g.n)
        lhs = cuts.A @ chosen.astype(float)
        assert (lhs > cuts.upper).all()  # every row is violated by its own subset
        owner = (cuts.A.indices[cuts.A.indptr[:-1]]) // n  # row -> subset (all cols in one copy)
        has_cut = np.bincount(owner, minlength=len(masks)) > 0
        np.testing.assert_array_equal(has_cut, ~adm[masks])
        b, nm = unique_keys(*row_keys(cuts.A, n))
        all_b.append(b)
        all_n.append(nm)
    assert_valid(case, np.concatenate(all_b), np.concatenate(all_n))


def test_rule_on_networkx_samples() -> None:
    """check_plan and violating_components on single plans, against networkx."""
    rng = np.random.default_rng(1)
    for case in CASES:
        g = case.graph()
        for _ in range(150):
            chosen = rng.random(case.n) < rng.uniform(0.2, 0.8)
            ok, blocks, b_area, b_root = check_plan(g, chosen)
            assert ok == networkx_admissible(case, chosen)
            assert ((blocks >= 0) == chosen).all()
            comps = violating_components(g, chosen)
            assert (len(comps) == 0) == ok
            for s in comps:  # a violating component is a whole, connected, bad block
                assert len(np.unique(blocks[s])) == 1
                assert (blocks == blocks[s[0]]).sum() == len(s)
                assert not case.root[s].any() and case.area[s].sum() < case.min_size


def test_minimal_separator_is_not_valid() -> None:
    """Path root-a-b-c: for S = {b} (40 mu) the minimal b-root separator {a} gives x_b <= x_a,
    which cuts off the admissible plan {b, c} (120 mu >= 100). The library's row uses all of
    N(S) = {a, c} and keeps it."""
    case = Case("path", edges_to_adj(np.array([(0, 1), (1, 2), (2, 3)]), 4),
                np.array([10.0, 10.0, 40.0, 80.0]), _roots(4, [0]), 100.0)
    plan = np.array([False, False, True, True])
    assert check_plan(case.graph(), plan)[0]
    x = plan.astype(float)
    assert x[2] > x[1]  # the minimal-separator row x_b <= x_a is violated by an admissible plan
    cuts = component_cuts(case.graph(), [np.array([2])], np.arange(4))
    np.testing.assert_array_equal(cuts.A.toarray(), [[0, -1, 1, -1]])
    assert (cuts.A @ x <= cuts.upper).all()
    # with min_size = inf (pure rooted connectivity) the plan is inadmissible and x_b <= x_a holds
    # on every admissible plan
    inf_case = Case("path-inf", case.adj, case.area, case.root, np.inf)
    adm = case_truth(inf_case)
    assert not adm[0b1100]
    assert_valid(inf_case, np.array([2]), np.array([0b0010], np.uint32))


def test_l_shape_is_admitted() -> None:
    """Three 40-mu cells in an L on a 3x3 grid (no root): 120 mu, connected, admissible; no cut
    and no flow model forbids it (the shape a popular tool's contiguity constraint rejects)."""
    case = Case("3x3-noroot", grid(3, 3), np.full(9, 40.0), _roots(9, []), 100.0)
    g = case.graph()
    plan = np.zeros(9, dtype=bool)
    plan[[0, 1, 4]] = True  # (0,0) (0,1) (1,1)
    assert check_plan(g, plan)[0]
    assert violating_components(g, plan) == []
    assert make_separator(g, np.arange(9))(plan.astype(float), True) is None
    assert fractional_cuts(g, plan.astype(float), np.arange(9)).A.shape[0] == 0
    assert flow_feasible(g, plan)
    two = plan.copy()
    two[4] = False  # 80 mu: too small
    assert not check_plan(g, two)[0] and not flow_feasible(g, two)


# ---------------------------------------------------------------- fractional separation


def lp_points(case: Case, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Random fractional points with sparse support, plus integral inadmissible ones."""
    pts = []
    for _ in range(count):
        x = rng.random(case.n) * (rng.random(case.n) < rng.uniform(0.2, 0.7))
        if rng.random() < 0.3:
            x = (x > 0.3).astype(float)
        pts.append(x)
    return pts


@pytest.mark.parametrize("name", list(BY_NAME))
def test_fractional_cuts_are_valid_and_violated(name: str) -> None:
    case = BY_NAME[name]
    g = case.graph()
    rng = np.random.default_rng(2)
    bs, ns = [], []
    found = 0
    for x in lp_points(case, rng, 150):
        cuts = fractional_cuts(g, x, np.arange(case.n))
        if len(cuts):
            found += 1
            assert (cuts.A @ x > cuts.upper + 1e-7).all()  # only violated rows
            b, nm = row_keys(cuts.A, case.n)
            bs.append(b)
            ns.append(nm)
        chosen = x > 0.5
        if np.array_equal(x, chosen.astype(float)) and not check_plan(g, chosen)[0]:
            assert len(cuts) > 0  # integral and inadmissible: always separated
    assert found > 20
    assert_valid(case, np.concatenate(bs), np.concatenate(ns))


def test_fractional_vertex_cut_beyond_support_components() -> None:
    """A point whose support component is large (so support cuts do not apply) but where b hangs
    on a thin fractional neck: the max-flow stage finds x_b <= x(N(R)) with R inside a ball."""
    case = Case("3x3-noroot", grid(3, 3), np.full(9, 40.0), _roots(9, []), 100.0)
    x = np.zeros(9)
    x[[8, 5, 2, 1, 0]] = [1.0, 0.2, 1.0, 1.0, 1.0]  # 8 tied to the rest only through 5 and 7
    cuts = fractional_cuts(case.graph(), x, np.arange(9))
    b, nm = row_keys(cuts.A, 9)
    assert (8 in b) and len(cuts) > 0
    assert_valid(case, b, nm)


@pytest.mark.parametrize("name", ["4x4", "5x4", "irregular"])
def test_lp_cut_rounds_are_valid_and_raise_the_bound(name: str) -> None:
    """Cut rounds on real LP relaxations: every row generated is valid on all admissible plans,
    the LP bound never falls, never passes the brute-force optimum, and rises."""
    case = BY_NAME[name]
    g = case.graph()
    rng = np.random.default_rng(13)
    highs = get_backend("highs")
    bs, ns = [], []
    for _ in range(3):
        cost = np.round(rng.uniform(1.0, 10.0, case.n) * case.area, 3)
        gain = np.round(case.area * rng.uniform(0.0, 1.0, case.n), 3)
        need = float(np.round(gain.sum() * rng.uniform(0.15, 0.5), 3))
        best = brute_optimum(case, cost, gain, need)
        lp = dataclasses.replace(target_model(cost, gain, need), integrality=np.zeros(case.n, bool))
        bounds = []
        for _ in range(50):
            res = highs.solve(lp)
            bounds.append(res.objective)
            cuts = fractional_cuts(g, res.x, np.arange(case.n))
            if not len(cuts):
                break
            b, nm = row_keys(cuts.A, case.n)
            bs.append(b)
            ns.append(nm)
            lp = lp.add_rows(cuts.A, cuts.lower, cuts.upper, block="cuts")
        assert np.all(np.diff(bounds) >= -1e-7)
        assert bounds[-1] <= best + 1e-6
        assert bounds[-1] > bounds[0] + 1e-3  # measured: +10% to +95% of the LP bound
    assert_valid(case, np.concatenate(bs), np.concatenate(ns))


# ---------------------------------------------------------------- presolve, tiers, forest


@pytest.mark.parametrize("name", list(BY_NAME))
def test_presolve_fixings_and_cuts(name: str) -> None:
    """A plot is fixed iff no admissible plan (within the eligible plots) uses it; the
    singleton rows hold on every admissible plan."""
    case = BY_NAME[name]
    rng = np.random.default_rng(3)
    eligible = rng.random(case.n) < 0.8
    cuts, fix = presolve_cuts(case.graph(), np.arange(case.n), eligible)
    adm = case_truth(case)
    m = np.arange(1 << case.n, dtype=np.uint32)
    ineligible_mask = np.uint32(sum(1 << int(i) for i in np.flatnonzero(~eligible)))
    usable = adm & ((m & ineligible_mask) == 0)
    ever = bits(m[usable], case.n).any(axis=0)
    np.testing.assert_array_equal(fix, ~ever)
    b, nm = row_keys(cuts.A, case.n)
    small = ~fix & ~case.root & (case.area < case.min_size)
    np.testing.assert_array_equal(np.sort(b), np.flatnonzero(small))
    assert_valid(case, b, nm, usable)  # valid on plans within the eligible plots


def test_priority_tier_rule() -> None:
    """Tier blocks (components of chosen in-zone plots, adjacency within the zone) need a root
    or big_tier mu: check_plan on the tier graph vs the bitmask truth on the zone sub-graph, and
    the tier's cuts, lifted to the full plot columns, hold on every plan the tier admits."""
    base = BY_NAME["4x4"]
    rng = np.random.default_rng(4)
    priority = rng.random(base.n)
    g = FarmlandGraph(base.adj, base.area, base.root, 100.0, priority=priority, big_tier=150.0)
    tier, plots = priority_tier(g)
    np.testing.assert_array_equal(plots, np.flatnonzero(priority >= 0.5))
    sub = Case("tier", base.adj[plots][:, plots], base.area[plots], base.root[plots], 150.0)
    adm = case_truth(sub)
    for m in np.arange(1 << sub.n, dtype=np.uint32):
        chosen = bits(np.array([m]), sub.n)[0]
        assert check_plan(tier, chosen)[0] == adm[m]
        comps = violating_components(tier, chosen)
        cuts = component_cuts(tier, comps, plots, num_cols=base.n)  # columns = full plot ids
        full = np.zeros(base.n)
        full[plots[chosen]] = 1.0
        assert (len(cuts) > 0) == (not adm[m])
        assert (cuts.A @ full > 0).all()
    # the tier's flow formulation on the full plot columns admits exactly the tier-admissible
    # plans (plots outside the zone are chosen at random: they must not matter)
    highs = get_backend("highs")
    for m in rng.choice(1 << sub.n, 48, replace=False):
        full = rng.random(base.n) < 0.5
        full[plots] = bits(np.array([m], np.uint32), sub.n)[0]
        model = add_flow_formulation(feasibility_model(base.n, full), tier, plots,
                                     prefix="flow_tier")
        assert "flow_tier_balance" in model.row_blocks
        assert highs.solve(model).has_solution == adm[m]


def test_per_component_keeps_the_largest_plots() -> None:
    case = BY_NAME["irregular"]
    g = case.graph()
    comps = [np.array([1, 4, 5]), np.array([10, 11])]
    cuts = component_cuts(g, comps, np.arange(case.n), per_component=1)
    b, nm = row_keys(cuts.A, case.n)
    np.testing.assert_array_equal(b, [4, 11])  # areas 45 > 20 > 10 and 70 > 5
    full = component_cuts(g, comps, np.arange(case.n))
    assert len(full) == 5
    assert set(zip(*row_keys(full.A, case.n), strict=True)) >= set(zip(b, nm, strict=True))


def test_forest_connectivity_min_size_inf() -> None:
    """min_size = inf: blocks must touch existing forest/wedge; no patch roots in the flow."""
    base = BY_NAME["4x4"]
    g = forest_graph(base.adj, base.area, base.root)
    case = Case("forest", base.adj, base.area, base.root, np.inf)
    adm = case_truth(case)
    for masks in chunks(case):
        bg, chosen = batched(case, masks)
        comps = violating_components(bg, chosen)
        owner = np.array([s[0] // case.n for s in comps], dtype=np.int64)
        np.testing.assert_array_equal(np.bincount(owner, minlength=len(masks)) > 0, ~adm[masks])
    model = add_flow_formulation(feasibility_model(base.n), g, np.arange(base.n))
    assert model.col_blocks["flow_patch"].stop - model.col_blocks["flow_patch"].start == 0


# ---------------------------------------------------------------- flow formulation


def feasibility_model(n: int, fixed: np.ndarray | None = None) -> ArrayModel:
    """f columns only (fixed to a plan if given), no rows."""
    lo = np.zeros(n) if fixed is None else fixed.astype(float)
    hi = np.ones(n) if fixed is None else fixed.astype(float)
    return ArrayModel(
        c=np.zeros(n), A=sp.csr_matrix((0, n)), row_lower=np.zeros(0), row_upper=np.zeros(0),
        col_lower=lo, col_upper=hi, integrality=np.ones(n, dtype=bool),
        col_blocks={"farmland": slice(0, n)},
    )


def flow_feasible(g: FarmlandGraph, plan: np.ndarray) -> bool:
    model = add_flow_formulation(feasibility_model(g.n, plan), g, np.arange(g.n))
    model.validate()
    res = get_backend("highs").solve(model, SolveOptions(threads=1))
    assert res.termination in (Termination.OPTIMAL, Termination.INFEASIBLE), res.message
    return res.has_solution


@pytest.mark.parametrize("name", list(BY_NAME))
def test_flow_admits_exactly_the_admissible_plans(name: str) -> None:
    case = BY_NAME[name]
    g = case.graph()
    adm = case_truth(case)
    if case.n <= 9:
        masks = np.arange(1 << case.n, dtype=np.uint32)
    else:  # 75 admissible and 75 inadmissible plans, at random
        rng = np.random.default_rng(5)
        pick = [rng.choice(np.flatnonzero(adm == want), 75, replace=False) for want in (1, 0)]
        masks = np.concatenate(pick).astype(np.uint32)
    for m in masks:
        plan = bits(np.array([m]), case.n)[0]
        assert flow_feasible(g, plan) == adm[m], (name, int(m))


# ---------------------------------------------------------------- optimisation vs brute force


def brute_optimum(case: Case, cost: np.ndarray, gain: np.ndarray, need: float) -> float:
    adm = case_truth(case)
    m = np.arange(1 << case.n, dtype=np.uint32)
    ok = adm & (_apply(_tables(gain, "sum"), m) >= need - 1e-9)
    return float(_apply(_tables(cost, "sum"), m)[ok].min())


def target_model(cost: np.ndarray, gain: np.ndarray, need: float) -> ArrayModel:
    n = len(cost)
    return ArrayModel(
        c=cost.astype(float), A=sp.csr_matrix(gain.reshape(1, -1)), row_lower=np.array([need]),
        row_upper=np.array([np.inf]), col_lower=np.zeros(n), col_upper=np.ones(n),
        integrality=np.ones(n, dtype=bool), col_blocks={"farmland": slice(0, n)},
    )


def solve_rowgen(g: FarmlandGraph, model: ArrayModel) -> tuple[float, np.ndarray, int]:
    """Solve, separate the integral optimum, add rows, repeat (HiGHS)."""
    n = g.n
    cuts, fix = presolve_cuts(g, np.arange(n), num_cols=model.num_cols)
    model = model.add_rows(cuts.A, cuts.lower, cuts.upper, block="presolve")
    upper = model.col_upper.copy()  # arrays are shared between models: never write in place
    upper[:n][fix] = 0.0
    model = dataclasses.replace(model, col_upper=upper)
    sep = make_separator(g, np.arange(n))
    highs = get_backend("highs")
    for rounds in range(1, 300):
        res = highs.solve(model, SolveOptions(mip_gap=0.0))
        assert res.termination == Termination.OPTIMAL
        new = sep(res.x, True)
        if new is None:
            return float(res.objective), res.x[:n] > 0.5, rounds
        model = model.add_rows(new.A, new.lower, new.upper, block="cuts")
    raise AssertionError("row generation did not converge")


@pytest.mark.parametrize("name", ["4x4", "4x4-noroot", "5x4", "irregular"])
def test_solved_optimum_equals_brute_force(name: str) -> None:
    case = BY_NAME[name]
    g = case.graph()
    rng = np.random.default_rng(6)
    binding = 0
    for trial in range(3):
        cost = np.round(rng.uniform(1.0, 10.0, case.n) * case.area, 3)
        gain = np.round(case.area * rng.uniform(0.0, 1.0, case.n), 3)
        need = float(np.round(gain.sum() * rng.uniform(0.15, 0.5), 3))
        best = brute_optimum(case, cost, gain, need)
        last = (cost, gain, need)
        base = target_model(cost, gain, need)
        opts = SolveOptions(mip_gap=0.0)

        flow = get_backend("highs").solve(add_flow_formulation(base, g, np.arange(case.n)), opts)
        assert flow.termination == Termination.OPTIMAL
        assert flow.objective == pytest.approx(best, rel=1e-7), (name, trial, "flow")
        assert check_plan(g, flow.x[: case.n] > 0.5)[0]

        obj, plan, _ = solve_rowgen(g, base)
        assert obj == pytest.approx(best, rel=1e-7), (name, trial, "rowgen")
        assert check_plan(g, plan)[0]

        # SCIP branch-and-cut: lazy integral separation, plus fractional cuts on odd trials
        sep = make_separator(g, np.arange(case.n), fractional=trial % 2 == 1)
        scip = get_backend("scip").solve(base, opts, separator=sep)
        assert scip.termination == Termination.OPTIMAL
        assert scip.objective == pytest.approx(best, rel=1e-7), (name, trial, "scip")
        assert check_plan(g, scip.x[: case.n] > 0.5)[0]
        assert sep.calls > 0
        free = brute_optimum(Case(name + "-free", case.adj, case.area, case.root, 0.0), *last)
        binding += free < best - 1e-6
    assert binding >= 1  # the rule binds somewhere: without it the optimum is cheaper


def test_f_block_anywhere_in_the_model() -> None:
    """col_index maps plots to scattered model columns (after 5 other columns, permuted): flow,
    presolve rows, separator rows and row generation still reach the brute-force optimum."""
    case = BY_NAME["4x4"]
    g = case.graph()
    n = case.n
    rng = np.random.default_rng(14)
    cost = np.round(rng.uniform(1.0, 10.0, n) * case.area, 3)
    gain = np.round(case.area * rng.uniform(0.0, 1.0, n), 3)
    need = float(np.round(gain.sum() * 0.4, 3))
    best = brute_optimum(case, cost, gain, need)
    col = 5 + rng.permutation(n)
    c = np.zeros(n + 5)
    c[col] = cost
    A = sp.csr_matrix((gain, (np.zeros(n, int), col)), shape=(1, n + 5))
    base = ArrayModel(c=c, A=A, row_lower=np.array([need]), row_upper=np.array([np.inf]),
                      col_lower=np.zeros(n + 5), col_upper=np.r_[np.full(5, 3.0), np.ones(n)],
                      integrality=np.ones(n + 5, dtype=bool))
    highs = get_backend("highs")
    flow = highs.solve(add_flow_formulation(base, g, col), SolveOptions(mip_gap=0.0))
    assert flow.objective == pytest.approx(best, rel=1e-7)
    assert check_plan(g, flow.x[col] > 0.5)[0]
    cuts, fix = presolve_cuts(g, col, num_cols=base.num_cols)
    model = base.add_rows(cuts.A, cuts.lower, cuts.upper, block="presolve")
    sep = make_separator(g, col)
    for _ in range(300):
        res = highs.solve(model, SolveOptions(mip_gap=0.0))
        new = sep(res.x, True)
        if new is None:
            break
        assert new.A.shape[1] == model.num_cols and (new.A @ res.x > new.upper).all()
        model = model.add_rows(new.A, new.lower, new.upper, block="cuts")
    assert res.objective == pytest.approx(best, rel=1e-7)
    assert check_plan(g, res.x[col] > 0.5)[0]


# ---------------------------------------------------------------- compactness terms


def _cell_perimeter(rows: int, cols: int, chosen: np.ndarray) -> float:
    """Perimeter of the union of unit cells (independent geometry)."""
    cells = [shapely.box(i % cols, i // cols, i % cols + 1, i // cols + 1)
             for i in np.flatnonzero(chosen)]
    return float(shapely.union_all(cells).length) if cells else 0.0


def test_boundary_penalty_equals_perimeter() -> None:
    """With f fixed (and g = 0) the LP optimum of the boundary term is the perimeter of the
    vacated cells' union, for random subsets of a 3x4 grid of unit squares."""
    rows, cols = 3, 4
    n = rows * cols
    adj = grid(rows, cols)
    perimeter = np.full(n, 4.0)
    rng = np.random.default_rng(8)
    for _ in range(25):
        plan = rng.random(n) < 0.5
        model = feasibility_model(2 * n, np.concatenate([plan, np.zeros(n, bool)]))
        model = add_boundary_penalty(
            model, [np.arange(n), n + np.arange(n)], adj, perimeter, weight=1.0
        )
        res = get_backend("highs").solve(model)
        assert res.objective == pytest.approx(_cell_perimeter(rows, cols, plan), abs=1e-7)


def test_isolation_penalty_counts_isolated_area() -> None:
    rows, cols = 3, 4
    n = rows * cols
    adj = grid(rows, cols)
    area = np.arange(1.0, n + 1)
    rng = np.random.default_rng(9)
    for _ in range(25):
        f = rng.random(n) < 0.3
        g = ~f & (rng.random(n) < 0.2)
        model = feasibility_model(2 * n, np.concatenate([f, g]))
        model = add_isolation_penalty(model, [np.arange(n), n + np.arange(n)], adj, area, 2.0)
        res = get_backend("highs").solve(model)
        v = f | g
        isolated = v & ((adj @ v.astype(float)) == 0)
        assert res.objective == pytest.approx(2.0 * area[isolated].sum(), abs=1e-7)
