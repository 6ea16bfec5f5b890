"""Solving the five-year schedule (`[phasing]`): the time-expanded model of `model/phasing.py`.

Method (`[phasing] method`):
- two-stage start, always: stage 1 chooses the set with the single-period machinery (the same
  back-end and block-rule method); stage 2 schedules it, each *project* (a block of new farmland,
  a block of new forest with `forest_connected`, else a forest plot) vacated in one year, by a
  HiGHS MIP on the time-expanded model with everything else fixed. A union of whole end-state
  blocks is admissible, so every year end keeps the block rule without any cut.
- `monolithic` (default): the time-expanded model solved with the block rule at every year end
  (the single-period separators on each year's columns), warm-started from the two-stage plan,
  which is also the fallback; bound and gap are the monolithic model's.
- `two_stage`: stop after stage 2; the bound is the LP relaxation of the monolithic model (a valid
  lower bound), so the gap is honest, and the plan is never called optimal.

Time limit: HiGHS 1.14's root cut separation ignores its limit (124 s asked, 323 s taken on a
time-expanded model), so the large MIP steps (stage 2, the monolithic solve and its row
generation) run in a child process stopped just past their limit (`blocks/deadline.py`) and hand
back their best plan so far; the two-stage plan is the fallback.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from instances.instance import Instance
from optimizer.blocks.deadline import solve_within
from optimizer.blocks.rule import Rule, farmland_rule
from optimizer.blocks.search import ContiguousSolve, solve_contiguous
from optimizer.model.build import PlanModel, build_model
from optimizer.model.kpi import FARMLAND, FOREST
from optimizer.model.phasing import PhasedPlanModel
from optimizer.model.scenario import Scenario
from solvers import get_backend
from solvers.base import SolveOptions
from solvers.model import ArrayModel
from solvers.result import Result, Termination, relative_gap

STAGE1_SHARE = 0.3  # of the time limit: choosing the set
STAGE2_SHARE = 0.15  # scheduling it


def phased_rule(inst: Instance, pm: PhasedPlanModel, s: Scenario) -> Rule:
    """The block rule at every year end: each part of the single-period rule, once per year, on
    that year's columns."""
    base = farmland_rule(inst, pm, s)
    parts = list(base.parts)
    for k, m in enumerate(pm.year_cols[:-1]):
        parts += [replace(p, name=f"{p.name}_{pm.years[k]}", cols=m[p.cols]) for p in base.parts]
    return Rule(parts)


def projects_of(adj: sp.csr_matrix, actions: np.ndarray, forest_blocks: bool) -> np.ndarray:
    """Project id per plot (-1 kept): connected blocks of new farmland; blocks of new forest
    (with forest connectivity) or single forest plots."""
    n = len(actions)
    proj = np.full(n, -1)
    top = 0
    for action, joined in ((FARMLAND, True), (FOREST, forest_blocks)):
        idx = np.flatnonzero(actions == action)
        if not len(idx):
            continue
        if joined:
            _, lab = csgraph.connected_components(adj[idx][:, idx], directed=False)
        else:
            lab = np.arange(len(idx))
        proj[idx] = top + lab
        top += int(lab.max()) + 1
    return proj


def _left(opts: SolveOptions, t0: float, share: float = 1.0) -> float | None:
    if opts.time_limit is None:
        return None
    return max(1.0, share * (opts.time_limit - (time.perf_counter() - t0)))


def _fixed_set(pm: PhasedPlanModel, actions: np.ndarray) -> ArrayModel:
    """The time-expanded model with the end state fixed to `actions` (only years to choose)."""
    cand = pm.candidates
    a = actions[cand]
    m = pm.model
    upper, lower = m.col_upper.copy(), m.col_lower.copy()
    want = np.concatenate([a == FARMLAND, a == FOREST]).astype(float)
    for cols in pm.year_cols:
        upper[cols] = np.minimum(upper[cols], want)
    lower[pm.year_cols[-1]] = want
    return replace(m, col_lower=lower, col_upper=upper)


def _whole_projects(inst: Instance, pm: PhasedPlanModel, s: Scenario, actions: np.ndarray,
                    model: ArrayModel) -> ArrayModel:
    """Rows tying every plot of a project to the year of its first plot."""
    cand, nc = pm.candidates, len(pm.candidates)
    a = actions[cand]
    proj = projects_of(inst.adjacency[cand][:, cand], a, s.contiguity.forest_connected)
    chosen = np.flatnonzero(proj >= 0)
    if not len(chosen) or len(pm.year_cols) < 2:
        return model
    col = chosen + np.where(a[chosen] == FOREST, nc, 0)
    order = np.argsort(proj[chosen], kind="stable")
    first = np.zeros(len(chosen), dtype=bool)
    first[order[np.r_[True, np.diff(proj[chosen][order]) != 0]]] = True
    rep = np.empty(int(proj.max()) + 1, dtype=np.int64)
    rep[proj[chosen][first]] = col[first]
    tied = ~first
    k = int(tied.sum())
    rows = [sp.csr_matrix((np.r_[np.ones(k), -np.ones(k)],
                           (np.r_[np.arange(k), np.arange(k)],
                            np.r_[cols[col[tied]], cols[rep[proj[chosen][tied]]]])),
                          shape=(k, model.num_cols)) for cols in pm.year_cols[:-1]]
    A = sp.vstack(rows, format="csr")
    return model.add_rows(A, np.zeros(A.shape[0]), np.zeros(A.shape[0]), block="projects")


def schedule_set(inst: Instance, pm: PhasedPlanModel, s: Scenario, actions: np.ndarray,
                 opts: SolveOptions, say: Callable[[str], None] = lambda _m: None) -> Result:
    """Stage 2: the best schedule of a fixed end state. First whole projects per year (HiGHS,
    no cut needed); if that is infeasible (a big block holding an illegal building, a tight
    first-year budget), plot by plot with the block rule at every year end."""
    t0 = time.perf_counter()
    fixed = _fixed_set(pm, actions)
    res = solve_within("highs", _whole_projects(inst, pm, s, actions, fixed),
                       replace(opts, time_limit=_left(opts, t0, 0.5)))
    if res.has_solution or not s.contiguity.enabled:
        return res
    say("stage 2: whole projects cannot be scheduled; plot by plot with the block rule")
    s2 = copy.deepcopy(s)
    s2.contiguity.greedy_start = False
    out = solve_contiguous(inst, replace(pm, model=fixed), s2, "highs",
                           replace(opts, time_limit=_left(opts, t0)), say,
                           rule=phased_rule(inst, pm, s))
    return out.result


def run_phased(inst: Instance, pm: PhasedPlanModel, s: Scenario, name: str, opts: SolveOptions,
               say: Callable[[str], None]) -> tuple[Result, str, list[dict]]:
    t0 = time.perf_counter()
    single = copy.deepcopy(s)
    single.phasing.enabled = False
    base = build_model(inst, single)
    o1 = replace(opts, time_limit=_left(opts, t0, STAGE1_SHARE))
    say(f"stage 1: the set, single-period model ({base.model.num_cols:,} columns)")
    if s.contiguity.enabled:
        first = solve_contiguous(inst, base, single, name, o1, say).result
    else:
        first = get_backend(name).solve(base.model, o1)
    warm: np.ndarray | None = None
    if first.has_solution and first.x is not None:
        say(f"stage 2: scheduling it over {len(pm.years)} years")
        second = schedule_set(inst, pm, s, base.actions(first.x, inst.num_plots),
                              replace(opts, time_limit=_left(opts, t0, STAGE2_SHARE)), say)
        if second.has_solution and second.x is not None:
            warm = second.x
            say(f"two-stage plan: objective {pm.model.objective_value(warm):,.1f}")
    if s.phasing.method == "two_stage":
        return _two_stage(pm, warm, opts, t0), "two-stage (set, then schedule)", []
    left = replace(opts, time_limit=_left(opts, t0))
    say(f"monolithic: {pm.model.num_cols:,} columns, {pm.model.num_rows:,} rows")
    if s.contiguity.enabled:
        s2 = copy.deepcopy(s)
        s2.contiguity.greedy_start = False  # the single-period repair knows no years
        out = solve_contiguous(inst, pm, s2, name, left, say, rule=phased_rule(inst, pm, s),
                               start=warm)
        method = f"time-expanded, {out.method}" + (" + two-stage fallback" if out.repaired
                                                   else "")
        return out.result, method, out.rounds
    res = solve_within(name, pm.model, left, warm)  # a large model: in a child, stopped in time
    if warm is not None and (not res.has_solution or res.objective is None
                             or res.objective > pm.model.objective_value(warm)):
        obj = pm.model.objective_value(warm)
        res = replace(res, has_solution=True, x=warm, objective=obj,
                      gap=relative_gap(obj, res.bound),
                      message=res.message + " (two-stage fallback plan)")
        return res, "time-expanded + two-stage fallback", []
    return res, "time-expanded", []


def _two_stage(pm: PhasedPlanModel, warm: np.ndarray | None, opts: SolveOptions,
               t0: float) -> Result:
    """The stage-2 plan against the LP bound of the monolithic model (never called optimal)."""
    lp = get_backend("highs").solve(
        replace(pm.model, integrality=np.zeros(pm.model.num_cols, dtype=bool)),
        replace(opts, time_limit=_left(opts, t0)))
    bound = lp.objective if lp.termination is Termination.OPTIMAL else None
    if warm is None:
        return Result("highs", Termination.OTHER, False, bound=bound,
                      message="two-stage: no schedulable set found")
    obj = pm.model.objective_value(warm)
    return Result("highs", Termination.OTHER, True, objective=obj, bound=bound,
                  gap=relative_gap(obj, bound), x=warm,
                  message="two-stage heuristic plan; bound: LP relaxation of the time-expanded "
                          "model")


# ------------------------------------------------- a built (possibly edited) schedule model
# For portfolio and importance (`plan/solve.py:solve_built`): the time-expanded model as the
# caller hands it (extra rows, tightened bounds), solved monolithically with the block rule at
# every year end, warm from a given schedule or from the two-stage plan of the edited model.


def end_state_model(pm: PhasedPlanModel, c: np.ndarray) -> PlanModel:
    """The single-period model of the end state implied by a (possibly edited) schedule model:
    the base columns (the last year's f/g first) with their bounds, and every row that reads
    base columns only (the single-period rows, a last-year cumulative row, a caller's rows on
    the end state). A relaxation of the schedule's end state, for stage 1 of a warm start.
    `c`: the single-period objective (the schedule's last-year columns carry only the last
    year's weights, a poor guide for choosing the set)."""
    m = pm.model
    n0 = int(pm.year_cols[0][0]) if len(pm.years) > 1 else m.num_cols
    if len(c) != n0:
        raise ValueError(f"objective of {len(c)} columns for an end state of {n0}")
    A = m.A.tocsr()
    later = np.asarray(abs(A[:, n0:]).sum(axis=1)).ravel() > 0
    keep = np.flatnonzero(~later)
    first_out = int(np.flatnonzero(later)[0]) if later.any() else m.num_rows
    model = ArrayModel(
        c=np.asarray(c, dtype=float), A=A[keep][:, :n0].tocsr(), row_lower=m.row_lower[keep],
        row_upper=m.row_upper[keep], col_lower=m.col_lower[:n0], col_upper=m.col_upper[:n0],
        integrality=m.integrality[:n0], offset=m.offset,
        col_blocks={k: v for k, v in m.col_blocks.items() if v.stop <= n0},
        row_blocks={k: v for k, v in m.row_blocks.items() if v.stop <= first_out})
    return PlanModel(model, pm.candidates, pm.rules, pm.families, pm.targets, pm.family_rows,
                     pm.shortfall_cols)


def schedule_vector(pm: PhasedPlanModel, actions: np.ndarray,
                    years: np.ndarray) -> np.ndarray | None:
    """The model vector of a schedule (every year's f/g from actions and years, other columns at
    their best given them); None if it breaks a row or bound of `pm.model`."""
    m = pm.model
    fg = pm.full_vector(actions, years)
    fixed = np.zeros(m.num_cols, dtype=bool)
    for cols in pm.year_cols:
        fixed[cols] = True
    if (fg[fixed] > m.col_upper[fixed] + 1e-9).any():
        return None
    x = fg
    if not fixed.all():
        lower, upper = m.col_lower.copy(), m.col_upper.copy()
        lower[fixed] = upper[fixed] = fg[fixed]
        lp = get_backend("highs").solve(replace(m, col_lower=lower, col_upper=upper,
                                                integrality=np.zeros(m.num_cols, dtype=bool)),
                                        SolveOptions())
        if not lp.has_solution or lp.x is None:
            return None
        x = lp.x.copy()
        x[fixed] = fg[fixed]
    return x if m.max_violation(x) <= 1e-6 else None


def two_stage_start(inst: Instance, pm: PhasedPlanModel, s: Scenario, name: str,
                    opts: SolveOptions, say: Callable[[str], None]) -> np.ndarray | None:
    """A schedule of the (edited) model: stage 1 on `end_state_model`, stage 2 `schedule_set`
    on the edited model; None if either finds nothing or the result breaks the model."""
    t0 = time.perf_counter()
    single = copy.deepcopy(s)
    single.phasing.enabled = False
    end = end_state_model(pm, build_model(inst, single).model.c)
    o1 = replace(opts, time_limit=_left(opts, t0, STAGE1_SHARE))
    first = (solve_contiguous(inst, end, single, name, o1, say).result if s.contiguity.enabled
             else get_backend(name).solve(end.model, o1))
    if not first.has_solution or first.x is None:
        return None
    second = schedule_set(inst, pm, s, end.actions(first.x, inst.num_plots),
                          replace(opts, time_limit=_left(opts, t0, STAGE2_SHARE)), say)
    if not second.has_solution or second.x is None:
        return None
    x = pm.model.round_integers(second.x)
    return x if pm.model.max_violation(x) <= 1e-6 else None


def solve_schedule(inst: Instance, pm: PhasedPlanModel, s: Scenario, name: str,
                   opts: SolveOptions, say: Callable[[str], None],
                   start: np.ndarray | None = None) -> ContiguousSolve:
    """The monolithic solve of a built schedule model as it is (the `monolithic` method of
    `run_phased`, whatever `[phasing] method` says: portfolio and importance compare optima).
    `start`: a model vector; used only where it meets the model (and the rule at every year
    end), else the two-stage plan of the edited model is the start; `repaired` on the answer:
    the solver found no plan and the start is handed back (its gap against the solver's bound)."""
    t0 = time.perf_counter()
    rule = phased_rule(inst, pm, s) if s.contiguity.enabled else None
    if start is not None and (pm.model.max_violation(start) > 1e-6
                              or (rule is not None and not rule.admissible(start))):
        start = None
    if start is None:
        start = two_stage_start(inst, pm, s, name, opts, say)
        if start is not None and rule is not None and not rule.admissible(start):
            start = None
    left = replace(opts, time_limit=_left(opts, t0))
    if rule is not None:
        s2 = copy.deepcopy(s)
        s2.contiguity.greedy_start = False  # the single-period repair knows no years
        out = solve_contiguous(inst, pm, s2, name, left, say, rule=rule, start=start)
        out.method = f"time-expanded, {out.method}"
        return out
    backend = get_backend(name)
    ws = start if "warm_start" in backend.capabilities else None
    res = backend.solve(pm.model, left, warm_start=ws)
    if not res.has_solution and start is not None:
        obj = pm.model.objective_value(start)
        res = replace(res, has_solution=True, x=start, objective=obj,
                      gap=relative_gap(obj, res.bound),
                      message=res.message + " (two-stage fallback plan)")
        return ContiguousSolve(res, pm.model, "time-expanded", [], repaired=True)
    return ContiguousSolve(res, pm.model, "time-expanded")
