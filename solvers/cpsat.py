"""CP-SAT back-end (OR-Tools 9.15): the float model is scaled to integers, then solved.

Scaling (all vectorised except one proto ``add`` per row, the cheapest call the API offers):

* Columns. Integer columns stay integer, ``x_j = y_j``. A continuous column becomes an integer
  ``y_j`` on a grid, ``x_j = h_j * y_j`` with ``h_j = min(continuous_step, objective_step /
  |c_j|)`` rounded down to a power of ten, but at least ``min_step`` (defaults 0.01 of the
  column's unit, 0.01 of the objective's, 1e-4: a shortfall priced 10,000 per unit gets
  h = 1e-4, so the grid moves the objective by at most 1 per column; with h = 0.01 it moved it
  by up to 100 and CP-SAT chose a plan 16.2 above the optimum, random case 10069; with 1e-6 the
  domains grew to 1e15 points and CP-SAT's answer was 30% off, case 10025); its domain is the
  grid points inside
  ``[lb, ub]``. Infinite bounds are boxed to ``+-infinite_bound`` (default 1e9 in the column's
  unit): CP-SAT needs finite domains.
* Rows. Row i, with coefficients ``a'_ij = a_ij h_j`` on y, is multiplied by ``10**k_i`` and
  rounded: ``k_i`` is the smallest power in ``0..max_digits`` that makes every coefficient an
  integer (to 1e-9 relative), else ``max_digits``, lowered further if ``sum_j |a'_ij| Y_j`` scaled
  would pass 2**53 (``Y_j = max(|lb(y_j)|, |ub(y_j)|)``). Bounds become ``ceil(10**k L - tau)``
  and ``floor(10**k U + tau)`` with ``tau = 1e-6`` to absorb float noise (0.1 * 10 != 1).
* Objective. Scaled the same way, with power ``k_0``.

Rounding bound. For any y feasible for CP-SAT, ``x = h * y`` satisfies every original row to within

    viol_i = tau * 10**-k_i + sum_j |a'_ij - round(10**k_i a'_ij) 10**-k_i| * Y_j

and its true objective ``c @ x`` is within ``obj_err = sum_j |c'_j - round(10**k_0 c'_j)
10**-k_0| * Y_j`` of the objective CP-SAT optimised. Both are computed per solve and reported in
``Result.stats`` (``row_violation_bound`` = max_i viol_i, ``objective_error_bound``). For pure
integer models whose coefficients have at most ``max_digits`` decimals both are ~0 and the model is
exact; with continuous columns the grid can also cut off the true optimum (CP-SAT then optimises
over the grid points only).

Reported numbers are about the float model, never the scaled one:

* ``x``: with the integer columns CP-SAT chose held fixed, the continuous columns are re-solved
  exactly by LP (``polish_continuous``), so a grid point such as a shortfall of 2.26 where
  2.2565 suffices is not reported; ``objective`` is ``c @ x + offset`` of that x.
* ``bound``: CP-SAT's bound minus ``obj_err`` is a lower bound over the *scaled* model. It is a
  valid bound for the float model only when the scaled model has the same feasible set: every
  column integer and every row scaled exactly (no coefficient rounded). Otherwise the grid or a
  rounded row can cut off the float optimum (an elastic case: grid bound 27,547.07, true optimum
  27,512.47), so ``bound`` is None, ``stats["bound_valid"]`` is 0 and the scaled model's bound is
  kept as ``stats["scaled_bound"]``; termination OPTIMAL then means optimal for the scaled
  model, as the message says. ``gap`` is computed from ``objective`` and ``bound``.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from solvers.base import (
    Backend,
    IncumbentCallback,
    SolveOptions,
    SolveRequest,
)
from solvers.model import ArrayModel
from solvers.result import Result, Termination, relative_gap

_TAU = 1e-6
_LIMIT = 2.0**53  # keeps every scaled activity exactly representable in float and int64


def _row_max(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Per-row max of non-negative CSR values (0 for empty rows)."""
    out = np.zeros(indptr.shape[0] - 1)
    nonempty = np.diff(indptr) > 0
    if values.size:
        out[nonempty] = np.maximum.reduceat(values, indptr[:-1][nonempty])
    return out


def _row_sum(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    out = np.zeros(indptr.shape[0] - 1)
    nonempty = np.diff(indptr) > 0
    if values.size:
        out[nonempty] = np.add.reduceat(values, indptr[:-1][nonempty])
    return out


def scale_rows(
    M: sp.csr_matrix, Y: np.ndarray, max_digits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer coefficients for each row of M (on columns with magnitude bound Y).

    Returns (k, rounded data aligned with M.data, per-row error sum_j |a - r 10**-k| Y_j).
    """
    data, indptr = M.data, M.indptr
    rows = np.repeat(np.arange(M.shape[0]), np.diff(indptr))
    k = np.full(M.shape[0], max_digits, dtype=np.int64)
    found = np.zeros(M.shape[0], dtype=bool)
    for digits in range(max_digits + 1):
        scaled = data * 10.0**digits
        miss = np.abs(scaled - np.round(scaled)) > 1e-9 * np.maximum(1.0, np.abs(scaled))
        exact = _row_max(miss.astype(np.float64), indptr) == 0
        k[exact & ~found] = digits
        found |= exact
    # an activity bound that stays below _LIMIT after scaling
    activity = _row_sum(np.abs(data) * Y[M.indices], indptr)
    # rows whose columns are all fixed at zero have no activity: no cap needed
    cap = np.full(k.shape, max_digits, dtype=np.int64)
    live = activity > 0
    cap[live] = np.floor(np.log10(_LIMIT / activity[live])).astype(np.int64)
    k = np.minimum(k, cap)
    power = 10.0 ** k[rows].astype(np.float64)
    rounded = np.round(data * power)
    error = _row_sum(np.abs(data - rounded / power) * Y[M.indices], indptr)
    return k, rounded, error


MIN_WORKERS = 8
_EXACT_ROW = 1e-9  # a row error below this is float noise: the row was scaled exactly


def polish_continuous(model: ArrayModel, x: np.ndarray) -> np.ndarray:
    """x with its continuous columns re-optimised by LP, the integer columns held fixed.

    CP-SAT returns continuous columns on a grid; the LP gives their exact optimum for the plan
    CP-SAT chose (and exact feasibility). If the LP fails (the grid point was feasible only within
    the rounding bound) x is returned unchanged.
    """
    from scipy.optimize import linprog

    cont = ~model.integrality.astype(bool)
    if not cont.any():
        return x
    A = model.A.tocsc()
    A_c = A[:, cont]
    fixed = A[:, ~cont] @ x[~cont]
    lower, upper = model.row_lower - fixed, model.row_upper - fixed
    touched = np.diff(A_c.tocsr().indptr) > 0  # rows without a continuous column are constants
    eq = touched & (lower == upper)
    up = touched & ~eq & np.isfinite(upper)
    lo = touched & ~eq & np.isfinite(lower)
    A_ub = sp.vstack([A_c[up], -A_c[lo]], format="csr")
    b_ub = np.concatenate([upper[up], -lower[lo]])
    res = linprog(
        model.c[cont],
        A_ub=A_ub if A_ub.shape[0] else None, b_ub=b_ub if A_ub.shape[0] else None,
        A_eq=A_c[eq] if eq.any() else None, b_eq=lower[eq] if eq.any() else None,
        bounds=np.column_stack([model.col_lower[cont], model.col_upper[cont]]),
        method="highs",
    )
    if res.status != 0:
        return x
    out = x.copy()
    out[cont] = res.x
    # a feasible grid point is kept if the LP's point is worse (LP tolerances only)
    worse = model.objective_value(out) > model.objective_value(x) + 1e-9 * max(
        1.0, abs(model.objective_value(x)))
    return x if worse and model.max_violation(x) <= model.max_violation(out) else out


class _Incumbents:
    """Solution callback: hands x to on_incumbent, stops when it returns True."""

    def __init__(self, on_incumbent: IncumbentCallback, step: np.ndarray, model: ArrayModel):
        from ortools.sat.python import cp_model

        outer = self

        class Callback(cp_model.CpSolverSolutionCallback):
            def on_solution_callback(self) -> None:
                if outer.stopped:
                    return
                y = np.asarray(self.response_proto.solution, dtype=np.float64)
                x = model.round_integers(y * step)
                outer.count += 1
                if on_incumbent(x, model.objective_value(x)):
                    outer.stopped = True
                    self.stop_search()

        self.count = 0
        self.stopped = False
        self.callback = Callback()


class CpSatBackend(Backend):
    name: ClassVar[str] = "cpsat"
    capabilities: ClassVar[frozenset[str]] = frozenset({"warm_start", "incumbents"})

    def __init__(
        self,
        continuous_step: float = 1e-2,
        max_digits: int = 6,
        infinite_bound: float = 1e9,
        objective_step: float = 1e-2,
        min_step: float = 1e-4,
    ) -> None:
        self.min_step = min_step
        self.continuous_step = continuous_step
        self.objective_step = objective_step
        self.max_digits = max_digits
        self.infinite_bound = infinite_bound

    def _solve(self, req: SolveRequest) -> Result:
        model, opts = req.model, req.options
        warm_start, on_incumbent = req.warm_start, req.on_incumbent
        from ortools.sat.python import cp_model

        t0 = time.perf_counter()
        n = model.num_cols
        with np.errstate(divide="ignore"):
            fine = np.minimum(self.continuous_step, self.objective_step / np.abs(model.c))
        # a power of ten (rows with decimal coefficients stay exact), at least min_step: with
        # 1e-6 a shortfall's domain (boxed at 1e9) had 1e15 points and CP-SAT returned a plan
        # 30% above the optimum as optimal for its model (random case 10025)
        fine = 10.0 ** np.floor(np.log10(np.maximum(fine, self.min_step)) + 1e-9)
        step = np.where(model.integrality, 1.0, fine)
        big = self.infinite_bound
        lo = np.clip(model.col_lower, -big, big) / step
        hi = np.clip(model.col_upper, -big, big) / step
        y_lo = np.ceil(lo - 1e-9)
        y_hi = np.floor(hi + 1e-9)
        if (y_lo > y_hi).any():  # no grid point inside a column's bounds
            return Result(self.name, Termination.INFEASIBLE, False, message="empty column grid")
        Y = np.maximum(np.abs(y_lo), np.abs(y_hi))

        # scaled rows: A' = A diag(step), free rows dropped
        keep = np.isfinite(model.row_lower) | np.isfinite(model.row_upper)
        A = sp.csr_matrix(model.A[keep] @ sp.diags(step))
        A.sum_duplicates()
        k, coef, row_err = scale_rows(A, Y, self.max_digits)
        power = 10.0 ** k.astype(np.float64)
        # activity range of each scaled row: the bound used for an infinite side
        act_lo = _row_sum(np.minimum(coef * y_lo[A.indices], coef * y_hi[A.indices]), A.indptr)
        act_hi = _row_sum(np.maximum(coef * y_lo[A.indices], coef * y_hi[A.indices]), A.indptr)
        with np.errstate(invalid="ignore"):
            r_lo = np.ceil(model.row_lower[keep] * power - _TAU)
            r_hi = np.floor(model.row_upper[keep] * power + _TAU)
        r_lo = np.where(np.isfinite(r_lo), np.maximum(r_lo, act_lo), act_lo)
        r_hi = np.where(np.isfinite(r_hi), np.minimum(r_hi, act_hi), act_hi)
        if (r_lo > r_hi).any():  # a row no point of the column box can meet
            return Result(self.name, Termination.INFEASIBLE, False, message="row out of range")
        viol = _TAU / power + row_err

        c_scaled = sp.csr_matrix((model.c * step).reshape(1, -1))
        k0_arr, c_coef, obj_err_arr = scale_rows(c_scaled, Y, self.max_digits)
        k0 = int(k0_arr[0]) if k0_arr.size else 0
        obj_err = float(obj_err_arr[0]) if obj_err_arr.size else 0.0

        cp = cp_model.CpModel()
        proto = cp.proto
        for lo_j, hi_j in zip(y_lo.astype(np.int64).tolist(), y_hi.astype(np.int64).tolist(),
                              strict=True):
            proto.variables.add().domain.extend([lo_j, hi_j])
        indptr = A.indptr.tolist()
        indices = A.indices.tolist()
        ints = coef.astype(np.int64).tolist()
        for i, (lo_i, hi_i) in enumerate(
            zip(r_lo.astype(np.int64).tolist(), r_hi.astype(np.int64).tolist(), strict=True)
        ):
            linear = proto.constraints.add().linear
            s, e = indptr[i], indptr[i + 1]
            linear.vars.extend(indices[s:e])
            linear.coeffs.extend(ints[s:e])
            linear.domain.extend([lo_i, hi_i])
        objective = proto.objective
        objective.vars.extend(c_scaled.indices.tolist())
        objective.coeffs.extend(c_coef.astype(np.int64).tolist())
        objective.scaling_factor = 10.0**-k0
        objective.offset = float(model.offset) * 10.0**k0
        if warm_start is not None:
            hint = np.clip(np.round(np.asarray(warm_start, np.float64) / step), y_lo, y_hi)
            proto.solution_hint.vars.extend(range(n))
            proto.solution_hint.values.extend(hint.astype(np.int64).tolist())

        solver = cp_model.CpSolver()
        params = solver.parameters
        # CP-SAT's portfolio only includes its LP-bound workers from about 8 workers on: with 2
        # workers the default instance stalled at a 6.5% gap for 120 s, with 8 (time-sharing 2
        # cores) it was optimal in 2.7 s. So at least MIN_WORKERS, whatever `threads` says.
        params.num_workers = max(MIN_WORKERS, int(opts.threads))
        params.random_seed = int(opts.seed)
        params.relative_gap_limit = float(opts.mip_gap)
        params.log_search_progress = bool(opts.verbose)
        if opts.time_limit is not None:
            params.max_time_in_seconds = float(opts.time_limit)
        incumbents = _Incumbents(on_incumbent, step, model) if on_incumbent else None
        build_time = time.perf_counter() - t0

        t1 = time.perf_counter()
        status = solver.solve(cp, incumbents.callback if incumbents else None)
        solve_time = time.perf_counter() - t1

        exact = bool(model.integrality.all()) and not (row_err > _EXACT_ROW).any()
        stats = {
            "bound_valid": float(exact),
            "row_violation_bound": float(viol.max()) if viol.size else 0.0,
            "objective_error_bound": obj_err,
            "max_row_digits": float(k.max()) if k.size else 0.0,
            "objective_digits": float(k0),
            "branches": float(solver.num_branches),
            "conflicts": float(solver.num_conflicts),
        }
        if incumbents is not None:
            stats["incumbents"] = float(incumbents.count)
        stopped = incumbents is not None and incumbents.stopped
        return self._result(
            cp_model, solver, status, model, step, obj_err, exact, opts, stopped,
            build_time, solve_time, stats,
        )

    def _result(
        self,
        cp_model: Any,
        solver: Any,
        status: Any,
        model: ArrayModel,
        step: np.ndarray,
        obj_err: float,
        exact: bool,
        opts: SolveOptions,
        stopped: bool,
        build_time: float,
        solve_time: float,
        stats: dict[str, float],
    ) -> Result:
        has_solution = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        if status == cp_model.OPTIMAL:
            termination = Termination.OPTIMAL
        elif status == cp_model.INFEASIBLE:
            termination = Termination.INFEASIBLE
        elif status == cp_model.MODEL_INVALID:
            termination = Termination.ERROR
        elif stopped:
            termination = Termination.INTERRUPTED
        elif opts.time_limit is not None:  # the only other limit we set
            termination = Termination.TIME_LIMIT
        else:
            termination = Termination.OTHER
        x = objective = bound = None
        if has_solution:
            y = np.asarray(solver.response_proto.solution, dtype=np.float64)
            x = polish_continuous(model, model.round_integers(y * step))
            objective = model.objective_value(x)
        message = solver.status_name(status)
        if has_solution or termination in (Termination.TIME_LIMIT, Termination.INTERRUPTED):
            raw = float(solver.best_objective_bound)
            if math.isfinite(raw) and model.c.any():
                bound = raw - obj_err
            elif not model.c.any():
                bound = float(model.offset)
            if bound is not None and not exact:  # a bound on the scaled model only
                stats["scaled_bound"] = bound
                bound = None
                message += " (for the scaled model: continuous grid or rounded rows; no bound " \
                           "valid for the float model)"
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
            message=message,
            stats=stats,
        )
