"""`greenbelt importance`: what it costs to do without each vacated plot of the best plan.

For each vacated plot p of the plan (objective z), the replacement cost is z_p - z, z_p the
optimum when p must be kept; for a plot turned to farmland also z'_p - z, z'_p the optimum when p
may be vacated but not become farmland. A plot whose loss leaves no plan meeting every target and
rule is *irreplaceable* (the re-solve is proven infeasible).

Each question is answered by bounds, lower L_p <= z_p <= U_p, until U_p - L_p <= gap * U_p:
- L_p: the plan's own dual bound (z_p >= z* >= bound) and the LP relaxation with the plan's
  block-rule cuts, raised by the marginals of p's column bounds (`lp_bounds`);
- U_p: any known plan that meets the restriction: the plan with p flipped and repaired (in the
  worker, before solving), and every plan a re-solve of another plot returns (all open questions
  are checked against it at once);
- a question these bounds cannot decide gets a neighbourhood re-solve first (`local.py`:
  fix-and-optimise around p, the rest of the plan fixed): its plan lowers U_p, never more;
- only a question still undecided is re-solved whole, warm (the block-rule cuts of the plan up
  front, its best known plan as the start), while `full_budget` lasts; the others keep their
  interval (`exact` False). Questions go cheapest lower bound first, since a cheap alternative
  plan tends to answer other cheap questions.
Re-solves run in this process, on a process pool or on a Dask cluster (`alternatives.run_tasks`).
`naive=True` is the one-solve-per-plot loop (no screen, no warm start, no shared plans), for the
benchmark.
[phasing]: z is the optimum of the time-expanded schedule model; "p kept" keeps it in every year,
"p not farmland" makes it farmland in no year (both are bounds on the last year's columns, which
the year-order rows carry back). The LP screen reads the time-expanded LP (valid as above); the
screening plan is the flipped end state scheduled anew (`schedule_set`); re-solves are monolithic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from instances.instance import Instance
from optimizer.batch.alternatives import (
    build,
    built,
    forbid,
    given_plan,
    lp_screen,
    plan_value,
    prime,
    run_tasks,
    solved_plan,
    strict,
    with_rows,
)
from optimizer.batch.local import (
    LocalHint,
    cheapness,
    flipped,
    flipped_schedule,
    local_plan,
    lp_infeasible,
    zeroed,
)
from optimizer.batch.specs import instance_fingerprint
from optimizer.blocks.search import plan_vector
from optimizer.model.build import PlanModel
from optimizer.model.kpi import FARMLAND, KEEP
from optimizer.model.phasing import PhasedPlanModel
from optimizer.model.scenario import Scenario
from optimizer.plan.solve import solve_built
from solvers.base import Cuts
from solvers.result import Termination

VARIANTS = ("keep", "no_farmland")  # p must be kept | p may not become farmland


@dataclass
class Question:
    """One re-solve, as sent to a worker (picklable)."""

    instance: str
    fingerprint: str
    scenario: dict[str, Any]
    index: int  # position in the run's question arrays
    plot: int  # candidate index
    variant: str
    base: np.ndarray  # per-plot actions of the plan
    rows: Cuts | None  # block-rule cuts of the plan's solve (warm)
    lower: float
    warm: bool
    years: np.ndarray | None = None  # [phasing]: the plan's year per plot
    local: LocalHint | None = None  # try a neighbourhood re-solve first (single-period)
    full: bool = True  # re-solve the whole model if the neighbourhood does not decide
    start: np.ndarray | None = None  # a known plan meeting the restriction (the warm start)


def answer(q: Question) -> dict[str, Any]:
    """Worker: screen with the repaired flip (or the best known plan), then a neighbourhood
    re-solve (`q.local`), then, if `q.full`, a whole re-solve, warm (or cold, naive). Without a
    whole re-solve and without any plan, the restricted LP is checked for infeasibility."""
    t0, c0 = time.perf_counter(), time.process_time()
    inst, s, base_pm = built(q.instance, q.fingerprint, q.scenario)
    open_pm = with_rows(base_pm, q.rows)
    pm = forbid(open_pm, np.array([q.plot]), farmland=True, forest=q.variant == "keep")
    start, years, obj = None, None, np.inf
    x_start = None if q.start is None else plan_vector(pm.model, pm, q.start)
    if x_start is not None:  # the best plan known for the question (a phase-2 re-solve)
        start, obj = q.start, pm.model.objective_value(x_start)
    elif q.warm and isinstance(pm, PhasedPlanModel):
        found = flipped_schedule(inst, s, pm, q.base, q.plot, q.variant)
        if found is not None:
            start, years, obj = found
    elif q.warm:
        start = flipped(inst, s, pm, q.base, q.plot, q.variant)
        if start is not None:
            obj = pm.model.objective_value(plan_vector(pm.model, pm, start))
    how = "screen"
    if q.local is not None and not isinstance(pm, PhasedPlanModel) and not (
            start is not None and obj - q.lower <= s.solver.mip_gap * abs(obj)):
        how = "neighbourhood"
        x0 = plan_vector(pm.model, pm, start) if start is not None else None
        if x0 is None:  # the plan with the plot changed; the neighbourhood repairs its rows
            x_plan = plan_vector(open_pm.model, open_pm, q.base)
            x0 = None if x_plan is None else zeroed(x_plan, pm.model)
        y = None if x0 is None else local_plan(inst, s, base_pm, pm, x0, q.plot, q.local)
        if y is not None and pm.model.objective_value(y) < obj:
            start, obj = pm.actions(y, inst.num_plots), pm.model.objective_value(y)
    if start is not None and obj - q.lower <= s.solver.mip_gap * abs(obj) or not q.full:
        proven = start is None and not q.full and lp_infeasible(pm.model, s.solver.time_limit)
        return {"index": q.index, "how": how, "objective": None if start is None else obj,
                "bound": None, "kept": None if start is None else start[pm.candidates],
                "termination": Termination.INFEASIBLE.value if proven else "",
                "seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    r = solve_built(inst, s, pm, start=start, years=years).plan.result
    ok = r.has_solution and r.objective is not None
    return {"index": q.index, "how": "re-solve", "objective": r.objective if ok else None,
            "bound": r.bound, "termination": r.termination.value,
            "kept": pm.actions(r.x, inst.num_plots)[pm.candidates] if ok else None,
            "seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


@dataclass
class ImportanceReport:
    actions: np.ndarray  # per-plot actions of the plan examined
    table: pd.DataFrame  # one row per vacated plot
    summary: dict[str, Any]
    questions: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per question


def plot_importance(
    instance: Path,
    scenario: Scenario,
    *,
    inst: Instance | None = None,
    gap: float | None = None,
    time_limit: float | None = None,
    backend: str | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    naive: bool = False,
    sample: int | None = None,
    plan: np.ndarray | None = None,
    known: list[np.ndarray] | None = None,
    progress: Callable[[int, int], None] | None = None,
    plan_years: np.ndarray | None = None,
    known_years: list[np.ndarray] | None = None,
    neighbourhood: bool = True,
    full_budget: float | None = None,
    base: tuple | None = None,
) -> ImportanceReport:
    """The replacement cost of each vacated plot of `plan` (per-plot actions; default: the
    optimal plan of `scenario`, solved here, elastic off). known: other plans (e.g. a
    portfolio) whose objectives bound the questions they meet from above; ones that miss a target
    or break a rule of the scenario are ignored.
    sample: answer only this many questions (drawn with seed 0), for timing the naive loop.
    [phasing]: the plan is a schedule (`plan_years`, `known_years`: year per plot), the optimum
    that of the time-expanded model, and a plot kept (not farmland) at the end is kept (not
    farmland) in every year; the questions are of the end state's vacated plots.
    neighbourhood: answer each question the screen leaves open by fix-and-optimise around the
    plot first (`local.py`: an upper end), then re-solve the whole model only for the questions
    whose interval is still wider than the gap, while `full_budget` seconds (wall, all of them
    together; None: no limit, 0: never) last. base: `solved_base`'s result, to reuse a plan."""
    t0 = time.perf_counter()
    if inst is None:
        from instances.loader import load_instance

        inst = load_instance(instance)
    fp = instance_fingerprint(Path(instance))
    prime(str(instance), fp, inst)
    s = strict(scenario)
    s.solver.mip_gap = s.solver.mip_gap if gap is None else gap
    s.solver.backend = backend or s.solver.backend
    s.solver.time_limit = s.solver.time_limit if time_limit is None else time_limit
    pm = build(inst, s)
    if base is not None:
        actions, years, z, bound, status, rule_rows = base
    elif plan is None:
        actions, years, z, bound, status, rule_rows = solved_plan(inst, s, pm)
    else:
        actions, years, z, bound, status, rule_rows = given_plan(inst, s, pm, plan, plan_years)
    gap_ = s.solver.mip_gap
    base_s = time.perf_counter() - t0
    act = actions[pm.candidates]
    must = pm.rules.must_vacate[pm.candidates]
    keep_q = np.flatnonzero((act > 0) & ~must)
    farm_q = np.flatnonzero(act == FARMLAND)
    plots = np.concatenate([keep_q, farm_q])
    variant = np.array(["keep"] * len(keep_q) + ["no_farmland"] * len(farm_q))
    nc = len(pm.candidates)
    n = len(plots)
    lower = np.full(n, bound)
    upper = np.full(n, np.inf)
    how = np.full(n, "", dtype=object)
    term = np.full(n, "", dtype=object)
    seconds, cpu = np.zeros(n), np.zeros(n)  # per question: wall, CPU of its worker process
    t1 = time.perf_counter()
    hint = None
    if not naive:
        forced = [np.array([p, nc + p]) if v == "keep" else np.array([p])
                  for p, v in zip(plots, variant, strict=True)]
        screened = with_rows(pm, rule_rows).model
        _, lp, reduced = lp_screen(screened, forced)
        lower = np.maximum(lower, lp)
        local = neighbourhood and not isinstance(pm, PhasedPlanModel)
        hint = LocalHint(cheapness(screened, reduced, pm.vector(actions), nc)) if local else None
    screen_s = time.perf_counter() - t1
    order = np.argsort(lower, kind="stable") if not naive else np.arange(n)
    if sample is not None and sample < n:
        order = np.sort(np.random.default_rng(0).choice(n, sample, replace=False))
    questions = [Question(str(instance), fp, s.to_dict(), int(i), int(plots[i]), str(variant[i]),
                          actions, None if naive else rule_rows, float(lower[i]),
                          not naive, years, hint, hint is None) for i in order]
    is_keep = variant == "keep"
    done_count = [0]
    best: dict[int, np.ndarray] = {}  # question -> the candidate actions of its best plan

    def decided(i: int) -> bool:
        return bool(np.isfinite(upper[i]) and upper[i] - lower[i] <= gap_ * abs(upper[i]))

    def wanted(q: Question) -> bool:
        if not naive and decided(q.index):
            how[q.index] = "screen"
            _tick()
            return False
        return True

    def _tick() -> None:
        done_count[0] += 1
        if progress:
            progress(done_count[0], len(questions))

    def done(q: Question, res: dict[str, Any]) -> None:
        i = q.index
        if "error" in res:
            how[i], term[i] = "failed", res["error"]
            _tick()
            return
        how[i], term[i], seconds[i] = res["how"], res["termination"], res["seconds"]
        cpu[i] = res.get("cpu_s", 0.0)
        if res["bound"] is not None and np.isfinite(res["bound"]):
            lower[i] = max(lower[i], res["bound"])
        if res["termination"] == Termination.INFEASIBLE.value:
            lower[i] = np.inf
        if res["objective"] is not None:
            if res["objective"] < upper[i]:
                best[i] = res["kept"]
            upper[i] = min(upper[i], res["objective"])
            if not naive:
                share(res["kept"], res["objective"])
        _tick()

    def share(kept: np.ndarray, objective: float) -> None:
        """A plan (candidate actions) answers every question it meets, at its objective."""
        k = kept[plots]
        meets = (k == KEEP) | (~is_keep & (k != FARMLAND))
        for i in np.flatnonzero(meets & (objective < upper)):
            best[int(i)] = kept
        upper[meets] = np.minimum(upper[meets], objective)

    others = [] if naive else known or []
    for other, other_years in zip(others, known_years or [None] * len(others), strict=True):
        value = plan_value(inst, s, pm, other, other_years)
        if value is not None:
            share(other[pm.candidates], value)

    run_tasks(answer, questions, done, wanted=wanted, workers=workers, scheduler=scheduler)
    if hint is not None:  # the whole model only where the interval is still open, on budget
        t2 = time.perf_counter()
        left = [q for q in questions if not decided(q.index) and not np.isposinf(lower[q.index])
                and how[q.index] != "failed"]
        for q in left:
            q.local, q.full = None, True
            if q.index in best:
                q.start = actions.copy()
                q.start[pm.candidates] = best[q.index]

        def affordable(q: Question) -> bool:
            if decided(q.index):
                return False
            return full_budget is None or time.perf_counter() - t2 < full_budget

        done_count[0] -= len(left)
        run_tasks(answer, left, done, wanted=affordable, workers=workers, scheduler=scheduler)
    asked = np.zeros(n, bool)
    asked[order] = True
    frame = pd.DataFrame({"plot": plots, "variant": variant, "lower": lower, "upper": upper,
                          "how": how, "termination": term, "seconds": seconds, "cpu_s": cpu,
                          "asked": asked})
    table = importance_table(inst, pm, actions, frame, z, years, gap_)
    fin = asked & np.isfinite(upper)
    exact = np.isposinf(lower) | np.array([decided(i) for i in range(n)], bool) & np.isfinite(lower)
    width = (upper[fin] - lower[fin]) / np.maximum(np.abs(upper[fin]), 1e-9)
    summary = {
        "objective": z, "bound": bound if np.isfinite(bound) else None, "gap": gap_,
        "plan_status": status,
        "vacated_plots": int((act > 0).sum()), "questions": int(asked.sum()),
        "decided_by_screen": int(((how == "screen") & asked).sum()),
        "by_neighbourhood": int(((how == "neighbourhood") & asked & exact).sum()),
        "re_solved": int(((how == "re-solve") & asked).sum()),
        "open": int((asked & ~exact).sum()),  # interval wider than the gap (or no plan found)
        "interval": {"median": float(np.median(width)) if len(width) else None,
                     "max": float(width.max()) if len(width) else None,
                     "without_plan": int((asked & ~np.isfinite(upper)
                                          & ~np.isposinf(lower)).sum())},
        "failed": int((how == "failed").sum()),
        "irreplaceable": int(np.isposinf(lower).sum()),
        # a re-solve may find a plan better than the one examined (it was optimal within the gap)
        "best_objective_found": float(min(z, upper.min(initial=np.inf))),
        "workers": workers, "scheduler": scheduler, "naive": naive,
        "cpu_s": {"questions": float(cpu.sum()),
                  "per_re_solve": float(cpu[how == "re-solve"].mean())
                  if (how == "re-solve").any() else None},
        "seconds": {"plan": base_s, "lp_screen": screen_s,
                    "questions": time.perf_counter() - t1, "total": time.perf_counter() - t0},
    }
    return ImportanceReport(actions, table, summary, frame)


def importance_table(inst: Instance, pm: PlanModel, actions: np.ndarray, q: pd.DataFrame,
                     z: float, years: np.ndarray | None = None,
                     gap_: float | None = None) -> pd.DataFrame:
    """One row per vacated plot: replacement cost (upper - z), its lower bound, the gap of the
    answer, how it was decided; the same for 'may not become farmland' on farmland plots;
    [phasing]: the year the plan vacates it; `exact`: proven irreplaceable, or the interval
    [lower, replacement cost] within the gap `gap_` (else only the interval is known).
    Ranked: irreplaceable first, then by replacement
    cost."""
    p = inst.plots
    cand = pm.candidates
    vac = np.flatnonzero(actions[cand] > 0)
    rows = pd.DataFrame({"plot": vac})
    for variant, prefix in (("keep", ""), ("no_farmland", "farmland_")):
        part = q[q["variant"] == variant].set_index("plot")
        sub = part.reindex(vac)
        upper, lower = sub["upper"].to_numpy(float), sub["lower"].to_numpy(float)
        answered = sub["asked"].fillna(False).to_numpy(bool)
        infeasible = answered & np.isinf(lower)
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = np.where(np.isfinite(upper) & np.isfinite(lower),
                           (upper - lower) / np.maximum(np.abs(upper), 1e-9), np.nan)
        rows[f"{prefix}replacement_cost_wan"] = np.where(np.isfinite(upper), upper - z, np.nan)
        rows[f"{prefix}lower_bound_wan"] = np.where(np.isfinite(lower), lower - z, np.nan)
        rows[f"{prefix}gap"] = np.clip(gap, 0.0, None)
        how = sub["how"].fillna("").to_numpy(object)
        unknown = answered & ~infeasible & ~np.isfinite(upper) & (how != "failed")
        rows[f"{prefix}decided_by"] = np.select(
            [infeasible, unknown], ["proven infeasible", "unknown: no plan in the time limit"],
            how)
        rows[f"{prefix}irreplaceable"] = infeasible
        if gap_ is not None:
            rows[f"{prefix}exact"] = answered & (infeasible | (np.nan_to_num(gap, nan=np.inf)
                                                               <= gap_ + 1e-9))
    ids = cand[vac]
    must = pm.rules.must_vacate[ids]
    rows["decided_by"] = np.where(must, "illegal building: must be vacated", rows["decided_by"])
    out = pd.DataFrame({
        "plot_id": p["plot_id"].astype(str).to_numpy()[ids],
        "township": p["township"].astype(str).to_numpy()[ids],
        "area_mu": pm.rules.area[ids].round(3),
        "action": np.where(actions[ids] == FARMLAND, "farmland", "forest"),
        **({} if years is None else {"year": years[ids]}),
    })
    out = pd.concat([out, rows.drop(columns="plot")], axis=1)
    key = np.where(out["irreplaceable"], np.inf, out["replacement_cost_wan"].fillna(-np.inf))
    out = out.iloc[np.argsort(-key, kind="stable")].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def write_importance(inst: Instance, report: ImportanceReport, out: Path) -> dict[str, Path]:
    from optimizer.reporting.export import atomic_path, write_csv, write_json
    from optimizer.reporting.maps import draw_value_map

    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "importance.csv", "summary": out / "importance.json",
             "map": out / "importance_map.png", "report": out / "report.html"}
    write_csv(report.table, paths["table"])
    write_json(report.summary, paths["summary"])
    ids = pd.Index(inst.plots["plot_id"].astype(str))
    pos = ids.get_indexer(report.table["plot_id"])
    values = np.full(inst.num_plots, np.nan)
    values[pos] = report.table["replacement_cost_wan"].to_numpy(float)
    flagged = np.zeros(inst.num_plots, bool)
    flagged[pos] = report.table["irreplaceable"].to_numpy(bool)
    with atomic_path(paths["map"]) as tmp:
        draw_value_map(inst, values, tmp, f"{inst.name}: replacement cost of each vacated plot",
                       "replacement cost (wan yuan)", flagged=flagged,
                       flagged_label="irreplaceable (no plan without it)")
    from optimizer.reporting.pages import write_importance_report

    write_importance_report(inst, report.table, paths["report"],
                            f"{inst.name}: replacement cost of each vacated plot")
    return paths
