"""`greenbelt portfolio`: k plans, each meeting every target and rule, each within a relative
gap of the best, pairwise different by at least a share of vacated area.

Distance between two plans: the weighted Jaccard distance of their vacated sets, by area,
    d(A, B) = area(A xor B) / area(A or B)   (0 = same plots vacated, 1 = nothing shared).
Plan 1 is the optimum; plan k+1 is the cheapest plan within (1 + gap) * z_1 whose distance to
each earlier plan is at least `diversity`. For a fixed earlier plan P (area a_i, v_i = f_i + g_i)
the requirement d >= delta is ONE linear row,
    (1 - delta) * sum_{i not in P} a_i v_i  -  sum_{i in P} a_i v_i  >=  -(1 - delta) * area(P),
so this is a *diversity constraint*, not a no-good cut: a no-good cut only forbids the same
vacated set again, and the next plan would differ by one small plot; the row with delta > 0
forces a real alternative, and as delta -> 0 it becomes the no-good cut. Plans that differ only
in the use (farmland / forest) of the same plots count as the same plan.
This is the greedy sequence of the k best distinct plans: plan k+1 is the best plan at distance
>= delta from plans 1..k (the brute-force tests enumerate exactly that).
Warm start: each solve starts with the block-rule cuts of every earlier solve (they hold for any
plan) and is offered the previous plan as a start where it still meets the model.
Output: a sweep folder (plan folders with done.json, comparison.csv) so `compare` works on any
two plans, selection_frequency.csv, frequency_map.png, portfolio.csv (the cost spread).

[phasing]: each plan is a five-year schedule, the optimum of the time-expanded model (solved
monolithically, whatever `[phasing] method` says, with every year's rules) under the rows above.
The distance is that of the END-STATE vacated sets (the plots vacated by the last year): two
schedules of the same plots are the same plan for a township, which gives up the same land
either way, so the next plan must change the set, not only its order. The diversity row reads
the last year's columns, which are the model's first 2n. Each plan folder holds the single-plan
annual outputs (annual_plan.csv, projects.csv, years_map.png, milestones.png), and
selection_frequency.csv gains `mean_year`: the mean year a plot is vacated over the plans that
vacate it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from instances.instance import Instance
from optimizer.batch.alternatives import (
    AlternativesError,
    build,
    objective_cap,
    stack,
    strict,
    with_rows,
)
from optimizer.batch.specs import instance_fingerprint, job_key, to_toml
from optimizer.batch.sweep import (
    DONE,
    Job,
    Sweep,
    plan_row,
    read_done,
    write_comparison,
    write_sweep_page,
)
from optimizer.model.build import PlanModel
from optimizer.model.kpi import FARMLAND, FOREST
from optimizer.model.scenario import Scenario
from optimizer.plan.check import read_plan_actions
from optimizer.plan.schedule_check import read_plan_years
from optimizer.plan.solve import Plan, solve_built
from optimizer.reporting.export import atomic_path, write_csv, write_json, write_outputs
from solvers.base import Cuts


def diversity_row(pm: PlanModel, earlier: np.ndarray, delta: float) -> Cuts:
    """d(new, earlier) >= delta as one row over the f and g columns (see the module doc)."""
    a = pm.rules.area[pm.candidates]
    inside = earlier[pm.candidates] > 0
    coef = np.where(inside, -a, (1.0 - delta) * a)
    row = np.concatenate([coef, coef, np.zeros(pm.model.num_cols - 2 * len(a))])
    return Cuts(sp.csr_matrix(row.reshape(1, -1)), np.array([-(1.0 - delta) * a[inside].sum()]),
                np.array([np.inf]))


def distance(pm: PlanModel, a: np.ndarray, b: np.ndarray) -> float:
    area = pm.rules.area[pm.candidates]
    va, vb = a[pm.candidates] > 0, b[pm.candidates] > 0
    union = area[va | vb].sum()
    return float(area[va ^ vb].sum() / union) if union > 0 else 0.0


@dataclass
class PortfolioReport:
    plans: list[Plan]
    table: pd.DataFrame  # portfolio.csv: one row per plan
    frequency: pd.DataFrame  # selection_frequency.csv
    paths: dict[str, Path]
    reused: int
    message: str  # why fewer than k plans, if so


def run_portfolio(
    instance: Path,
    scenario: Scenario,
    out: Path,
    *,
    k: int = 5,
    gap: float = 0.02,
    diversity: float = 0.1,
    inst: Instance | None = None,
    backend: str | None = None,
    time_limit: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> PortfolioReport:
    if not 0 < diversity <= 1 or gap < 0 or k < 1:
        raise AlternativesError("need k >= 1, gap >= 0 and 0 < diversity <= 1")
    say = progress or (lambda _m: None)
    if inst is None:
        from instances.loader import load_instance

        inst = load_instance(instance)
    s = strict(scenario)
    s.solver.backend = backend or s.solver.backend
    s.solver.time_limit = s.solver.time_limit if time_limit is None else time_limit
    fp = instance_fingerprint(Path(instance))
    pm = build(inst, s)
    ids = inst.plots["plot_id"]
    plans: list[Plan] = []
    actions: list[np.ndarray] = []
    years: list[np.ndarray | None] = []  # [phasing]: each plan's year per plot
    records: dict[str, dict[str, Any]] = {}
    jobs: list[Job] = []
    rows: list[Cuts | None] = []
    best: float | None = None
    reused, message = 0, ""
    out.mkdir(parents=True, exist_ok=True)
    for rank in range(1, k + 1):
        key = job_key(fp, s.to_dict(), {"portfolio_rank": rank, "gap": gap,
                                        "diversity": diversity})
        job = Job(f"plan{rank}", f"plan{rank}_{key[:8]}", key, {"rank": rank}, s.to_dict())
        folder = out / job.folder
        rec = read_done(folder, key)
        t0 = time.perf_counter()
        if rec is not None and rec["row"].get("objective") is not None:
            act, obj = read_plan_actions(folder / "plan.csv", ids), rec["row"]["objective"]
            yr = read_plan_years(folder / "plan.csv", ids, act, s) if s.phasing.enabled else None
            plan = None
            reused += 1
        else:
            edit = stack([*rows, *(diversity_row(pm, a, diversity) for a in actions)])
            model = with_rows(pm, edit)
            if best is not None:
                model = with_rows(model, objective_cap(pm.model, best + gap * abs(best)))
            say(f"plan {rank}: solving ({len(actions)} diversity rows)")
            solved = solve_built(inst, s, model, start=actions[-1] if actions else None,
                                 years=years[-1] if years else None)
            plan, r = solved.plan, solved.plan.result
            rows.append(solved.rule_rows)
            if r is None or not r.has_solution or r.objective is None or not plan.all_met:
                message = (f"plan {rank}: no plan within {gap:.1%} of the best at distance >= "
                           f"{diversity:.0%} from the earlier ones ({plan.status})")
                if rank == 1:
                    raise AlternativesError(f"the scenario has no plan meeting every target "
                                            f"({plan.status}); `greenbelt solve` reports why")
                break
            act, obj, yr = plan.actions, float(r.objective), plan.years
        best = obj if best is None else best
        near = min((distance(pm, act, a) for a in actions), default=None)
        extra = {"rank": rank, "gap_to_best": (obj - best) / max(abs(best), 1e-9),
                 "min_distance_to_earlier": near, "seconds": time.perf_counter() - t0}
        if plan is not None:
            written = write_outputs(inst, plan, folder)
            with atomic_path(folder / "scenario.toml") as tmp:
                tmp.write_text(to_toml(s.to_dict()), encoding="utf-8")
            rec = {"key": key, "name": job.name, "folder": job.folder, "params": job.params,
                   "row": {**plan_row(plan), **extra}, "error": "",
                   "outputs": [*written, "scenario.toml"]}
            write_json(rec, folder / DONE)
            plans.append(plan)
            say(f"plan {rank}: objective {obj:,.1f} (+{extra['gap_to_best']:.3%}), distance to "
                f"the earlier plans >= {near if near is not None else 0:.1%}")
        records[job.folder] = rec
        jobs.append(job)
        actions.append(act)
        years.append(yr)
    sweep = Sweep(Path(instance), fp, out, jobs, {"portfolio": {"gap": gap,
                                                               "diversity": diversity}})
    paths = {"comparison": write_comparison(sweep, records)}
    table = pd.DataFrame([{"folder": j.folder, **{c: records[j.folder]["row"].get(c) for c in (
        "rank", "objective", "gap_to_best", "min_distance_to_earlier", "cost_wan",
        "lost_output_wan", "vacated_mu", "vacated_plots", "farmland_mu", "forest_mu",
        "termination", "gap", "seconds")}} for j in jobs])
    frequency = selection_frequency(inst, pm, actions, years)
    paths |= write_portfolio(inst, table, frequency, len(actions), out)
    paths["report"] = write_sweep_page(sweep, records, inst=inst, frequency=frequency,
                                       k=len(actions))
    return PortfolioReport(plans, table, frequency, paths, reused, message)


def selection_frequency(inst: Instance, pm: PlanModel, actions: list[np.ndarray],
                        years: list[np.ndarray | None] | None = None) -> pd.DataFrame:
    """Per candidate: how often vacated, to farmland, to forest; with [phasing] also the mean
    year it is vacated over the plans that vacate it (empty where none does)."""
    cand = pm.candidates
    A = np.stack([a[cand] for a in actions]) if actions else np.zeros((0, len(cand)), np.int8)
    k = max(len(actions), 1)
    extra = {}
    if years and all(y is not None for y in years):
        Y = np.stack([y[cand] for y in years]).astype(float)  # type: ignore[index]
        n = (A > 0).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            extra["mean_year"] = np.where(n > 0, (Y * (A > 0)).sum(0) / n, np.nan).round(2)
    return pd.DataFrame({
        "plot_id": inst.plots["plot_id"].astype(str).to_numpy()[cand],
        "township": inst.plots["township"].astype(str).to_numpy()[cand],
        "area_mu": pm.rules.area[cand].round(3),
        "vacated": (A > 0).sum(0), "farmland": (A == FARMLAND).sum(0),
        "forest": (A == FOREST).sum(0), "vacated_share": ((A > 0).sum(0) / k).round(4),
        "in_plan_1": np.asarray(["keep", "farmland", "forest"])[A[0]] if len(A) else "keep",
        **extra,
    })


def write_portfolio(inst: Instance, table: pd.DataFrame, frequency: pd.DataFrame, k: int,
                    out: Path) -> dict[str, Path]:
    from optimizer.reporting.maps import draw_value_map

    paths = {"portfolio": out / "portfolio.csv", "frequency": out / "selection_frequency.csv",
             "map": out / "frequency_map.png"}
    write_csv(table, paths["portfolio"])
    write_csv(frequency, paths["frequency"])
    pos = pd.Index(inst.plots["plot_id"].astype(str)).get_indexer(frequency["plot_id"])
    values = np.full(inst.num_plots, np.nan)
    vac = frequency["vacated"].to_numpy()
    values[pos[vac > 0]] = vac[vac > 0]
    with atomic_path(paths["map"]) as tmp:
        draw_value_map(inst, values, tmp, f"{inst.name}: how often each plot is vacated in "
                       f"{k} near-optimal plans", f"plans vacating the plot (of {k})")
    return paths


def cost_spread(table: pd.DataFrame) -> dict[str, float]:
    obj = table["objective"].astype(float)
    return {"plans": len(obj), "best": float(obj.min()), "worst": float(obj.max()),
            "spread": float((obj.max() - obj.min()) / max(abs(obj.min()), 1e-9))}
