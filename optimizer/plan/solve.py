"""Solve a scenario on an instance: build, presolve, solve, recompute every KPI from the plan."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from instances.instance import Instance
from optimizer.blocks.decompose import AUTO_LNS_CANDIDATES, solve_decomposed
from optimizer.blocks.rule import BlockReport, farmland_blocks, locked_findings
from optimizer.blocks.search import plan_vector, solve_contiguous
from optimizer.model.build import PlanModel
from optimizer.model.build import build_model as build_plain
from optimizer.model.kpi import (
    ObjectiveParts,
    PlanTotals,
    RuleViolation,
    TargetCheck,
    evaluate_targets,
    plan_objective,
    plan_totals,
    rule_violations,
)
from optimizer.model.phasing import PhasedPlanModel, build_phased
from optimizer.model.presolve import Finding, presolve
from optimizer.model.scenario import Scenario
from optimizer.plan.phased import run_phased, schedule_vector, solve_schedule
from optimizer.plan.schedule_check import schedule_checks
from solvers import get_backend
from solvers.base import Cuts, SolveOptions
from solvers.model import ArrayModel
from solvers.result import Result, Termination, relative_gap

Progress = Callable[[str], None]


@dataclass
class Plan:
    instance: str
    scenario: Scenario
    actions: np.ndarray  # per plot: 0 keep, 1 farmland, 2 forest
    checks: list[TargetCheck]
    violations: list[RuleViolation]
    totals: PlanTotals
    findings: list[Finding] = field(default_factory=list)
    result: Result | None = None
    elastic: bool = False
    method: str = "mip"
    timings: dict[str, float] = field(default_factory=dict)
    blocks: np.ndarray | None = None  # farmland block id per plot (-1: none), with contiguity
    rounds: list[dict] = field(default_factory=list)  # row-generation log
    block_summary: dict = field(default_factory=dict)  # new farmland blocks and their sizes
    years: np.ndarray | None = None  # [phasing]: calendar year each plot is vacated (0 kept)
    # the model's objective recomputed from the actions (None without a plan)
    objective_parts: ObjectiveParts | None = None

    @property
    def objective(self) -> float | None:
        """The plan's objective, recomputed from its actions and the instance ([phasing]: the
        schedule model's objective evaluated on the plan's vector)."""
        if self.objective_parts is not None:
            return self.objective_parts.total
        if self.years is not None and self.result is not None and self.result.has_solution:
            return self.result.objective
        return None

    @property
    def solver_objective(self) -> float | None:
        """The back-end's own value (may differ: scaled model, tolerances)."""
        return None if self.result is None else self.result.objective

    @property
    def bound(self) -> float | None:
        """The solver's lower bound when it is valid for our model, else None (CP-SAT on a
        rounded model: see solvers/cpsat.py)."""
        return None if self.result is None else self.result.bound

    @property
    def gap(self) -> float | None:
        """|objective - bound| / |objective| from the recomputed objective; None without a
        valid bound."""
        return relative_gap(self.objective, self.bound)

    @property
    def all_met(self) -> bool:
        return all(c.met for c in self.checks) and not self.violations

    @property
    def status(self) -> str:
        """One line for planners: why the solver stopped and what that proves."""
        r = self.result
        if r is None:
            return "not solved"
        if not r.has_solution:
            return f"no plan found ({r.termination.value})"
        gap = f"gap {self.gap:.3%}" if self.gap is not None else "gap unknown"
        if r.termination is Termination.OPTIMAL:
            # CP-SAT on a rounded model proves optimality for that model only: call the plan
            # optimal only when a valid bound shows the requested gap
            if self.gap is None:
                return "optimal for the solver's scaled model (no bound valid for this model)"
            if self.gap > self.scenario.solver.mip_gap + 1e-6:
                return (f"optimal for the solver's scaled model; not proven optimal for this "
                        f"model ({gap} against a valid bound)")
            return f"optimal within {gap}"
        return f"feasible plan, not proven optimal ({r.termination.value}, {gap})"


def options_for(s: Scenario, time_limit: float | None = None) -> SolveOptions:
    return SolveOptions(time_limit=time_limit if time_limit is not None else s.solver.time_limit,
                        mip_gap=s.solver.mip_gap, threads=s.solver.threads, seed=s.solver.seed)


def assess(inst: Instance, pm: PlanModel, actions: np.ndarray) -> tuple[
        list[TargetCheck], list[RuleViolation], PlanTotals]:
    ids = inst.plots["plot_id"].to_numpy()
    return (evaluate_targets(pm.families, actions), rule_violations(pm.rules, actions, ids),
            plan_totals(pm.rules, actions))


def solve_plan(
    inst: Instance,
    scenario: Scenario,
    *,
    backend: str | None = None,
    time_limit: float | None = None,
    elastic: bool | None = None,
    progress: Progress | None = None,
) -> Plan:
    """elastic=None: switch elastic mode on by itself when the scenario proves impossible
    (presolve) or the solver reports it infeasible, so the planner always gets the best plan and a
    per-target shortfall report."""
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    s = copy.deepcopy(scenario)  # elastic mode may be switched on: never in the caller's object
    if elastic is not None:
        s.elastic.enabled = elastic
    say(f"building the model ({inst.num_plots:,} plots)")
    build_model = build_phased if s.phasing.enabled else build_plain  # [phasing]: time-expanded
    pm = build_model(inst, s)
    findings = presolve(pm, inst.stats, inst.plots["plot_id"].to_numpy())
    if s.contiguity.enabled:  # single plots the block rule locks (must vacate, no use left)
        findings += locked_findings(inst, pm, s)
    if findings and not s.elastic.enabled and elastic is None:
        say(f"{len(findings)} target(s) cannot be met; solving in elastic mode")
        s.elastic.enabled = True
        pm = build_model(inst, s)
    build = time.perf_counter() - t0
    name = backend or s.solver.backend
    opts = options_for(s, time_limit)
    say(f"solving with {name}: {pm.model.num_cols:,} columns, {pm.model.num_rows:,} rows")
    t1 = t_run = time.perf_counter()
    result, method, rounds = _run(inst, pm, s, name, opts, say)
    if result.termination is Termination.INFEASIBLE and not s.elastic.enabled and elastic is None:
        say("the solver proved the scenario infeasible; solving in elastic mode")
        s.elastic.enabled = True
        pm = build_model(inst, s)
        if opts.time_limit is not None:  # the time limit covers both solves
            opts = replace(opts, time_limit=max(1.0, opts.time_limit - (time.perf_counter() - t1)))
        t_run = time.perf_counter()
        result, method, rounds = _run(inst, pm, s, name, opts, say)
    actions, checks, violations, totals, blocks, years = _judge(inst, pm, s, result)
    if elastic is False and result.has_solution and (
            violations or not all(c.met for c in checks)):
        # --no-elastic: a plan that misses a target or breaks a rule is no plan of the scenario
        # (an illegal building that cannot be vacated leaves the model feasible)
        missed = [f"{c.key}:{c.scope}" for c in checks if not c.met] + [v.rule for v in violations]
        say("the plan misses " + "; ".join(missed) + " and elastic mode is off: no plan")
        result = replace(result, has_solution=False, x=None, objective=None, gap=None,
                         termination=Termination.INFEASIBLE if findings else Termination.OTHER,
                         message=f"{result.message} (refused with elastic mode off: the plan "
                                 f"misses {'; '.join(missed)})".strip())
        actions, checks, violations, totals, blocks, years = _judge(inst, pm, s, result)
    # [phasing]: a schedule's objective (years, discounting) is the model's, evaluated by the
    # back-end on the plan's vector; plan_objective recomputes the single-period objective
    parts = (plan_objective(inst, s, pm.rules, checks, actions, s.elastic.enabled)
             if result.has_solution and years is None else None)
    # solve_s: wall time of the whole solve procedure (all rounds, repairs, elastic re-solve)
    timings = {"build_s": build, "solve_s": time.perf_counter() - t1,
               "total_s": time.perf_counter() - t0}
    timings.update(_first_plan(result, t_run - t0))
    return Plan(inst.name, s, actions, checks, violations, totals, findings, result,
                s.elastic.enabled, method, timings, blocks.blocks, rounds, blocks.summary(),
                years=years, objective_parts=parts)


def _judge(inst: Instance, pm: PlanModel, s: Scenario, result: Result) -> tuple[
        np.ndarray, list[TargetCheck], list[RuleViolation], PlanTotals, BlockReport,
        np.ndarray | None]:
    """The plan's actions (all keep without a solution), its target checks, rule violations,
    totals, farmland blocks and ([phasing]) years, recomputed from the actions and the
    geometry."""
    actions = (pm.actions(result.x, inst.num_plots) if result.has_solution and result.x is not None
               else np.zeros(inst.num_plots, dtype=np.int8))
    checks, violations, totals = assess(inst, pm, actions)
    blocks = farmland_blocks(inst, actions, s)
    if s.contiguity.enabled and blocks.violating:
        violations.append(RuleViolation("new farmland block neither touches existing farmland "
                                        "nor reaches the minimum size", []))
    if s.contiguity.enabled and blocks.forest_violating:
        violations.append(RuleViolation("new forest block touches neither existing forest nor "
                                        "a green wedge", []))
    years = None
    if isinstance(pm, PhasedPlanModel):  # [phasing]: the year of each plot and per-year rules
        years = (pm.schedule(result.x, inst.num_plots) if result.has_solution
                 and result.x is not None else np.zeros(inst.num_plots, dtype=np.int32))
        more, broken, notes = schedule_checks(inst, s, actions, years)
        checks += more
        violations += broken + [RuleViolation(n, []) for n in notes]
    return actions, checks, violations, totals, blocks, years


def _run(inst: Instance, pm: PlanModel, s: Scenario, name: str, opts: SolveOptions,
         say: Progress) -> tuple[Result, str, list[dict]]:
    if isinstance(pm, PhasedPlanModel):
        return run_phased(inst, pm, s, name, opts, say)
    if s.contiguity.enabled:
        c = s.contiguity
        lns = c.method == "lns" or (c.method == "auto"
                                    and len(pm.candidates) >= AUTO_LNS_CANDIDATES)
        out = (solve_decomposed(inst, pm, s, name, opts, say, workers=c.workers,
                                scheduler=c.scheduler or None) if lns
               else solve_contiguous(inst, pm, s, name, opts, say))
        method = out.method + (" + greedy fallback" if out.repaired else "")
        return out.result, method, out.rounds
    return get_backend(name).solve(pm.model, opts), "mip", []


@dataclass
class BuiltSolve:
    plan: Plan
    rule_rows: Cuts | None  # block-rule cuts found; valid for the same model with more rows/bounds


def solve_built(
    inst: Instance,
    s: Scenario,
    pm: PlanModel,
    *,
    backend: str | None = None,
    time_limit: float | None = None,
    start: np.ndarray | None = None,
    years: np.ndarray | None = None,
    progress: Progress | None = None,
) -> BuiltSolve:
    """Solve a built PlanModel as it is, for callers that add rows or tighten column bounds on
    the model of `s` (portfolio, importance): no presolve report, no elastic switch. `start`:
    per-plot actions offered as the warm start, dropped where they break the model (or, after a
    repair, the block rule). The rule's cuts found come back so a related solve can start with
    them instead of finding them again. [phasing] (a `PhasedPlanModel`): the time-expanded model
    solved monolithically (`plan/phased.py:solve_schedule`), `years` the start's year per plot."""
    say = progress or (lambda _msg: None)
    t1 = time.perf_counter()
    name = backend or s.solver.backend
    opts = options_for(s, time_limit)
    rows = None
    if isinstance(pm, PhasedPlanModel):
        x0 = schedule_vector(pm, start, years) if start is not None and years is not None \
            else None
        out = solve_schedule(inst, pm, s, name, opts, say, start=x0)
        result, rounds = out.result, out.rounds
        method = out.method + (" + two-stage fallback" if out.repaired else "")
        rows = _rule_rows(out.model, pm.model.num_rows) if s.contiguity.enabled else None
    elif s.contiguity.enabled:
        out = solve_contiguous(inst, pm, s, name, opts, say, start_actions=start)
        result, rounds = out.result, out.rounds
        method = out.method + (" + greedy fallback" if out.repaired else "")
        rows = _rule_rows(out.model, pm.model.num_rows)
    else:
        b = get_backend(name)
        warm = plan_vector(pm.model, pm, start) if start is not None else None
        result = b.solve(pm.model, opts, warm_start=warm if "warm_start" in b.capabilities
                         else None)
        method, rounds = "mip", []
    actions, checks, violations, totals, blocks, plan_years = _judge(inst, pm, s, result)
    timings = {"build_s": 0.0, "solve_s": time.perf_counter() - t1,
               "total_s": time.perf_counter() - t1, **_first_plan(result, 0.0)}
    parts = (plan_objective(inst, s, pm.rules, checks, actions, s.elastic.enabled)
             if result.has_solution and plan_years is None else None)
    plan = Plan(inst.name, s, actions, checks, violations, totals, [], result, False, method,
                timings, blocks.blocks, rounds, blocks.summary(), years=plan_years,
                objective_parts=parts)
    return BuiltSolve(plan, rows)


def _first_plan(result: Result, offset: float) -> dict[str, float]:
    """The solve's record of its first rule-abiding plan, moved from the solver stats (which
    must not hold wall-clock times: same input, same summary) to the timings, `offset` seconds
    after the timings' start."""
    first = result.stats.pop("first_plan_s", None)
    return {"first_plan_s": offset + first} if first is not None and result.has_solution else {}


def _rule_rows(final: ArrayModel, first: int) -> Cuts | None:
    """Rows the rule solve appended after row `first`, less its presolve rows (re-added anyway)."""
    keep = np.ones(final.num_rows, dtype=bool)
    keep[:first] = False
    pre = final.row_blocks.get("contiguity_presolve")
    if pre is not None:
        keep[pre] = False
    if not keep.any():
        return None
    return Cuts(final.A[keep], final.row_lower[keep], final.row_upper[keep])
