"""A Lagrangian (Dantzig–Wolfe) lower bound from the cluster problems.

Relax the coupling rows with multipliers π (any π with the sign its row allows: π >= 0 where
the row has only a lower bound, <= 0 where only an upper one). For every plan x meeting every
row, ``c x = (c - A.T π) x + π A x >= Σ_clusters lb_c(π) + Σ_extra min_box + Σ_rows (π⁺ lower
- π⁻ upper)``, where lb_c(π) is any valid lower bound of the cluster's own problem: minimise
the reduced costs over its rule-abiding plans that keep its local rows. So

    L(π) = Σ_c lb_c(π) + Σ_extra-cols min over their box + Σ_rows (π⁺·lower - π⁻·upper) + offset

is a valid bound for ANY π. Per cluster, lb_c is the best of:

- the *rule-free minimum*: every plot its cheapest allowed action (drops the rule and the
  local rows other than one action per plot: a relaxation, always valid);
- exact where the greedy column (rule-abiding, locally feasible) costs that minimum;
- the proven bound of the cluster's pricing problem solved by SCIP branch-and-cut where SCIP
  is installed, else by row generation (every round solves a relaxation of it, so its bound is
  valid even when stopped at its time limit), for the clusters with the largest difference
  between greedy column and rule-free minimum first, several at once on the `Runner` (process
  pool or Dask), within the time given;
- for a cluster of more than DEEP_FROM plots, within a time of its own, on a worker beside the
  pass where the pool has one to spare (row generation barely moves such a cluster):
  LP rounds on the pricing problem's directed (arborescence) extension (`directed`) until they
  stall, then SCIP branch-and-cut (the separator's rows as cuts), the better of their bounds.

With π the duals of the LP with the separator's cuts, L(π) is at least that LP's bound (up to
the LP's tolerances: the cluster problems' convex hulls lie inside the LP's local polytopes);
the caller reports the best of the two, never more than was proven. The exact solutions
also come back as master columns.

`gap_anatomy` splits a plan's distance from L(π) into the priced slack of the coupling rows,
the extra columns, and per cluster the plan's reduced cost there less lb_c: where a gap lies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.util import find_spec
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from optimizer.blocks.master.columns import abide, allowed, local_ok, reduced_plot_costs
from optimizer.blocks.master.directed import directed_bound
from optimizer.blocks.master.partition import Partition, partition
from optimizer.blocks.master.restricted import MAX_COUPLING
from optimizer.blocks.neighbourhood import Runner, _sub_rule, restriction_repair
from optimizer.blocks.rule import CombinedSeparator, Rule
from optimizer.blocks.search import _row_generation
from solvers import get_backend
from solvers.base import SolveOptions
from solvers.model import ArrayModel
from solvers.result import Result

SUB_LIMIT = 10.0  # seconds per cluster pricing problem at most
DEEP_FROM = 2_000  # plots: a larger cluster's pricing problem goes to `solve_pricing_bc`, with
# a time of its own (`deep_limit`): chaoyang_c50000's 33,394-plot cluster at the LP duals, from
# its LP bound 95,257: SCIP 108,555 after 60 s, 110,344 after 120 s (row generation: nothing in
# 10 s)
DIRECTED_SHARE = 1.0  # of a giant cluster's time for the directed LP rounds (they stop earlier
# where they stall; SCIP has the rest): chaoyang_c50000's 33,394-plot cluster, 90 s each, from
# its LP 99,940: directed 109,562 (53 rounds), SCIP 108,332 (benchmarks/directed_bound.py)
EXACT_TOL = 1e-7  # relative: a greedy column this close to the rule-free minimum is exact


@dataclass
class PricingProblem:
    """One cluster's pricing problem: reduced costs over its plot columns, its local rows."""

    cluster: int
    model: ArrayModel
    rule: Rule
    cols: np.ndarray  # full-model column of each sub-model column
    warm: np.ndarray | None
    time_limit: float


class Priced(NamedTuple):
    """What a pricing solver returns: a proven lower bound (None: none), a rule-abiding solution
    (sub-model columns; None: none), whether that is optimal, and a directed LP point (giant
    clusters: a guide for the neighbourhoods) or None."""

    bound: float | None
    x: np.ndarray | None
    done: bool
    point: np.ndarray | None = None


@dataclass
class LagrangianBound:
    value: float  # L(π) (-inf where π gives no finite bound)
    lb: np.ndarray  # per cluster
    free: np.ndarray  # per cluster: the rule-free minimum
    exact: np.ndarray  # per cluster: lb is the pricing problem's optimum (within tolerance)
    solved: int  # clusters solved (row generation or branch-and-cut)
    columns: list[tuple[np.ndarray, np.ndarray]]  # (full-model columns, values) of solutions
    deep: int = 0  # clusters of more than DEEP_FROM plots solved by branch-and-cut
    pi: np.ndarray | None = None  # the coupling rows' multipliers (sign-corrected)
    # (full-model columns, values): a giant cluster's directed LP point, where one was solved
    points: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def signed(model: ArrayModel, part: Partition, pi: np.ndarray) -> np.ndarray:
    """π on the coupling rows with the sign each row allows (0 on a free row)."""
    lo, up = model.row_lower[part.coupling], model.row_upper[part.coupling]
    p = np.where(np.isfinite(lo), pi, np.minimum(pi, 0.0))
    return np.where(np.isfinite(up), p, np.maximum(p, 0.0))


def constant_part(model: ArrayModel, part: Partition, pi: np.ndarray) -> float:
    """Σ_extra min over the box of the reduced cost + Σ_rows (π⁺ lower - π⁻ upper) + offset."""
    return float(_row_sides(model, part, pi) @ pi + _extra_minima(model, part, pi).sum()) \
        + model.offset


def _row_sides(model: ArrayModel, part: Partition, pi: np.ndarray) -> np.ndarray:
    """Per coupling row, the bound its multiplier prices: lower where π > 0, else upper."""
    lo, up = model.row_lower[part.coupling], model.row_upper[part.coupling]
    return np.where(pi > 0, np.where(np.isfinite(lo), lo, 0.0),
                    np.where(np.isfinite(up), up, 0.0))


def _extra_reduced(model: ArrayModel, part: Partition, pi: np.ndarray) -> np.ndarray:
    return model.c[part.extra] - model.A.tocsr()[part.coupling][:, part.extra].T @ pi


def _extra_minima(model: ArrayModel, part: Partition, pi: np.ndarray) -> np.ndarray:
    """Per extra column, the least of its reduced cost times a value in its box."""
    r, ex = _extra_reduced(model, part, pi), part.extra
    with np.errstate(invalid="ignore"):
        return np.where(r > 0, r * model.col_lower[ex],
                        np.where(r < 0, r * model.col_upper[ex], 0.0))


def local_dual(model: ArrayModel, part: Partition, d: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per cluster, the dual bound of its LP (plot columns in their box, its local rows) from
    multipliers y of the local rows (any y, sign-corrected: weak duality), given the plot
    columns' reduced costs `d` (nc, 3) under π. With y the duals of the LP whose coupling duals
    gave π, these sum (with the constant part) to that LP's bound."""
    lo, up = model.row_lower[part.local], model.row_upper[part.local]
    y = np.where(np.isfinite(lo), y, np.minimum(y, 0.0))
    y = np.where(np.isfinite(up), y, np.maximum(y, 0.0))
    rows = np.where(y > 0, y * np.where(np.isfinite(lo), lo, 0.0), 0.0) + np.where(
        y < 0, y * np.where(np.isfinite(up), up, 0.0), 0.0)
    nc = part.nc
    r = np.concatenate([d[:, 1], d[:, 2]]) - model.A.tocsr()[part.local][:, :2 * nc].T @ y
    cols = np.where(r > 0, r * model.col_lower[:2 * nc], r * model.col_upper[:2 * nc])
    return (np.bincount(part.local_cluster, rows, part.k)
            + np.bincount(part.col_cluster, cols, part.k))


def lagrangian_bound(model: ArrayModel, rule: Rule, part: Partition, pi: np.ndarray,
                     runner: Runner | None = None, time_limit: float | None = None,
                     y_local: np.ndarray | None = None, deep_limit: float | None = None
                     ) -> LagrangianBound:
    """L(π) for π on the coupling rows (sign-corrected), clusters solved exactly within
    `time_limit` (None: all of them; 0: none); `y_local`: multipliers of the local rows (an
    LP's duals) for the clusters' LP dual bounds; `deep_limit`: seconds for SCIP
    branch-and-cut on the clusters of more than DEEP_FROM plots (then not in the row-generation
    pass), where SCIP is installed."""
    t0 = time.perf_counter()
    pi = signed(model, part, pi)
    d = reduced_plot_costs(model, part, pi)
    ok = allowed(model, part)
    cost = np.where(ok, d, np.inf)
    best = cost.min(axis=1)
    k = part.k
    if not np.isfinite(best).all():  # a plot with no allowed action: no bound from here
        return LagrangianBound(-np.inf, np.full(k, -np.inf), np.full(k, -np.inf),
                               np.zeros(k, bool), 0, [], pi=pi)
    free = np.bincount(part.comp, best, k)
    act, stuck = abide(rule, d, ok)
    greedy = np.bincount(part.comp, d[np.arange(part.nc), act], k)
    valid = local_ok(model, part, act)
    valid[part.comp[stuck]] = False
    exact = valid & (greedy <= free + EXACT_TOL * np.maximum(1.0, np.abs(free)))
    lb = free.copy()
    if y_local is not None:
        lb = np.maximum(lb, local_dual(model, part, d, y_local))
    exact |= valid & (greedy <= lb + EXACT_TOL * np.maximum(1.0, np.abs(lb)))
    columns: list[tuple[np.ndarray, np.ndarray]] = []
    points: list[tuple[np.ndarray, np.ndarray]] = []
    todo = np.flatnonzero(~exact)
    sizes = np.bincount(part.comp, minlength=k)
    # most room per plot first: the cluster problems grow harder with their size
    room = (np.where(valid, greedy, np.inf) - lb) / (sizes + 10)
    todo = todo[np.argsort(-room[todo], kind="stable")]
    scip = find_spec("pyscipopt") is not None
    deep = np.zeros(k, bool)
    if deep_limit is not None and deep_limit >= 1.0 and scip:
        deep[sizes > DEEP_FROM] = True  # (less than a second: row generation, as without SCIP)
    big, todo = todo[deep[todo]], todo[~deep[todo]]
    big = big[np.argsort(-sizes[big], kind="stable")]  # the largest first
    workers = 1 if runner is None else runner.workers
    counts = {"solved": 0, "deep": 0}

    def solve(clusters: np.ndarray, limit: float, fn: Callable[[PricingProblem], Priced],
              kind: str) -> None:
        probs = [pricing_problem(model, rule, part, d, int(c), act, bool(valid[c]), limit)
                 for c in clusters]
        found = runner.map(probs, fn) if runner is not None else [fn(p) for p in probs]
        take(probs, found, kind)

    def take(probs: list[PricingProblem], found: list[Priced], kind: str) -> None:
        for p, got in zip(probs, found, strict=True):
            counts[kind] += 1
            if got.point is not None:
                points.append((p.cols, got.point))
            if got.bound is not None:
                lb[p.cluster] = max(lb[p.cluster], got.bound)
            exact[p.cluster] = got.done
            if got.x is not None:
                columns.append((p.cols, got.x))

    # the giant clusters by branch-and-cut: on a pool with a worker to spare, alongside the
    # row-generation pass (one worker each); else after it
    aside = [] if runner is None or not 0 < len(big) < workers else [
        (p, runner.submit(p, solve_pricing_bc)) for p in (
            pricing_problem(model, rule, part, d, int(c), act, bool(valid[c]), deep_limit or 0.0)
            for c in big)]
    width = workers - len(aside)
    for at in range(0, len(todo), width):
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if left is not None and left < 0.5:
            break
        solve(todo[at:at + width], SUB_LIMIT if left is None else max(0.5, min(SUB_LIMIT, left)),
              solve_pricing_bb if scip else solve_pricing, "solved")
    take([p for p, _ in aside], [result() for _, result in aside], "deep")
    t_deep = time.perf_counter()
    for at in range(0, 0 if aside else len(big), workers):  # each its share of the time
        left = (deep_limit or 0.0) - (time.perf_counter() - t_deep)  # (big: deep_limit given)
        if left < 1.0:
            break
        batch = big[at:at + workers]
        solve(batch, left * len(batch) / (len(big) - at), solve_pricing_bc, "deep")
    value = float(lb.sum()) + constant_part(model, part, pi)
    return LagrangianBound(value if np.isfinite(value) else -np.inf, lb, free, exact,
                           counts["solved"] + counts["deep"], columns, counts["deep"], pi, points)


def pricing_problem(model: ArrayModel, rule: Rule, part: Partition, d: np.ndarray, c: int,
                    act: np.ndarray, valid: bool, limit: float) -> PricingProblem:
    plots, sub, cols = _clusters_model(model, part, d, np.array([c]))
    warm = None
    if valid:
        warm = np.concatenate([act[plots] == 1, act[plots] == 2]).astype(float)
    return PricingProblem(c, sub, _sub_rule(rule, cols, model.num_cols), cols, warm, limit)


def clusters_problem(model: ArrayModel, rule: Rule, part: Partition, pi: np.ndarray,
                     clusters: np.ndarray) -> tuple[ArrayModel, Rule, np.ndarray]:
    """The Lagrangian problem of several clusters at once under π (sign-corrected here): their
    plot columns at their reduced costs, their local rows, the rule on their plots (numbered
    within it); and the full-model column of each of its columns. Any of its rule-abiding
    solutions that keep its rows is a master column for those clusters."""
    d = reduced_plot_costs(model, part, signed(model, part, pi))
    plots, sub, cols = _clusters_model(model, part, d, clusters)
    rule = _sub_rule(rule, cols, model.num_cols)
    local = Rule([replace(q, plots=np.searchsorted(plots, q.plots)) for q in rule.parts])
    return sub, local, cols


def _clusters_model(model: ArrayModel, part: Partition, d: np.ndarray, clusters: np.ndarray
                    ) -> tuple[np.ndarray, ArrayModel, np.ndarray]:
    """(the clusters' plots, their model: plot columns at the reduced costs `d`, their local
    rows; the full-model column of each of its columns)."""
    plots = np.flatnonzero(np.isin(part.comp, clusters))
    cols = np.concatenate([plots, part.nc + plots])
    rows = part.local[np.isin(part.local_cluster, clusters)]
    sub = ArrayModel(c=np.concatenate([d[plots, 1], d[plots, 2]]),
                     A=sp.csr_matrix(model.A.tocsr()[rows][:, cols]),
                     row_lower=model.row_lower[rows], row_upper=model.row_upper[rows],
                     col_lower=model.col_lower[cols], col_upper=model.col_upper[cols],
                     integrality=model.integrality[cols])
    return plots, sub, cols


def solve_pricing(p: PricingProblem) -> Priced:
    """Row generation on one cluster's pricing problem (bound valid at any stop). Runs in a
    worker process."""
    t0 = time.perf_counter()
    opts = SolveOptions(time_limit=p.time_limit, mip_gap=1e-6, threads=1)

    repaired = restriction_repair(p.rule, t0 + p.time_limit)
    out = _row_generation(p.model, p.rule, get_backend("highs"), opts, t0, p.warm,
                          lambda _m: None, repaired)
    return _priced(p, out.result)


def _priced(p: PricingProblem, res: Result) -> Priced:
    """A solver's result as Priced: its solution only where it abides by the rule."""
    x = res.x[:p.model.num_cols] if res.has_solution and res.x is not None else None
    if x is not None and not p.rule.admissible(x):
        x = None
    return Priced(res.bound, x, res.termination.value == "optimal" and x is not None)


def solve_pricing_bb(p: PricingProblem) -> Priced:
    """SCIP branch-and-cut on one cluster's pricing problem within its time: the pass's solver
    where SCIP is installed (chaoyang_c50000, its 254 clusters below the giant one: all exact
    after a 62-s pass, where row generation left 13 open after 90 s, 2,139 lower in all;
    benchmarks/cluster_pass.py); as `solve_pricing`."""
    return pricing_scip(p, p.time_limit)


def solve_pricing_bc(p: PricingProblem) -> Priced:
    """One large cluster's pricing problem: LP rounds on its directed (arborescence) extension
    (`directed.directed_bound`: the stronger bound) until they stall or DIRECTED_SHARE of the
    time is out, then SCIP branch-and-cut for what is left (`pricing_scip`); the better bound.
    With the directed LP point (the sub-model's columns) where a round was solved."""
    t0 = time.perf_counter()
    directed, _, point = directed_bound(p.model, p.rule, DIRECTED_SHARE * p.time_limit)
    left = p.time_limit - (time.perf_counter() - t0)
    if left < 0.5:
        return Priced(directed, None, False, point)
    scip = pricing_scip(p, left)
    bounds = [b for b in (scip.bound, directed) if b is not None]
    return Priced(max(bounds) if bounds else None, scip.x, scip.done, point)


def pricing_scip(p: PricingProblem, time_limit: float) -> Priced:
    """SCIP branch-and-cut (the separator's rows as lazy constraints and cuts) on a pricing
    problem: a bound valid at any stop, a rule-abiding solution; as `solve_pricing`."""
    opts = SolveOptions(time_limit=time_limit, mip_gap=1e-6, threads=1)
    return _priced(p, get_backend("scip").solve(
        p.model, opts, warm_start=p.warm, separator=CombinedSeparator(p.rule, fractional=True)))


def decomposition_bound(model: ArrayModel, rule: Rule, nc: int, pi: np.ndarray,
                        runner: Runner | None, time_limit: float | None,
                        deep_limit: float | None = None) -> LagrangianBound | None:
    """L(π) for the duals π of the model's rows (an LP's, possibly before its last cuts: those
    are local rows); None where the model has no cluster structure worth it."""
    part = partition(model, rule, nc)
    if part.k < 2 or len(part.coupling) > MAX_COUPLING:
        return None
    full = np.zeros(model.num_rows)  # rows added after that LP (cuts) have multiplier 0
    full[:min(len(pi), model.num_rows)] = pi[:model.num_rows]
    return lagrangian_bound(model, rule, part, full[part.coupling], runner, time_limit,
                            full[part.local], deep_limit)


@dataclass
class GapAnatomy:
    """Where a plan's distance from L(π) lies: ``objective - L(π) = rows + extra +
    clusters.sum()``, each term >= 0 (a plan's share of a cluster is a solution of the cluster's
    pricing problem, so it costs at least that problem's bound)."""

    rows: float  # Σ π (A x - the row's bound): the coupling rows' slack, priced
    extra: float  # the extra columns' reduced costs above their box minimum
    clusters: np.ndarray  # per cluster: the plan's reduced cost there less its bound lb
    plots: np.ndarray  # per cluster: candidate plots

    @property
    def total(self) -> float:
        return self.rows + self.extra + float(self.clusters.sum())


def gap_anatomy(model: ArrayModel, rule: Rule, nc: int, lag: LagrangianBound,
                x: np.ndarray) -> GapAnatomy:
    """Split ``objective(x) - lag.value`` (x a plan of `model`, the model the bound was computed
    on) into the priced slack of the coupling rows, the extra columns, and each cluster."""
    part = partition(model, rule, nc)
    pi = np.zeros(len(part.coupling)) if lag.pi is None else lag.pi
    x = np.asarray(x, float)[:model.num_cols]
    d = reduced_plot_costs(model, part, pi)
    plot_cost = d[:, 1] * x[:nc] + d[:, 2] * x[nc:2 * nc]
    clusters = np.bincount(part.comp, plot_cost, part.k) - lag.lb
    rows = float(pi @ (model.A.tocsr()[part.coupling] @ x - _row_sides(model, part, pi)))
    extra = _extra_reduced(model, part, pi) @ x[part.extra] - _extra_minima(model, part, pi).sum()
    return GapAnatomy(rows, float(extra), clusters, np.bincount(part.comp, minlength=part.k))
