"""Fix-and-optimise neighbourhoods: the model with every column outside a set of candidate
clusters fixed at the current plan, as a small model of its own, solved by row generation with
the block rule, on a local process pool or a Dask cluster.

Why a neighbourhood's solution may replace the plan's part: the free plots form whole clusters
(connected components of the candidate adjacency), and every rule part's graph is a sub-graph of
that adjacency, so a block never crosses a neighbourhood's border and the rule of the
neighbourhood's own sub-graph is the rule. Rows are linear: the fixed columns' share moves into
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

from optimizer.blocks.construct import construct, tolerance
from optimizer.blocks.cuts import FarmlandGraph
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


def sub_problems(model: ArrayModel, rule: Rule, x: np.ndarray, groups: list[np.ndarray],
                 num_plot_cols: int, time_limit: float, mip_gap: float) -> list[SubProblem]:
    """One SubProblem per group of plot columns (each group: the f and g columns of whole
    clusters; the plot columns are the first `num_plot_cols`), solved together: each row's slack
    is shared among the groups that touch it."""
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
        out.append(SubProblem(sub, _sub_rule(rule, cols, n), cols, x[cols].copy(),
                              time_limit, mip_gap))
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


def solve_sub(sub: SubProblem) -> tuple[np.ndarray | None, float]:
    """Row generation on one neighbourhood from its current values: an improved rule-abiding
    assignment of its columns (or None) and the seconds spent. Runs in a worker process."""
    t0 = time.perf_counter()
    opts = SolveOptions(time_limit=sub.time_limit, mip_gap=sub.mip_gap, threads=1)

    def repaired(x: np.ndarray, current: ArrayModel, best: np.ndarray | None) -> np.ndarray | None:
        """The restriction seeded with the blocks of the rule-breaking plan x and of the best
        plan (its warm start)."""
        left = sub.time_limit - (time.perf_counter() - t0)
        if left < 0.2:
            return None
        built = construct(current, sub.rule, SolveOptions(time_limit=left, mip_gap=sub.mip_gap),
                          hint=x, start=best)
        return built.x

    # a warm start that breaks the sub-model (importance: the plan with one plot changed) is
    # no incumbent: it is not handed over, and any rule-abiding feasible assignment is an answer
    warm_ok = sub.model.max_violation(sub.warm) <= tolerance(sub.model) and \
        sub.rule.admissible(sub.warm)
    out = _row_generation(sub.model, sub.rule, get_backend("highs"), opts, t0,
                          sub.warm if warm_ok else None,
                          lambda _m: None, repaired)
    res = out.result
    x = res.x if res.has_solution and res.x is not None else None
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
