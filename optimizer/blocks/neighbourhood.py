"""Fix-and-optimise neighbourhoods: the model with every column outside a set of candidate
clusters fixed at the current plan, as a small model of its own, solved by row generation with
the block rule, on a local process pool or a Dask cluster.

Why a neighbourhood's solution may replace the plan's part: where the free plots form whole
clusters (connected components of the candidate adjacency), every rule part's graph being a
sub-graph of that adjacency, a block never crosses a neighbourhood's border and the rule of the
neighbourhood's own sub-graph is the rule. A cluster larger than a neighbourhood is cut into
regions (`region_units`); a region R is any set of candidate plots, everything else fixed at the
current rule-abiding plan, and per rule part (farmland, its priority tier, forest) with chosen
set S (admissible: every block — component of S — has area >= min_size or holds a root):

1. freezing (`free_region`): a component C of S − R (the fixed chosen plots, on the graph
   without R) that is not admissible by itself leans on R-plots of its current block B; those
   R-plots are frozen (removed from R), and this repeats over the parts until nothing changes
   (a plot frozen for one part may cut another part's block). Afterwards every component of
   the fixed chosen set is admissible by itself.
2. roots (`region_rule`): whatever R does, blocks only grow by merging, so every block that holds
   a fixed chosen plot contains an admissible component (area >= min_size, or a root) and is
   admissible. A block of S' (any new choice on R) holding no fixed chosen plot lies in R and
   is a component of S' on R's induced sub-graph; it is a block of the whole plan iff none of
   its plots is adjacent to a fixed chosen plot (else it merges). So with the R-plots adjacent
   to a fixed chosen plot of the part as extra roots, the rule of R's sub-graph holds iff the
   whole plan's rule holds: exactly sufficient (and necessary). Without the freezing step the
   extra roots are unsound: a block a-b-c of 3 x 40 mu (min_size 100) with R = {a, b} would make
   b a root, and R choosing nothing would leave c alone at 40 mu (tests/test_regions.py).
 Rows are linear: the fixed columns' share moves into
the row bounds. Several neighbourhoods solved at once share each row's slack: a row that K of
them touch lets each use 1/K of it, so all their solutions together keep every row (and each
extra column — compactness, shortfall — is free in at most one of them).

The last phase of `lns` searches a larger neighbourhood of the best plan: the restriction
(`construct`) seeded with the blocks of a relaxation's rule-breaking optimum and of the plan
(`restrict_into`), inside HiGHS row generation or SCIP branch-and-cut (`branch_and_cut_from`).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, replace
from importlib.util import find_spec
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from optimizer.blocks.construct import construct, tolerance
from optimizer.blocks.cuts import FarmlandGraph, large_enough
from optimizer.blocks.deadline import main_guarded, pool_context
from optimizer.blocks.rule import CombinedSeparator, Rule, RulePart
from optimizer.blocks.search import (
    ContiguousSolve,
    _left,
    _repair_rejected,
    _row_generation,
    repair_into,
)
from optimizer.model.build import PlanModel
from solvers import get_backend
from solvers.base import SolveOptions
from solvers.model import ArrayModel

RESTRICT_SHARE = 0.5  # last phase: each repair (restriction around a relaxation) of the time left


@dataclass
class SubProblem:
    """One neighbourhood as a model of its own (columns `cols` of the full model)."""

    model: ArrayModel
    rule: Rule
    cols: np.ndarray  # full-model column of each sub-model column
    warm: np.ndarray  # the current plan's values of those columns (feasible for `model`)
    time_limit: float
    mip_gap: float
    hint: np.ndarray | None = None  # a relaxation's values of `cols`: restriction first
    polish: bool = True  # with a hint: row generation for the rest of the time limit


def sub_problems(model: ArrayModel, rule: Rule, x: np.ndarray, groups: list[np.ndarray],
                 num_plot_cols: int, time_limit: float, mip_gap: float,
                 hint: np.ndarray | None = None, polish: bool = True) -> list[SubProblem]:
    """One SubProblem per group of plot columns (each group: the f and g columns of whole
    clusters, or of a region that `free_region` has cut free; the plot columns are the first
    `num_plot_cols`), solved together: each row's slack is shared among the groups that touch
    it. `hint`: a relaxation's point of the model (the LP's), handed on per group."""
    n = model.num_cols
    owner = np.full(n, -1)
    for k, g in enumerate(groups):
        owner[g] = k
    extra = np.arange(n) >= num_plot_cols
    extra &= model.col_lower < model.col_upper
    A = model.A.tocsc()
    if extra.any() and len(groups):
        # an extra column joins the one group it shares rows with, if exactly one
        Ax = abs(A[:, np.flatnonzero(extra)]).T.tocsr()  # extra x rows
        onehot = sp.csr_matrix((np.ones(int((owner >= 0).sum())),
                                (np.flatnonzero(owner >= 0), owner[owner >= 0])),
                               shape=(n, len(groups)))
        touch = (Ax @ (abs(A) @ onehot)).toarray() > 0  # extra x groups
        single = touch.sum(axis=1) == 1
        cols_extra = np.flatnonzero(extra)
        owner[cols_extra[single]] = touch[single].argmax(axis=1)
    act = model.A @ x
    touched = (abs(A) @ sp.csr_matrix((np.ones(int((owner >= 0).sum())),
                                       (np.flatnonzero(owner >= 0), owner[owner >= 0])),
                                      shape=(n, max(1, len(groups))))).toarray() > 0
    shares = np.maximum(touched.sum(axis=1), 1)
    low_slack = np.maximum(act - model.row_lower, 0.0) / shares
    up_slack = np.maximum(model.row_upper - act, 0.0) / shares
    out = []
    for k in range(len(groups)):
        cols = np.flatnonzero(owner == k)
        sub_A = A[:, cols].tocsr()
        rows = np.flatnonzero(np.diff(sub_A.indptr) > 0)
        sub_A = sub_A[rows]
        own = sub_A @ x[cols]
        lower = own - low_slack[rows]
        upper = own + up_slack[rows]
        lower[~np.isfinite(model.row_lower[rows])] = -np.inf
        upper[~np.isfinite(model.row_upper[rows])] = np.inf
        sub = ArrayModel(c=model.c[cols], A=sub_A, row_lower=lower, row_upper=upper,
                         col_lower=model.col_lower[cols], col_upper=model.col_upper[cols],
                         integrality=model.integrality[cols])
        out.append(SubProblem(sub, region_rule(rule, cols, n, x), cols, x[cols].copy(),
                              time_limit, mip_gap, None if hint is None else hint[cols],
                              polish))
    return out


def _sub_rule(rule: Rule, cols: np.ndarray, num_cols: int) -> Rule:
    pos = np.full(num_cols, -1)
    pos[cols] = np.arange(len(cols))
    parts = []
    for p in rule.parts:
        nodes = np.flatnonzero(pos[p.cols] >= 0)
        if not len(nodes):
            continue
        g = p.graph
        graph = FarmlandGraph(g.adj[nodes][:, nodes], g.area[nodes], g.root[nodes], g.min_size)
        parts.append(RulePart(p.name, graph, pos[p.cols[nodes]], p.plots[nodes], p.action))
    return Rule(parts)


def restriction_repair(rule: Rule, end: float, mip_gap: float | None = None
                       ) -> Callable[[np.ndarray, ArrayModel, np.ndarray | None],
                                     np.ndarray | None]:
    """`_row_generation`'s Repair for a small model: the restriction seeded with the blocks of
    the rule-breaking plan x, started from the best plan, until `end` (perf_counter)."""
    def repaired(x: np.ndarray, current: ArrayModel, best: np.ndarray | None
                 ) -> np.ndarray | None:
        left = end - time.perf_counter()
        if left < 0.2:
            return None
        opts = SolveOptions(time_limit=left) if mip_gap is None else SolveOptions(
            time_limit=left, mip_gap=mip_gap)
        return construct(current, rule, opts, hint=x, start=best).x

    return repaired


def solve_sub(sub: SubProblem) -> tuple[np.ndarray | None, float]:
    """One neighbourhood from its current values: with a hint, first the restriction seeded
    with the hint's and the current plan's blocks (`construct`: one compact MIP, solved in 1-3 s
    on 600-plot regions of chaoyang_c50000, where it found 62-98% of what row generation found
    in 10 s), then, with `polish`, row generation from there for the rest of the time limit;
    without, row generation alone. An improved rule-abiding assignment of its columns (or None)
    and the seconds spent. Runs in a worker process."""
    t0 = time.perf_counter()
    opts = SolveOptions(time_limit=sub.time_limit, mip_gap=sub.mip_gap, threads=1)
    # a warm start that breaks the sub-model (importance: the plan with one plot changed) is
    # no incumbent: it is not handed over, and any rule-abiding feasible assignment is an answer
    warm_ok = sub.model.max_violation(sub.warm) <= tolerance(sub.model) and \
        sub.rule.admissible(sub.warm)
    start = sub.warm if warm_ok else None
    x = None
    if sub.hint is not None:
        built = construct(sub.model, sub.rule, opts, hint=sub.hint, start=start)
        x = start = built.x if built.x is not None else start
    left = sub.time_limit - (time.perf_counter() - t0)
    if sub.hint is None or (sub.polish and left > 0.5):
        repaired = restriction_repair(sub.rule, t0 + sub.time_limit, sub.mip_gap)
        res = _row_generation(sub.model, sub.rule, get_backend("highs"), opts, t0, start,
                              lambda _m: None, repaired).result
        if res.has_solution and res.x is not None:
            x = res.x
    if x is not None:
        x = sub.model.round_integers(x)
        better = not warm_ok or sub.model.objective_value(x) < sub.model.objective_value(
            sub.warm) - 1e-7 * max(1.0, abs(sub.model.objective_value(sub.warm)))
        ok = sub.rule.admissible(x) and sub.model.max_violation(x) <= tolerance(sub.model)
        x = x if better and ok else None
    return x, time.perf_counter() - t0


AUTO_POOL_CANDIDATES = 5_000  # workers = 0 (auto): a pool from this many candidates (measured)
AUTO_POOL_MAX = 4  # ... of at most this many processes


def auto_workers(workers: int, candidates: int) -> int:
    """`[contiguity] workers`, with 0 (auto) resolved: a pool of min(AUTO_POOL_MAX, CPUs) from
    AUTO_POOL_CANDIDATES candidates, where a cluster problem takes seconds and the pool's start
    (about a second) pays off; one process below."""
    if workers:
        return workers
    if candidates < AUTO_POOL_CANDIDATES:
        return 1
    return max(1, min(AUTO_POOL_MAX, os.cpu_count() or 1))


class Runner:
    """Solves SubProblems: in this process (workers <= 1), on a local process pool, or on the
    Dask cluster at `scheduler` (its workers must import this package)."""

    def __init__(self, workers: int = 1, scheduler: str | None = None) -> None:
        self.workers, self.scheduler = workers, scheduler
        self._pool: Executor | None = None
        self._client = None
        if scheduler:
            from distributed import Client

            self._client = Client(scheduler, set_as_default=False)
            self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))
        elif workers > 1 and not multiprocessing.current_process().daemon and main_guarded():
            # (a daemon process — a sweep's pool or Dask worker — cannot start a pool, nor can
            # a script without a __main__ guard, which each worker would re-run: here)
            self._pool = ProcessPoolExecutor(workers, mp_context=_pool_context())
        else:
            self.workers = 1

    def map(self, subs: list, fn: Callable[[Any], Any] = solve_sub) -> list:
        """`fn` (a module function, so it pickles) over `subs`, in order."""
        if self._client is not None:
            futures = self._client.map(fn, subs, pure=False)
            return self._client.gather(futures)
        if self._pool is not None and len(subs) > 1:
            return list(self._pool.map(fn, subs))
        return [fn(s) for s in subs]

    def submit(self, sub: Any, fn: Callable[[Any], Any] = solve_sub) -> Callable[[], Any]:
        """`fn(sub)` started on a worker (in this process: run now); call the returned function
        for its result."""
        if self._client is not None:
            return self._client.submit(fn, sub, pure=False).result
        if self._pool is not None:
            return self._pool.submit(fn, sub).result
        out = fn(sub)
        return lambda: out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _pool_context() -> multiprocessing.context.BaseContext:
    return pool_context("optimizer.blocks.search")


def scip_final(backend_name: str, method: str) -> bool:
    """Whether the final phase, given a plan, is SCIP branch-and-cut (the block rule as lazy
    rows, warm-started from the plan, with the LP cuts): with the back-end scip, and with method
    "auto" wherever SCIP is installed (measured: a better bound than HiGHS row generation in the
    same time, benchmarks/README.md). Else, and always without a plan (row generation's greedy
    repair finds a first one sooner: Chaoyang 50k at 60 s), row generation."""
    return backend_name == "scip" or (method == "auto" and find_spec("pyscipopt") is not None)


def branch_and_cut_from(pm: PlanModel, num_plots: int, model: ArrayModel, rule: Rule,
                        warm: np.ndarray | None, opts: SolveOptions, t0: float,
                        enough: float | None, say: Callable[[str], None], first: list[float]
                        ) -> ContiguousSolve:
    """SCIP branch-and-cut from the best plan; its primal heuristic is `restrict_into` around
    the latest candidate the block rule rejected (within RESTRICT_SHARE of the time). `first`
    gets the time of its first plan if none is known."""
    sep = CombinedSeparator(rule, fractional=True)
    best = [warm]
    end = None if opts.time_limit is None else t0 + opts.time_limit

    def restrict(y: np.ndarray) -> np.ndarray | None:
        out = restrict_into(pm, rule, num_plots, end, opts.mip_gap, enough, y, model, best[0])
        if out is not None and (best[0] is None or model.objective_value(out)
                                < model.objective_value(best[0])):
            best[0] = out
        return out

    def on_incumbent(x: np.ndarray, _obj: float) -> bool:
        if not first:
            first.append(time.perf_counter() - t0)
        if best[0] is None or model.objective_value(x) < model.objective_value(best[0]):
            best[0] = x.copy()
        return False

    say("final phase: SCIP branch-and-cut from the best plan")
    res = get_backend("scip").solve(model, replace(opts, time_limit=_left(opts, t0)),
                                    warm_start=warm, separator=sep,
                                    heuristic=_repair_rejected(sep, restrict, RESTRICT_SHARE),
                                    on_incumbent=on_incumbent)
    if res.has_solution and (res.x is None or not rule.admissible(res.x)):
        res = replace(res, has_solution=False, x=None, objective=None)  # never a broken plan
    res.stats.update({"separator_calls": sep.calls, "separator_rows": sep.rows})
    return ContiguousSolve(res, model, "branch_and_cut")


def restrict_into(pm: PlanModel, rule: Rule, num_plots: int, end: float | None,
                  mip_gap: float, enough: float | None, y: np.ndarray, current: ArrayModel,
                  best: np.ndarray | None) -> np.ndarray | None:
    """The final phase's repair of a rule-breaking plan y (a relaxation's optimum, a candidate):
    the restriction seeded with y's blocks and the best plan's, warm-started from the best plan
    (`construct`), so the plan found keeps y's structure where the rule allows and is no worse
    than the best; stopped at a plan as low as `enough` (the bound proves it) and after
    RESTRICT_SHARE of the time left (the next round's relaxation gives a new hint and a better
    bound). Without a best plan, the greedy repair first (fast: a first plan matters most). A
    module function: it must pickle for a child process."""
    if best is None and (fixed := repair_into(pm, rule, num_plots, end, y, current)) is not None:
        return fixed
    left = None if end is None else end - time.perf_counter()
    if left is not None and left < 1.0:
        return None
    limit = None if left is None else max(1.0, RESTRICT_SHARE * left)
    return construct(current, rule, SolveOptions(time_limit=limit, mip_gap=mip_gap),
                     hint=y, start=best, enough=enough).x


SubSolver = Callable[[list[SubProblem]], list[tuple[np.ndarray | None, float]]]


def _fixed_components(g: FarmlandGraph, chosen: np.ndarray, free: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(nodes of S − R, whether each lies in a component of S − R, on the graph without R,
    that is admissible by itself)."""
    idx = np.flatnonzero(chosen & ~free)
    k, lab = csgraph.connected_components(g.adj[idx][:, idx], directed=False)
    area = np.bincount(lab, g.area[idx], k)
    root = np.bincount(lab, g.root[idx], k) > 0
    return idx, (root | large_enough(area, g.min_size))[lab]


def free_region(rule: Rule, x: np.ndarray, plots: np.ndarray, num_candidates: int) -> np.ndarray:
    """The candidate plots of region `plots` that stay free (sorted): R-plots of a current block
    whose fixed part is not admissible by itself are frozen, over every rule part, until nothing
    changes (the module docstring says why the rest may then move freely)."""
    free = np.zeros(num_candidates, bool)
    free[plots] = True
    changed = True
    while changed and free.any():
        changed = False
        for p in rule.parts:
            g = p.graph
            chosen = x[p.cols] > 0.5
            inside = free[p.plots]
            idx, ok = _fixed_components(g, chosen, inside)
            if ok.all():
                continue
            blocks = np.flatnonzero(chosen)
            _, lab = csgraph.connected_components(g.adj[blocks][:, blocks], directed=False)
            block = np.full(g.n, -1)
            block[blocks] = lab
            bad = np.zeros(int(lab.max()) + 1, bool)
            bad[block[idx[~ok]]] = True
            freeze = chosen & inside & bad[np.maximum(block, 0)]
            if freeze.any():
                free[p.plots[freeze]] = False
                changed = True
    return np.flatnonzero(free)


def free_regions(rule: Rule, x: np.ndarray, groups: list[np.ndarray], adj: sp.spmatrix,
                 num_candidates: int) -> list[np.ndarray]:
    """Groups solved at once, cut free together: a plot adjacent (`adj`, the candidate graph) to an
    earlier group leaves its group, so no block can join two groups, and the union is frozen as one
    region — each group's sub-rule is then the union's, restricted to it."""
    owner = np.full(num_candidates, -1)
    for k, g in enumerate(groups):
        taken = (owner >= 0).astype(np.float64)
        g = g[(owner[g] < 0) & ((adj @ taken)[g] == 0)]
        owner[g] = k
    free = free_region(rule, x, np.flatnonzero(owner >= 0), num_candidates)
    return [free[owner[free] == k] for k in range(len(groups))]


def region_rule(rule: Rule, cols: np.ndarray, num_cols: int, x: np.ndarray) -> Rule:
    """The rule of the free columns' sub-graphs, with the plots adjacent to a fixed chosen plot
    of the part as extra roots (exact once `free_region` has frozen what leans on the region;
    for whole clusters there are none, and this is the cluster's own rule)."""
    pos = np.full(num_cols, -1)
    pos[cols] = np.arange(len(cols))
    parts = []
    for p in rule.parts:
        inside = pos[p.cols] >= 0
        nodes = np.flatnonzero(inside)
        if not len(nodes):
            continue
        g = p.graph
        fixed = ((x[p.cols] > 0.5) & ~inside).astype(np.float64)
        root = g.root | ((g.adj @ fixed) > 0)
        graph = FarmlandGraph(g.adj[nodes][:, nodes], g.area[nodes], root[nodes], g.min_size)
        parts.append(RulePart(p.name, graph, pos[p.cols[nodes]], p.plots[nodes], p.action))
    return Rule(parts)


def region_units(graph: FarmlandGraph, size: int, rng: np.random.Generator,
                 whole: int | None = None) -> np.ndarray:
    """A unit per candidate: its cluster (component of `graph`) where that holds at most `whole`
    (default `size`) plots, else one of ceil(2 plots / size) connected regions of it (about
    size / 2 plots, so `neighbourhoods` packs a few into one of up to `size`): the graph Voronoi
    cells (multi-source BFS) of seeds drawn at random in the cluster, so borders move between
    calls."""
    comp = graph.comp
    plots = np.bincount(comp)
    big = plots > (size if whole is None else max(whole, size))
    if not big.any():
        return comp
    nodes = np.flatnonzero(big[comp])
    order = nodes[np.lexsort((rng.random(len(nodes)), comp[nodes]))]
    first = np.searchsorted(comp[order], comp[order])  # rank within its cluster
    rank = np.arange(len(order)) - first
    seeds = order[rank < np.ceil(2 * plots[comp[order]] / size)]
    _, _, source = csgraph.dijkstra(graph.adj, indices=seeds, unweighted=True, min_only=True,
                                    return_predecessors=True)
    unit = comp.copy()
    cell = np.unique(source[nodes], return_inverse=True)[1]
    unit[nodes] = len(plots) + cell
    return np.unique(unit, return_inverse=True)[1]
