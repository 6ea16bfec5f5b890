"""Solving with the farmland-block rule: SCIP branch-and-cut, row generation, or the flow model.

- branch_and_cut (SCIP): the contiguity separator is a lazy constraint handler; it cuts
  violating blocks of integer candidates and separates fractional LP points.
- rowgen (HiGHS, CBC, CP-SAT cannot add rows during a search): LP cut rounds first, then
  solve -> separate (every incumbent the solver reports, and the final plan) -> add rows ->
  re-solve warm-started from the best rule-abiding plan; a loose gap until a rule-abiding plan
  appears, then the requested gap. Each round's model is a relaxation of the true problem, so
  its bound is a valid bound and a rule-abiding optimum of it is optimal.
- flow: the compact single-commodity flow formulation, solved once (the baseline).
A repaired plan (greedy farmland grown from the relaxed solution) is the warm start and the
fallback when no solver finds a rule-abiding plan in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from instances.instance import Instance
from optimizer.blocks.construct import construct
from optimizer.blocks.deadline import emit, forks, quiet, run_with_deadline
from optimizer.blocks.flow import add_flow_formulation
from optimizer.blocks.rule import CombinedSeparator, Rule, farmland_rule, repair, with_presolve
from optimizer.model.build import PlanModel
from optimizer.model.scenario import Scenario
from solvers import get_backend
from solvers.base import Backend, Cuts, SolveOptions
from solvers.model import ArrayModel
from solvers.result import Result, Termination, relative_gap

LOOSE_GAP = 0.02  # row generation: gap while no rule-abiding plan is known
LP_ROUNDS = 8  # fractional cut rounds on the LP relaxation before the first MIP
HEURISTIC_SHARE = 0.2  # branch-and-cut: at most this share of the time in the repair heuristic
CONSTRUCT_SHARE = 0.3  # the constructed warm start: at most this share of the time left
MIN_STEP = 0.5  # seconds: the least time a solver step is given


Repair = Callable[[np.ndarray, ArrayModel, np.ndarray | None], np.ndarray | None]


@dataclass
class ContiguousSolve:
    result: Result
    model: ArrayModel
    method: str
    rounds: list[dict] = field(default_factory=list)
    repaired: bool = False


def _lp(model: ArrayModel) -> ArrayModel:
    return replace(model, integrality=np.zeros(model.num_cols, dtype=bool))


def _full_x(model: ArrayModel, pm: PlanModel, actions: np.ndarray,
            time_limit: float | None = None) -> np.ndarray | None:
    """The model vector of a plan: f/g from the actions, every other column (compactness
    products, shortfalls, ...) at its best value given them (an LP with f/g fixed).
    None if the plan is not feasible for the model."""
    k = 2 * len(pm.candidates)
    fg = pm.vector(actions)
    lower, upper = model.col_lower.copy(), model.col_upper.copy()
    lower[:k] = upper[:k] = fg
    if (fg > model.col_upper[:k] + 1e-9).any():
        return None
    if model.num_cols == k:
        x = fg
    else:
        lp = get_backend("highs").solve(replace(_lp(model), col_lower=lower, col_upper=upper),
                                        SolveOptions(time_limit=time_limit))
        if not lp.has_solution or lp.x is None:
            return None
        x = lp.x.copy()
        x[:k] = fg
    return x if model.max_violation(x) <= 1e-6 else None


def solve_contiguous(
    inst: Instance,
    pm: PlanModel,
    s: Scenario,
    backend_name: str,
    opts: SolveOptions,
    say: Callable[[str], None],
    rule: Rule | None = None,
    start: np.ndarray | None = None,
    start_actions: np.ndarray | None = None,
) -> ContiguousSolve:
    """`rule`/`start`: a caller's rule (e.g. the block rule at every year end of a schedule) and
    rule-abiding warm start (a model vector), used instead of the farmland rule and the greedy
    start. `start_actions`: per-plot actions offered as the warm start (a rule-breaking one is
    repaired first); dropped if it breaks the model, then the greedy start is used."""
    t0 = time.perf_counter()
    rule = rule or farmland_rule(inst, pm, s)
    backend = get_backend(backend_name)
    method = s.contiguity.method
    if method == "auto":
        method = "branch_and_cut" if "lazy_rows" in backend.capabilities else "rowgen"
    if method == "branch_and_cut" and "lazy_rows" not in backend.capabilities:
        raise ValueError(f"branch_and_cut needs a back-end that adds rows during the search "
                         f"(scip); {backend_name} cannot: use method rowgen or flow")
    model = with_presolve(pm.model, rule, pm)
    if method == "flow":
        for p in rule.parts:
            model = add_flow_formulation(model, p.graph, p.cols, prefix=f"flow_{p.name}")
        say(f"flow formulation: {model.num_cols:,} columns, {model.num_rows:,} rows")
        return ContiguousSolve(backend.solve(model, opts), model, method)
    first_lp = get_backend("highs").solve(_lp(model), replace(opts, time_limit=_left(opts, t0,
                                                                                  0.1)))
    if first_lp.termination is Termination.INFEASIBLE:  # no plan at all: say so at once
        return ContiguousSolve(replace(first_lp, solver=backend_name, message="LP relaxation "
                                       "is infeasible: no plan meets every target"),
                               model, method)
    warm = start if start is not None else _given_start(pm, rule, model, start_actions)
    first = [time.perf_counter() - t0] if warm is not None else []  # the first plan's time
    if warm is None and s.contiguity.greedy_start:
        warm, at = _greedy_start(inst, pm, rule, model, opts, t0, say)
        first += [] if at is None else [at]
    end = None if opts.time_limit is None else t0 + opts.time_limit
    repaired = partial(repair_into, pm, rule, inst.num_plots, end)

    if method == "branch_and_cut":
        sep = CombinedSeparator(rule, fractional=True)
        say("SCIP branch-and-cut with lazy contiguity cuts")
        heuristic = None
        if s.contiguity.greedy_start and "heuristic" in backend.capabilities:
            heuristic = _repair_rejected(sep, lambda x: repaired(x, model))
        res = backend.solve(model, replace(opts, time_limit=_left(opts, t0)), warm_start=warm,
                            separator=sep, heuristic=heuristic)
        res.stats.update({"separator_calls": sep.calls, "separator_rows": sep.rows})
        out = ContiguousSolve(res, model, method)
    else:
        out = _bounded_row_generation(model, rule, backend, opts, t0, warm, say,
                                      repaired if s.contiguity.greedy_start else None, first,
                                      first_lp.objective if first_lp.termination
                                      is Termination.OPTIMAL else None)
    if first:
        out.result.stats["first_plan_s"] = min(first)
    return _fallback(out, rule, warm)


def _bounded_row_generation(model: ArrayModel, rule: Rule, backend: Backend, opts: SolveOptions,
                            t0: float, warm: np.ndarray | None, say: Callable[[str], None],
                            repaired: Repair | None, first: list[float], lp_bound: float | None
                            ) -> ContiguousSolve:
    """Row generation that ends within the time limit: a large model runs in a child process
    (`run_with_deadline`), stopped past the limit with its best rule-abiding plan (or none:
    the caller's fallback). `first` gets the time of its first plan if none is known yet."""
    left = _left(opts, t0) if opts.time_limit is not None else None
    child = forks(left, model.num_cols)

    def on_emit(_x: np.ndarray) -> None:
        if not first:
            first.append(time.perf_counter() - t0)

    done, out, last = run_with_deadline(
        _row_generation, (model, rule, backend, opts, t0, warm, quiet if child else say,
                          repaired), left, model.num_cols, on_emit)
    if done:
        return out
    say("row generation stopped at the time limit")
    if last is None:
        return ContiguousSolve(Result(backend.name, Termination.TIME_LIMIT, False, bound=lp_bound,
                                      message="row generation stopped at the time limit"),
                               model, "rowgen")
    obj = model.objective_value(last)
    return ContiguousSolve(Result(backend.name, Termination.TIME_LIMIT, True, objective=obj,
                                  bound=lp_bound, gap=relative_gap(obj, lp_bound), x=last,
                                  message="row generation stopped at the time limit"),
                           model, "rowgen")


def repair_into(pm: PlanModel, rule: Rule, num_plots: int, end: float | None,
                y: np.ndarray, current: ArrayModel, _best: np.ndarray | None = None
                ) -> np.ndarray | None:
    """Row generation's greedy repair of a rule-breaking plan y into a rule-abiding one, a
    vector of `current` (a module function: it must pickle for a child process)."""
    fixed = repair(pm, rule, pm.actions(y, num_plots))
    left = None if end is None else max(MIN_STEP, end - time.perf_counter())
    return None if fixed is None else _full_x(current, pm, fixed, left)


def _repair_rejected(sep: CombinedSeparator, repaired: Callable[[np.ndarray], np.ndarray | None],
                     share: float = HEURISTIC_SHARE) -> Callable[[np.ndarray], np.ndarray | None]:
    """SCIP heuristic: repair the latest candidate the separator rejected (once each), within
    `share` of the time so far; the LP point SCIP passes is not needed."""
    done: list[np.ndarray | None] = [None]
    start, spent = time.perf_counter(), [0.0]

    def heuristic(_point: np.ndarray) -> np.ndarray | None:
        x = sep.last_rejected
        now = time.perf_counter()
        if x is None or x is done[0] or spent[0] > share * (now - start):
            return None
        done[0] = x
        try:
            return repaired(x)
        finally:
            spent[0] += time.perf_counter() - now

    return heuristic


def plan_vector(model: ArrayModel, pm: PlanModel, actions: np.ndarray) -> np.ndarray | None:
    """The full model vector of a per-plot plan (None if it breaks the model's rows or bounds)."""
    return _full_x(model, pm, actions)


def _given_start(pm: PlanModel, rule: Rule, model: ArrayModel,
                 start: np.ndarray | None) -> np.ndarray | None:
    if start is None:
        return None
    if not rule.admissible(pm.vector(start)):
        start = repair(pm, rule, start)
        if start is None:
            return None
    return _full_x(model, pm, start)


def _greedy_start(inst: Instance, pm: PlanModel, rule: Rule, model: ArrayModel,
                  opts: SolveOptions, t0: float, say: Callable[[str], None]
                  ) -> tuple[np.ndarray | None, float | None]:
    """The warm start: the constructed plan (every target, blocks admissible by construction,
    `construct`); failing that, a first plan without the rule repaired into a rule-abiding one.
    With the seconds from t0 to that plan."""
    at = time.perf_counter() - t0
    built = construct(model, rule, replace(opts, time_limit=_left(opts, t0, CONSTRUCT_SHARE)), say)
    if built.x is not None:
        return built.x, at + (built.first_s or built.seconds)
    say(built.message)
    if _expired(opts, t0):
        return None, None
    first = get_backend("highs").solve(model, replace(opts, mip_gap=max(opts.mip_gap, LOOSE_GAP),
                                                      time_limit=_left(opts, t0, 0.25)))
    if not first.has_solution or first.x is None or _expired(opts, t0):
        return None, None
    fixed = repair(pm, rule, pm.actions(first.x, inst.num_plots))
    warm = None if fixed is None else _full_x(model, pm, fixed, _left(opts, t0))
    if warm is None:
        return None, None
    say(f"greedy repair of the plan without the rule: objective "
        f"{model.objective_value(warm):,.1f}")
    return warm, time.perf_counter() - t0


def _left(opts: SolveOptions, t0: float, share: float = 1.0) -> float | None:
    """`share` of the time left, at least MIN_STEP seconds (a step given less cannot start a
    solver usefully; callers check `_expired` before starting one)."""
    if opts.time_limit is None:
        return None
    return max(MIN_STEP, share * (opts.time_limit - (time.perf_counter() - t0)))


def _expired(opts: SolveOptions, t0: float) -> bool:
    return opts.time_limit is not None and time.perf_counter() - t0 >= opts.time_limit - MIN_STEP


def _row_generation(
    model: ArrayModel,
    rule: Rule,
    backend: Backend,
    opts: SolveOptions,
    t0: float,
    warm: np.ndarray | None,
    say: Callable[[str], None],
    repaired: Repair | None = None,
) -> ContiguousSolve:
    """`repaired(x, model, best)`: a rule-abiding plan near a plan x that breaks the rule (or
    None), `best` the best rule-abiding plan known (or None); each round's plan is repaired so
    the best known plan improves while rows are added."""
    sep = CombinedSeparator(rule, fractional=True)
    rounds: list[dict] = []
    highs = get_backend("highs")
    # Every round solves a relaxation of the true problem, so each round's bound is valid:
    # report the best of them (a cut-short last round may have a poor one).
    best_bound = -np.inf
    for k in range(LP_ROUNDS):
        if k and _expired(opts, t0):
            break
        t = time.perf_counter()
        lp = highs.solve(_lp(model), replace(opts, time_limit=_left(opts, t0, 0.2)))
        if not lp.has_solution or lp.x is None:
            break
        cuts = sep(lp.x, False)
        rounds.append({"round": len(rounds) + 1, "phase": "lp", "rows": len(cuts or []),
                       "bound": lp.objective, "seconds": time.perf_counter() - t})
        if lp.termination is Termination.OPTIMAL and lp.objective is not None:
            best_bound = max(best_bound, lp.objective)
        if cuts is None:
            break
        model = model.add_rows(cuts.A, cuts.lower, cuts.upper, block="cuts")
        say(f"LP round {k + 1}: bound {lp.objective:,.1f}, {len(cuts)} cuts")
    best_x, best_obj = warm, (model.objective_value(warm) if warm is not None else np.inf)
    gap = max(opts.mip_gap, LOOSE_GAP) if warm is None else opts.mip_gap
    result: Result | None = None
    while True:
        t = time.perf_counter()
        found: list[Cuts] = []

        def on_incumbent(x: np.ndarray, obj: float, found: list[Cuts] = found) -> bool:
            nonlocal best_x, best_obj
            cuts = sep(x, True)
            if cuts is not None:
                found.append(cuts)
            elif obj < best_obj:
                best_x, best_obj = x.copy(), obj
                emit(best_x)
            return False

        cb = on_incumbent if "incumbents" in backend.capabilities else None
        limit = _left(opts, t0)
        result = backend.solve(model, replace(opts, mip_gap=gap, time_limit=limit),
                               warm_start=best_x, on_incumbent=cb)
        final = sep(result.x, True) if result.has_solution and result.x is not None else None
        if final is not None:
            found.append(final)
            near = repaired(result.x, model, best_x) if repaired is not None else None
            if near is not None and model.objective_value(near) < best_obj:
                best_x, best_obj = near, model.objective_value(near)
                emit(best_x)
        elif (result.has_solution and result.objective is not None
              and result.objective <= best_obj + 1e-9 * max(1.0, abs(best_obj))):
            best_x, best_obj = result.x.copy(), result.objective
            emit(best_x)
        if result.bound is not None:
            best_bound = max(best_bound, result.bound)
        rows = sum(len(c) for c in found)
        rounds.append({"round": len(rounds) + 1, "phase": "mip", "rows": rows,
                       "objective": result.objective, "bound": result.bound, "gap_asked": gap,
                       "rule_abiding": final is None and result.has_solution,
                       "seconds": time.perf_counter() - t})
        say(f"MIP round {len(rounds)}: objective {result.objective}, bound {result.bound}, "
            f"{rows} cuts")
        if not result.has_solution or result.termination is not Termination.OPTIMAL:
            break  # infeasible (the rule makes the targets impossible) or out of time
        if final is None:
            if gap <= opts.mip_gap:
                break  # rule-abiding and proven within the requested gap
            gap = opts.mip_gap
            continue
        for c in found:
            model = model.add_rows(c.A, c.lower, c.upper, block="cuts")
        if _expired(opts, t0):
            break
    if np.isfinite(best_bound):
        result = replace(result, bound=best_bound)
    result = _with_incumbent(result, best_x, best_obj)
    result.stats.update({"rounds": len(rounds), "separator_rows": sep.rows,
                         "separator_calls": sep.calls})
    return ContiguousSolve(result, model, "rowgen", rounds)


def _with_incumbent(res: Result, x: np.ndarray | None, obj: float) -> Result:
    """Report the best rule-abiding plan against the best relaxation bound."""
    if x is None:
        if res.has_solution:  # the last plan breaks the rule: not a plan of the true problem
            return replace(res, has_solution=False, x=None, objective=None, gap=None,
                           termination=Termination.TIME_LIMIT
                           if res.termination is Termination.OPTIMAL else res.termination)
        return res
    term = res.termination
    if res.objective is None or res.x is None or not np.array_equal(res.x, x):
        term = Termination.TIME_LIMIT if term is Termination.OPTIMAL else term
    bound = res.bound
    return replace(res, has_solution=True, x=x, objective=obj, termination=term,
                   gap=relative_gap(obj, bound) if bound is not None else None)


def _fallback(out: ContiguousSolve, rule: Rule, warm: np.ndarray | None) -> ContiguousSolve:
    """No rule-abiding plan from the solver: hand back the repaired greedy plan, honestly."""
    res = out.result
    if res.has_solution and res.x is not None:
        if not rule.admissible(res.x):
            raise AssertionError("solver returned a plan that breaks the farmland-block rule")
        return out
    if warm is None:
        return out
    out.result = replace(res, has_solution=True, x=warm, objective=out.model.objective_value(warm),
                         gap=relative_gap(out.model.objective_value(warm), res.bound)
                         if res.bound is not None else None,
                         message=res.message + " (greedy fallback plan)")
    out.repaired = True
    return out
