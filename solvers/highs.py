"""HiGHS back-end (highspy 1.14): the whole model goes in with one ``passModel`` call on CSC arrays.

Incumbents come from HiGHS's MIP-solution callback; returning True from ``on_incumbent`` raises
the user interrupt. HiGHS has a lazy-constraint callback type but never invokes it, so this
back-end refuses a separator: the optimizer generates rows outside (solve, separate, re-solve).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from solvers.base import (
    Backend,
    SolveRequest,
)
from solvers.model import ArrayModel
from solvers.result import Result, Termination, relative_gap

_last_threads: int | None = None  # HiGHS keeps one global thread pool per process


def use_threads(h: Any, threads: int) -> None:
    """Set `threads` on a Highs object; HiGHS keeps one global scheduler per process and fails a
    run whose thread count differs from it, so the scheduler is reset when the count changes."""
    import highspy

    global _last_threads
    if _last_threads is not None and _last_threads != threads:
        highspy.Highs.resetGlobalScheduler(True)
    _last_threads = threads
    h.setOptionValue("threads", int(threads))


def pass_model(h: Any, model: ArrayModel, integrality: np.ndarray) -> Any:
    """The whole model into a Highs object in one ``passModel`` call on CSC arrays (integrality:
    True = integer); HiGHS's status."""
    import highspy

    csc = model.A.tocsc()
    csc.sort_indices()
    return h.passModel(
        model.num_cols,
        model.num_rows,
        int(csc.nnz),
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        float(model.offset),
        np.ascontiguousarray(model.c, dtype=np.float64),
        np.ascontiguousarray(model.col_lower, dtype=np.float64),
        np.ascontiguousarray(model.col_upper, dtype=np.float64),
        np.ascontiguousarray(model.row_lower, dtype=np.float64),
        np.ascontiguousarray(model.row_upper, dtype=np.float64),
        csc.indptr.astype(np.int32),
        csc.indices.astype(np.int32),
        csc.data.astype(np.float64),
        np.asarray(integrality).astype(np.int32),  # kContinuous = 0, kInteger = 1
    )


def highs_version() -> tuple[int, int, int]:
    import highspy

    major, minor, patch = (int(p) for p in highspy.Highs().version().split(".")[:3])
    return major, minor, patch


def stuffing_bug(version: tuple[int, int, int] | None = None) -> bool:
    """HiGHS 1.14.x fixes integer singleton columns wrongly in "singleton column stuffing".

    1.14.0 (commit 5e58bf7) let integer columns join stuffing; in a row that also holds a
    continuous singleton column it drops the integer candidates but keeps them at their bound in
    the row's activity bound, which then "proves" the continuous ones unnecessary and fixes them:
    a worse plan reported as optimal (solvers/repro/highs_stuffing). Fixed in 1.15.0 (HiGHS PR
    #2961). No option switches stuffing off in 1.14, and mip_allow_restart=false does not avoid it.
    """
    return (1, 14, 0) <= (version or highs_version()) < (1, 15, 0)


def presolve_is_safe(model: ArrayModel, version: tuple[int, int, int] | None = None) -> bool:
    """Presolve may run unless the stuffing bug can strike: it needs a continuous and an integer
    column in one model (a pure-integer model has no continuous candidate; an LP has no integer
    one), and presolve never turns an integer column continuous."""
    integral = model.integrality.astype(bool)
    mixed = bool(integral.any()) and not bool(integral.all())
    return not (mixed and stuffing_bug(version))


def status_map() -> dict[Any, Termination]:
    import highspy

    s = highspy.HighsModelStatus
    return {
        s.kOptimal: Termination.OPTIMAL,
        s.kInfeasible: Termination.INFEASIBLE,
        s.kUnbounded: Termination.UNBOUNDED,
        s.kUnboundedOrInfeasible: Termination.OTHER,  # resolved in _result
        s.kTimeLimit: Termination.TIME_LIMIT,
        s.kIterationLimit: Termination.NODE_LIMIT,
        s.kSolutionLimit: Termination.NODE_LIMIT,
        s.kInterrupt: Termination.INTERRUPTED,
        s.kHighsInterrupt: Termination.INTERRUPTED,
        s.kObjectiveBound: Termination.OTHER,
        s.kObjectiveTarget: Termination.OTHER,
        s.kMemoryLimit: Termination.ERROR,
        s.kLoadError: Termination.ERROR,
        s.kModelError: Termination.ERROR,
        s.kPresolveError: Termination.ERROR,
        s.kSolveError: Termination.ERROR,
        s.kPostsolveError: Termination.NUMERICAL,
        s.kUnknown: Termination.OTHER,
        s.kNotset: Termination.OTHER,
        s.kModelEmpty: Termination.OPTIMAL,
    }


class HighsBackend(Backend):
    name: ClassVar[str] = "highs"
    capabilities: ClassVar[frozenset[str]] = frozenset({"warm_start", "incumbents", "continuous"})

    def _solve(self, req: SolveRequest) -> Result:
        model, opts = req.model, req.options
        warm_start, on_incumbent = req.warm_start, req.on_incumbent
        import highspy

        t0 = time.perf_counter()
        h = highspy.Highs()
        h.setOptionValue("output_flag", bool(opts.verbose))
        use_threads(h, opts.threads)
        h.setOptionValue("random_seed", int(opts.seed))
        h.setOptionValue("mip_rel_gap", float(opts.mip_gap))
        # The compactness case once dodged by turning off presolve rule 16 was this bug too: the
        # model is mixed, and with presolve off it matches brute force with rule 16 on.
        if not presolve_is_safe(model):
            h.setOptionValue("presolve", "off")
        if opts.time_limit is not None:
            h.setOptionValue("time_limit", float(opts.time_limit))

        n = model.num_cols
        status = pass_model(h, model, model.integrality)
        if status == highspy.HighsStatus.kError:
            return Result(self.name, Termination.ERROR, False, message="passModel failed")
        if warm_start is not None:
            h.setSolution(n, np.arange(n, dtype=np.int32), np.asarray(warm_start, np.float64))

        stats: dict[str, float] = {"incumbents": 0.0}
        stop = [False]
        if on_incumbent is not None:

            def on_solution(e: Any) -> None:
                if stop[0]:  # HiGHS may report more before it sees the interrupt
                    return
                x = np.array(e.data_out.mip_solution, dtype=np.float64, copy=True)[:n]
                stats["incumbents"] += 1
                x = model.round_integers(x)
                if on_incumbent(x, model.objective_value(x)):
                    stop[0] = True
                    e.data_in.user_interrupt = True

            def on_interrupt(e: Any) -> None:
                if stop[0]:
                    e.data_in.user_interrupt = True

            h.cbMipImprovingSolution.subscribe(on_solution)
            h.cbMipInterrupt.subscribe(on_interrupt)
        build_time = time.perf_counter() - t0

        t1 = time.perf_counter()
        h.run()
        solve_time = time.perf_counter() - t1
        return self._result(h, model, build_time, solve_time, stats)

    def _result(
        self,
        h: Any,
        model: ArrayModel,
        build_time: float,
        solve_time: float,
        stats: dict[str, float],
    ) -> Result:
        import highspy

        status = h.getModelStatus()
        termination = status_map().get(status, Termination.OTHER)
        if status == highspy.HighsModelStatus.kUnboundedOrInfeasible and model.is_bounded():
            termination = Termination.INFEASIBLE  # a bounded model cannot be unbounded
        info = h.getInfo()
        has_solution = (
            info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
        )
        x = None
        objective = None
        if has_solution:
            x = model.round_integers(np.asarray(h.getSolution().col_value, dtype=np.float64))
            objective = model.objective_value(x)
        if model.integrality.any():
            bound = float(info.mip_dual_bound)
            stats["nodes"] = float(info.mip_node_count)
        else:  # an LP: the dual bound is the optimal objective when optimal
            bound = objective if termination == Termination.OPTIMAL else None
        if bound is not None and not np.isfinite(bound):
            bound = None
        row_dual = None
        if (not model.integrality.any() and termination == Termination.OPTIMAL
                and info.dual_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible):
            row_dual = np.asarray(h.getSolution().row_dual, dtype=np.float64).copy()
        if termination == Termination.INFEASIBLE:
            has_solution, x, objective, bound = False, None, None, None
        return Result(
            solver=self.name,
            termination=termination,
            has_solution=has_solution,
            objective=objective,
            bound=bound,
            gap=relative_gap(objective, bound),
            x=x,
            build_time=build_time,
            solve_time=solve_time,
            message=h.modelStatusToString(status),
            stats=stats,
            row_dual=row_dual,
        )
