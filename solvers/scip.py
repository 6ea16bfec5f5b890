"""SCIP back-end (PySCIPOpt 6.3), the one back-end that adds rows during the search.

Build: one ``addVar`` per column and one linear constraint per row built from a ready term dict.
PySCIPOpt 6.3 has ``addMatrixVar``/``addMatrixCons`` but no scipy-sparse product (``A @ x`` on a
MatrixVariable fails) and ``addMatrixVar`` measured slower than the loop; the loop builds a
100k x 100k, 500k-nonzero model in ~1.5 s, faster than writing MPS and ``readProblem`` (~2.7 s).

Lazy rows: a constraint handler (``_LazyRows``) implements the Separator contract.
* ``conscheck``: asks ``separator(x, integral=True)`` about a candidate; rows returned => the
  candidate is rejected (INFEASIBLE) and the rows are queued (check may not add rows).
* ``consenfolp`` / ``consenfops`` (enforcement priority below integrality, so the LP or pseudo
  solution seen is integral): rows returned are added as constraints (CONSADDED), which cuts the
  candidate off; none => FEASIBLE.
* ``conssepalp``: ``separator(x, integral=False)`` on fractional LP points; violated rows are
  added as removable constraints.
Every column is locked both ways (``conslock``) because a lazy row may involve any column with any
sign; without the locks dual presolve could fix a column against rows it cannot see.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from solvers.base import (
    Backend,
    Cuts,
    Heuristic,
    IncumbentCallback,
    Separator,
    SolveRequest,
)
from solvers.model import ArrayModel
from solvers.result import Result, Termination, relative_gap

MIN_SEARCH_S = 0.01  # a build that used up the limit: SCIP only checks the warm start

_STATUS = {
    "optimal": Termination.OPTIMAL,
    "gaplimit": Termination.OPTIMAL,  # stopped within the requested gap
    "infeasible": Termination.INFEASIBLE,
    "unbounded": Termination.UNBOUNDED,
    "inforunbd": Termination.OTHER,  # resolved in _result
    "timelimit": Termination.TIME_LIMIT,
    "nodelimit": Termination.NODE_LIMIT,
    "totalnodelimit": Termination.NODE_LIMIT,
    "stallnodelimit": Termination.NODE_LIMIT,
    "sollimit": Termination.NODE_LIMIT,
    "bestsollimit": Termination.NODE_LIMIT,
    "restartlimit": Termination.NODE_LIMIT,
    "memlimit": Termination.ERROR,
    "userinterrupt": Termination.INTERRUPTED,
    "terminate": Termination.INTERRUPTED,
}

_VIOLATION_TOL = 1e-6


def _add_rows(scip: Any, terms: list[Any], cuts: Cuts, *, removable: bool) -> int:
    """Add each row of ``cuts`` as a linear constraint; return how many were added."""
    from pyscipopt.scip import Expr, ExprCons

    A = sp.csr_matrix(cuts.A)
    indptr, indices, data = A.indptr.tolist(), A.indices.tolist(), A.data.tolist()
    lower, upper = np.asarray(cuts.lower, float), np.asarray(cuts.upper, float)
    for i in range(A.shape[0]):
        s, e = indptr[i], indptr[i + 1]
        expr = Expr(dict(zip([terms[j] for j in indices[s:e]], data[s:e], strict=True)))
        lo = float(lower[i]) if np.isfinite(lower[i]) else None
        hi = float(upper[i]) if np.isfinite(upper[i]) else None
        scip.addCons(ExprCons(expr, lhs=lo, rhs=hi), name=f"lazy{i}", removable=removable)
    return int(A.shape[0])


def _violated(cuts: Cuts | None, x: np.ndarray) -> Cuts | None:
    """The rows of ``cuts`` that x violates (None if none)."""
    if cuts is None or len(cuts) == 0:
        return None
    A = sp.csr_matrix(cuts.A)
    ax = A @ x
    lower, upper = np.asarray(cuts.lower, float), np.asarray(cuts.upper, float)
    scale = np.maximum(1.0, np.abs(ax))
    bad = (ax < lower - _VIOLATION_TOL * scale) | (ax > upper + _VIOLATION_TOL * scale)
    if not bad.any():
        return None
    return Cuts(A[bad], lower[bad], upper[bad])


def _make_handlers(
    model: ArrayModel,
    xvars: Any,
    terms: list[Any],
    separator: Separator | None,
    on_incumbent: IncumbentCallback | None,
    stats: dict[str, float],
    errors: list[str],
    failures: list[Exception],
) -> tuple[Any, Any]:
    """The lazy-row constraint handler and the incumbent event handler (either may be None).

    An exception in the caller's separator or callback would reach the user as SCIP's bare
    "unspecified error"; it is kept in ``failures``, the solve interrupted, and re-raised after.
    """
    from pyscipopt import SCIP_EVENTTYPE, SCIP_RESULT, Conshdlr, Eventhdlr

    def values(scip: Any, sol: Any) -> np.ndarray:
        return np.asarray(scip.getSolVal(sol, xvars), dtype=np.float64).reshape(-1)

    def guarded(fallback: Any) -> Any:
        def wrap(method: Any) -> Any:
            def inner(self: Any, *args: Any) -> Any:
                if failures:
                    return fallback
                try:
                    return method(self, *args)
                except Exception as exc:  # re-raised by solve() once SCIP has stopped
                    failures.append(exc)
                    self.model.interruptSolve()
                    return fallback

            return inner

        return wrap

    rejected = {"result": SCIP_RESULT.INFEASIBLE}

    class LazyRows(Conshdlr):  # type: ignore[misc]
        pending: list[Cuts] = []

        def _flush(self) -> int:
            added = 0
            while self.pending:
                added += _add_rows(self.model, terms, self.pending.pop(), removable=False)
            stats["lazy_rows"] += added
            return added

        def _integral(self, sol: Any) -> tuple[np.ndarray, Cuts | None]:
            x = model.round_integers(values(self.model, sol))
            stats["separator_calls_integral"] += 1
            assert separator is not None
            return x, separator(x, True)

        @guarded(rejected)
        def conscheck(
            self, constraints: Any, solution: Any, checkintegrality: bool, checklprows: bool,
            printreason: bool, completely: bool,
        ) -> dict[str, Any]:
            x, cuts = self._integral(solution)
            if cuts is None or len(cuts) == 0:
                return {"result": SCIP_RESULT.FEASIBLE}
            self.pending.append(cuts)
            return {"result": SCIP_RESULT.INFEASIBLE}

        def _enforce(self) -> dict[str, Any]:
            flushed = self._flush()
            x, cuts = self._integral(None)
            if cuts is None or len(cuts) == 0:
                if flushed:
                    return {"result": SCIP_RESULT.CONSADDED}
                return {"result": SCIP_RESULT.FEASIBLE}
            if _violated(cuts, x) is None and not flushed:
                # the contract says rows returned for an integral x must cut it off;
                # re-adding rows x satisfies would loop forever, so stop and report
                errors.append("separator returned rows that do not cut off the candidate")
                self.model.interruptSolve()
                return {"result": SCIP_RESULT.INFEASIBLE}
            stats["lazy_rows"] += _add_rows(self.model, terms, cuts, removable=False)
            return {"result": SCIP_RESULT.CONSADDED}

        @guarded(rejected)
        def consenfolp(
            self, constraints: Any, nusefulconss: int, solinfeasible: bool
        ) -> dict[str, Any]:
            return self._enforce()

        @guarded(rejected)
        def consenfops(
            self, constraints: Any, nusefulconss: int, solinfeasible: bool, objinfeasible: bool
        ) -> dict[str, Any]:
            return self._enforce()

        @guarded({"result": SCIP_RESULT.DIDNOTRUN})
        def conssepalp(self, constraints: Any, nusefulconss: int) -> dict[str, Any]:
            flushed = self._flush()
            x = values(self.model, None)
            stats["separator_calls_fractional"] += 1
            assert separator is not None
            cuts = _violated(separator(x, False), x)
            if cuts is not None:
                stats["cut_rows"] += _add_rows(self.model, terms, cuts, removable=True)
            if flushed or cuts is not None:
                return {"result": SCIP_RESULT.CONSADDED}
            return {"result": SCIP_RESULT.DIDNOTFIND}

        def conslock(
            self, constraint: Any, locktype: Any, nlockspos: int, nlocksneg: int
        ) -> None:
            both = nlockspos + nlocksneg
            for var in xvars.flat:
                self.model.addVarLocksType(var, locktype, both, both)

    class BestSolutions(Eventhdlr):  # type: ignore[misc]
        stopped = False

        def eventinit(self) -> None:
            self.model.catchEvent(SCIP_EVENTTYPE.BESTSOLFOUND, self)

        def eventexit(self) -> None:
            self.model.dropEvent(SCIP_EVENTTYPE.BESTSOLFOUND, self)

        @guarded(None)
        def eventexec(self, event: Any) -> None:
            if self.stopped:
                return
            x = model.round_integers(values(self.model, self.model.getBestSol()))
            stats["incumbents"] += 1
            assert on_incumbent is not None
            if on_incumbent(x, model.objective_value(x)):
                self.stopped = True
                self.model.interruptSolve()

    lazy = LazyRows() if separator is not None else None
    if lazy is not None:
        lazy.pending = []
    best = BestSolutions() if on_incumbent is not None else None
    return lazy, best


def _after_lp_node() -> Any:
    from pyscipopt import SCIP_HEURTIMING

    return SCIP_HEURTIMING.AFTERLPNODE


def _make_heuristic(
    xs: list[Any], heuristic: Heuristic, stats: dict[str, float], failures: list[Exception]
) -> Any:
    """A SCIP primal heuristic that hands the LP point to the caller and tries what comes back
    (SCIP checks it against every constraint, lazy rows included, before accepting it)."""
    from pyscipopt import SCIP_RESULT, Heur

    class CallerHeuristic(Heur):  # type: ignore[misc]
        def heurexec(self, heurtiming: Any, nodeinfeasible: bool) -> dict[str, Any]:
            if failures:
                return {"result": SCIP_RESULT.DIDNOTRUN}
            try:
                point = np.array([self.model.getSolVal(None, v) for v in xs], dtype=np.float64)
                proposal = heuristic(point)
            except Exception as exc:  # re-raised by solve() once SCIP has stopped
                failures.append(exc)
                self.model.interruptSolve()
                return {"result": SCIP_RESULT.DIDNOTRUN}
            if proposal is None:
                return {"result": SCIP_RESULT.DIDNOTFIND}
            stats["heuristic_proposals"] = stats.get("heuristic_proposals", 0.0) + 1
            sol = self.model.createSol(self)
            for var, value in zip(xs, np.asarray(proposal, float).tolist(), strict=True):
                self.model.setSolVal(sol, var, value)
            if self.model.trySol(sol):
                stats["heuristic_accepted"] = stats.get("heuristic_accepted", 0.0) + 1
                return {"result": SCIP_RESULT.FOUNDSOL}
            return {"result": SCIP_RESULT.DIDNOTFIND}

    return CallerHeuristic()


class ScipBackend(Backend):
    name: ClassVar[str] = "scip"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"lazy_rows", "warm_start", "incumbents", "continuous", "heuristic"}
    )

    def __init__(self, fractional_freq: int = 1) -> None:
        # how often (in tree depth) conssepalp runs; -1 = only integral candidates are separated
        self.fractional_freq = fractional_freq

    def _solve(self, req: SolveRequest) -> Result:
        model, opts = req.model, req.options
        import pyscipopt
        from pyscipopt.scip import Expr, ExprCons, Term

        t0 = time.perf_counter()
        scip = pyscipopt.Model("greenbelt")
        if not opts.verbose:
            scip.hideOutput()
        scip.setParam("limits/gap", float(opts.mip_gap))
        scip.setParam("randomization/randomseedshift", int(opts.seed))
        if opts.time_limit is not None:
            scip.setParam("limits/time", float(opts.time_limit))

        lo = [None if not np.isfinite(v) else float(v) for v in model.col_lower.tolist()]
        hi = [None if not np.isfinite(v) else float(v) for v in model.col_upper.tolist()]
        binary = model.integrality & (model.col_lower >= 0) & (model.col_upper <= 1)
        vtype = np.where(binary, "B", np.where(model.integrality, "I", "C")).tolist()
        cost = model.c.tolist()
        xs = [
            scip.addVar(name=f"x{j}", vtype=vtype[j], lb=lo[j], ub=hi[j], obj=cost[j])
            for j in range(model.num_cols)
        ]
        if model.offset:
            scip.addObjoffset(float(model.offset))
        xvars = np.array(xs, dtype=object).view(pyscipopt.MatrixVariable)
        terms = [Term(v) for v in xs]
        A = model.A.tocsr()
        indptr, indices, data = A.indptr.tolist(), A.indices.tolist(), A.data.tolist()
        rlo = [None if not np.isfinite(v) else float(v) for v in model.row_lower.tolist()]
        rhi = [None if not np.isfinite(v) else float(v) for v in model.row_upper.tolist()]
        for i in range(model.num_rows):
            if rlo[i] is None and rhi[i] is None:
                continue
            s, e = indptr[i], indptr[i + 1]
            expr = Expr(dict(zip([terms[j] for j in indices[s:e]], data[s:e], strict=True)))
            scip.addCons(ExprCons(expr, lhs=rlo[i], rhs=rhi[i]), name=f"r{i}")

        stats: dict[str, float] = {
            "lazy_rows": 0.0,
            "cut_rows": 0.0,
            "separator_calls_integral": 0.0,
            "separator_calls_fractional": 0.0,
            "incumbents": 0.0,
        }
        errors: list[str] = []
        failures: list[Exception] = []
        lazy, best = _make_handlers(
            model, xvars, terms, req.separator, req.on_incumbent, stats, errors, failures
        )
        if lazy is not None:
            scip.includeConshdlr(
                lazy, "lazy_rows", "rows from the caller's separator",
                sepapriority=0, enfopriority=-1, chckpriority=-1,
                sepafreq=self.fractional_freq, propfreq=-1, eagerfreq=-1, maxprerounds=0,
                delaysepa=False, delayprop=False, needscons=True,
            )
            scip.addPyCons(scip.createCons(lazy, "lazy_rows", initial=False, propagate=False))
        if best is not None:
            scip.includeEventhdlr(best, "incumbents", "reports new best solutions")
        if req.heuristic is not None:
            scip.includeHeur(_make_heuristic(xs, req.heuristic, stats, failures), "caller",
                             "the caller's primal heuristic", "Y", priority=-100, freq=1,
                             timingmask=_after_lp_node())
        if req.warm_start is not None:
            sol = scip.createSol()
            for var, value in zip(xs, np.asarray(req.warm_start, float).tolist(), strict=True):
                scip.setSolVal(sol, var, value)
            stats["warm_start_accepted"] = float(bool(scip.addSol(sol, free=True)))
        build_time = time.perf_counter() - t0
        if opts.time_limit is not None:  # the limit covers the build: SCIP gets what is left
            scip.setParam("limits/time", max(MIN_SEARCH_S, float(opts.time_limit) - build_time))

        t1 = time.perf_counter()
        try:
            scip.optimize()
        except Exception:
            if not failures:
                raise
        if failures:
            raise failures[0]
        solve_time = time.perf_counter() - t1
        return self._result(scip, model, xvars, build_time, solve_time, stats, errors)

    def _result(
        self,
        scip: Any,
        model: ArrayModel,
        xvars: Any,
        build_time: float,
        solve_time: float,
        stats: dict[str, float],
        errors: list[str],
    ) -> Result:
        status = str(scip.getStatus())
        termination = _STATUS.get(status, Termination.OTHER)
        if status == "inforunbd" and model.is_bounded():
            termination = Termination.INFEASIBLE  # a bounded model cannot be unbounded
        if errors:
            termination = Termination.ERROR
        has_solution = scip.getNSols() > 0 and termination != Termination.INFEASIBLE
        x = objective = bound = None
        if has_solution:
            x = model.round_integers(
                np.asarray(scip.getSolVal(scip.getBestSol(), xvars), float).reshape(-1)
            )
            objective = model.objective_value(x)
        if termination != Termination.INFEASIBLE:
            raw = float(scip.getDualbound())
            bound = raw if np.isfinite(raw) and abs(raw) < scip.infinity() else None
        stats["nodes"] = float(scip.getNNodes())
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
            message="; ".join([status, *errors]),
            stats=stats,
        )
