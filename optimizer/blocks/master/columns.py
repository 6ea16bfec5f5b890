"""Columns for the restricted master: one rule-abiding, locally feasible plan per cluster, for
all clusters at once, from a per-plot preference.

*Greedy pricing.* Given the coupling rows' duals π, the reduced cost of a plot column is
``c - A.T π``; every plot takes its cheapest allowed action (keep costs 0; bounds and
must-vacate plots close options). The rule is restored by dropping: for each rule part, the
chosen plots of a block that holds no root and is below min_size (scipy connected components
of the part's graph restricted to the chosen plots) lose that action and take their next-best
allowed one; repeated until no part has such a block (each pass closes an option for a plot, so
it ends). A plot left with no allowed action, or a cluster whose local rows the column breaks,
makes that cluster's column invalid (the master does not get it).

*Preferences.* The same machinery takes any per-plot score: reduced costs under several
scalings of π (a cheap stand-in for exact pricing: the master chooses among them), the LP point
(the largest LP value first: a rounding repaired to the rule), and all-keep where allowed.
Everything is vectorised over all plots; no Python loop runs per plot or per cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimizer.blocks.construct import tolerance
from optimizer.blocks.cuts import _bad_blocks
from optimizer.blocks.master.partition import Partition
from optimizer.blocks.rule import Rule, RulePart
from solvers.model import ArrayModel

MAX_PASSES = 50  # dropping passes; a few suffice (farmland -> forest -> keep)
GROW_PASSES = 40  # growing passes (plots added per block at most)


@dataclass
class Columns:
    """Candidate plans, one row per variant: an action per plot (0 keep, 1 farmland, 2 forest)
    and, per cluster, whether that variant's restriction to the cluster is a valid column."""

    acts: np.ndarray  # (variants, nc) int8
    valid: np.ndarray  # (variants, k) bool

    def __len__(self) -> int:
        return len(self.acts)

    def extend(self, other: Columns) -> Columns:
        return Columns(np.vstack([self.acts, other.acts]), np.vstack([self.valid, other.valid]))


def allowed(model: ArrayModel, part: Partition) -> np.ndarray:
    """(nc, 3) bool: keep / farmland / forest open for each plot (bounds and must-vacate)."""
    nc = part.nc
    lo, up = model.col_lower, model.col_upper
    keep = (lo[:nc] <= 0) & (lo[nc:2 * nc] <= 0) & ~part.must
    farm = (up[:nc] >= 1) & (lo[nc:2 * nc] <= 0)
    forest = (up[nc:2 * nc] >= 1) & (lo[:nc] <= 0)
    return np.stack([keep, farm, forest], axis=1)


def reduced_plot_costs(model: ArrayModel, part: Partition, pi: np.ndarray) -> np.ndarray:
    """(nc, 3): 0 for keep, the reduced costs of the farmland and forest columns under π."""
    nc = part.nc
    A = model.A.tocsr()[part.coupling][:, :2 * nc]
    d = model.c[:2 * nc] - A.T @ pi
    return np.stack([np.zeros(nc), d[:nc], d[nc:]], axis=1)


def grow(part: RulePart, act: np.ndarray, cost: np.ndarray, passes: int) -> np.ndarray:
    """Grow the part's rule-breaking blocks, all at once, one plot per block per pass: the kept
    neighbour (allowed the part's action) with the least extra score per mu, a root first
    (Prim's growth, vectorised over the blocks)."""
    g, a = part.graph, part.action
    act = act.copy()
    for _ in range(passes):
        idx, lab, _, _, bad = _bad_blocks(g, act[part.plots] == a)
        if not bad.any():
            break
        nodes = idx[bad[lab]]
        owner = lab[bad[lab]]
        rows = g.adj[nodes]
        nb = rows.indices
        blk = np.repeat(owner, np.diff(rows.indptr))
        plot = part.plots[nb]
        open_ = (act[plot] == 0) & np.isfinite(cost[plot, a])
        if not open_.any():
            break
        nb, blk, plot = nb[open_], blk[open_], plot[open_]
        extra = cost[plot, a] - cost[plot, 0]
        key = np.where(g.root[nb], -np.inf, extra / np.maximum(g.area[nb], 1e-9))
        order = np.lexsort((key, blk))
        first = order[np.unique(blk[order], return_index=True)[1]]
        act[plot[first]] = a
    return act


def _drop(rule: Rule, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lowest cost per plot, rule-breaking blocks dropped to their next-best action until
    no part has one: (actions, plots left without an allowed action)."""
    cost = cost.copy()
    for _ in range(MAX_PASSES):
        act = np.argmin(cost, axis=1)
        changed = False
        for p in rule.parts:
            idx, lab, _, _, bad = _bad_blocks(p.graph, act[p.plots] == p.action)
            if bad.any():
                cost[p.plots[idx[bad[lab]]], p.action] = np.inf
                changed = True
        if not changed:
            break
    act = np.argmin(cost, axis=1)
    stuck = np.isposinf(cost[np.arange(len(act)), act])
    return act.astype(np.int8), stuck


def abide(rule: Rule, score: np.ndarray, ok: np.ndarray, passes: int = 0
          ) -> tuple[np.ndarray, np.ndarray]:
    """The plan taking the lowest score per plot among allowed actions, with the rule restored:
    rule-breaking blocks dropped to their next-best action; with `passes`, each block of the
    plan grown by up to that many plots (`grow`) is taken instead where its score is lower than
    that of the dropped plan on the same plots (blocks of the grown plan are not adjacent, so
    the choice is per block), then the rest dropped. (actions, plots left without one)."""
    cost = np.where(ok, score, np.inf)
    dropped, stuck = _drop(rule, cost)
    if not passes:
        return dropped, stuck
    base = np.argmin(cost, axis=1).astype(np.int8)
    mixed = dropped.copy()
    for p in rule.parts:
        grown = grow(p, base, cost, passes)
        idx, lab, _, _, _ = _bad_blocks(p.graph, grown[p.plots] == p.action)
        k = int(lab.max()) + 1 if len(lab) else 0
        plots = p.plots[idx]
        with np.errstate(invalid="ignore"):
            take = np.bincount(lab, cost[plots, grown[plots]], k) < np.bincount(
                lab, cost[plots, dropped[plots]], k)
        sel = plots[take[lab]]
        mixed[sel] = grown[sel]
    pinned = cost.copy()
    pinned[np.arange(len(mixed)), mixed] = -1e300  # kept unless a drop closes it
    return _drop(rule, pinned)


def plan_vector(act: np.ndarray, num_cols: int) -> np.ndarray:
    """Plot columns of a per-candidate action vector (extra columns 0)."""
    nc = len(act)
    x = np.zeros(num_cols)
    x[:nc] = act == 1
    x[nc:2 * nc] = act == 2
    return x


def local_ok(model: ArrayModel, part: Partition, act: np.ndarray) -> np.ndarray:
    """(k,) bool: the cluster's local rows hold for the plan `act`."""
    x = plan_vector(act, model.num_cols)
    A = model.A.tocsr()[part.local]
    ax = A @ x
    tol = tolerance(model)
    broken = (ax < model.row_lower[part.local] - tol) | (ax > model.row_upper[part.local] + tol)
    bad = np.zeros(part.k, bool)
    bad[part.local_cluster[broken]] = True
    return ~bad


def column(model: ArrayModel, rule: Rule, part: Partition, score: np.ndarray,
           ok: np.ndarray, passes: int = 0) -> Columns:
    """One variant from a per-plot score (nc, 3)."""
    act, stuck = abide(rule, score, ok, passes)
    valid = local_ok(model, part, act)
    valid[part.comp[stuck]] = False
    return Columns(act[None, :], valid[None, :])


def lp_score(x_lp: np.ndarray, nc: int) -> np.ndarray:
    """Score of the LP point: the action with the largest LP value first."""
    f, g = x_lp[:nc], x_lp[nc:2 * nc]
    return -np.stack([1.0 - f - g, f, g], axis=1)


def price(model: ArrayModel, rule: Rule, part: Partition, pis: list[np.ndarray],
          x_lp: np.ndarray | None = None) -> Columns:
    """Variants for the duals in `pis`, the LP point (if any), and all-keep."""
    ok = allowed(model, part)
    nc = part.nc
    out = [column(model, rule, part, reduced_plot_costs(model, part, pi), ok, passes)
           for pi in pis for passes in (0, GROW_PASSES)]
    if x_lp is not None:
        out += [column(model, rule, part, lp_score(x_lp, nc), ok, passes)
                for passes in (0, GROW_PASSES)]
        # the LP point's supports, priced: among the actions the LP uses, the cheapest
        used = np.stack([np.ones(nc, bool), x_lp[:nc] > 1e-6, x_lp[nc:2 * nc] > 1e-6], axis=1)
        base = reduced_plot_costs(model, part, pis[len(pis) // 2]) if pis else np.zeros((nc, 3))
        out.append(column(model, rule, part, base, ok & used))
    keep = np.zeros((nc, 3))
    keep[:, 1:] = 1.0
    out.append(column(model, rule, part, keep, ok))
    cols = out[0]
    for c in out[1:]:
        cols = cols.extend(c)
    return cols


def unique(cols: Columns, part: Partition) -> Columns:
    """Drop a cluster's column where an earlier variant has the same plan on that cluster."""
    valid = cols.valid.copy()
    for v in range(1, len(cols)):
        for w in range(v):
            same = np.bincount(part.comp, cols.acts[v] != cols.acts[w], part.k) == 0
            valid[v] &= ~(same & valid[w])
    return Columns(cols.acts, valid)


def coefficients(model: ArrayModel, part: Partition, cols: Columns
                 ) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray, np.ndarray]:
    """The master's columns: (cost, coupling rows x columns, cluster, variant) for every valid
    (variant, cluster) pair."""
    nc, k = part.nc, part.k
    A = model.A.tocsr()[part.coupling][:, :2 * nc]
    onehot = sp.csr_matrix((np.ones(2 * nc), (np.arange(2 * nc), part.col_cluster)),
                           shape=(2 * nc, k))
    costs, blocks, which, variant = [], [], [], []
    for v in range(len(cols)):
        x = plan_vector(cols.acts[v], 2 * nc)
        keep = np.flatnonzero(cols.valid[v])
        costs.append(np.bincount(part.col_cluster, model.c[:2 * nc] * x, k)[keep])
        blocks.append((A.multiply(x[None, :]) @ onehot).tocsc()[:, keep])
        which.append(keep)
        variant.append(np.full(len(keep), v))
    return (np.concatenate(costs), sp.hstack(blocks, format="csr"), np.concatenate(which),
            np.concatenate(variant))
