"""Plan outputs: plan.csv (UTF-8 with BOM, opens in Excel), summary.json, plan.gpkg, map.png.
Every file is written to a temporary name beside it and renamed, so none is ever half-written."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyogrio.errors import DataLayerError, DataSourceError

from instances.instance import Instance
from optimizer.model.kpi import ACTIONS, FARMLAND, FOREST
from optimizer.plan.cells import neutralise_table
from optimizer.plan.runset import (
    OutputFolderError,
    begin_set,
    finish_set,
    prepare_output_folder,
)
from optimizer.plan.solve import Plan
from optimizer.reporting.annual import annual_plan, projects, year_table

PLAN_COLUMNS = ["plot_id", "action", "area_mu", "demolition_cost_wan", "restoration_cost_wan",
                "total_cost_wan", "lost_output_wan", "priority_share", "district", "township",
                "block_id", "block_mu"]


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it over `path` only on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # some writers (GDAL) refuse to overwrite; let them create it
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def plan_table(inst: Instance, plan: Plan) -> pd.DataFrame:
    p = inst.plots
    act = plan.actions
    area = p["area_mu"].to_numpy(float)
    demolition = np.where(act > 0, p["demolition_wan_per_mu"].to_numpy(float) * area, 0.0)
    restore = np.select([act == FARMLAND, act == FOREST],
                        [p["reclaim_wan_per_mu"].to_numpy(float) * area,
                         p["afforest_wan_per_mu"].to_numpy(float) * area], 0.0)
    blocks = plan.blocks if plan.blocks is not None else np.full(len(p), -1)
    block_area = pd.Series(area).groupby(blocks).transform("sum").to_numpy()
    return pd.DataFrame({
        "plot_id": p["plot_id"].astype(str),
        "action": np.asarray(ACTIONS)[act],
        "area_mu": area.round(3),
        "demolition_cost_wan": demolition.round(2),
        "restoration_cost_wan": restore.round(2),
        "total_cost_wan": (demolition + restore).round(2),
        "lost_output_wan": np.where(act > 0, p["output_wan"].to_numpy(float), 0.0).round(2),
        "priority_share": p["share_priority"].to_numpy(float).round(4),
        "district": p["district"].astype(str),
        "township": p["township"].astype(str),
        "block_id": blocks,
        "block_mu": np.where(blocks >= 0, block_area, 0.0).round(3),
        **({} if getattr(plan, "years", None) is None else  # [phasing]: the year of each plot
           {"year": pd.Series(plan.years, dtype="Int64").where(act > 0)}),
    })


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """Every CSV we write goes through here: UTF-8 with BOM, text cells neutralised against
    spreadsheet formula injection (`optimizer.plan.cells`), written atomically. Rows end in CRLF
    (RFC 4180), so a text holding a lone carriage return is quoted rather than breaking its row."""
    with atomic_path(path) as tmp:
        neutralise_table(table).to_csv(tmp, index=False, encoding="utf-8-sig",
                                       lineterminator="\r\n")


def json_ready(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return json_ready(value.item())
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def summary_dict(plan: Plan, inst: Instance | None = None) -> dict[str, Any]:
    r = plan.result
    shortfalls = {f"{c.key}:{c.scope}": max(0.0, -c.slack) for c in plan.checks if not c.met}
    return json_ready({
        "instance": plan.instance,
        "scenario": plan.scenario.name,
        "status": plan.status,
        "all_targets_met": plan.all_met,
        "elastic_mode": plan.elastic,
        "solver": None if r is None else {
            "backend": r.solver, "termination": r.termination.value,
            "has_solution": r.has_solution,
            # objective: recomputed from the plan's actions; gap: from it and the bound
            "objective": plan.objective, "solver_objective": r.objective, "bound": plan.bound,
            "bound_valid": plan.bound is not None, "gap": plan.gap, "solver_gap": r.gap,
            "build_s": r.build_time, "solve_s": r.solve_time, "stats": r.stats,
            "message": r.message,
        },
        "objective_parts": None if plan.objective_parts is None else {
            **plan.objective_parts.__dict__, "total": plan.objective_parts.total},
        "method": plan.method,
        # every wall-clock figure lives here (and in solver.build_s / solve_s): the rest of the
        # summary is the same for the same input, so two runs can be compared by it
        "timings": {**plan.timings, "rounds_s": [r.get("seconds") for r in plan.rounds]},
        "targets": [c.to_dict() for c in plan.checks],
        "shortfalls": shortfalls,
        "rule_violations": [{"rule": v.rule, "plots": len(v.plot_ids),
                             "examples": v.plot_ids[:10]} for v in plan.violations],
        "impossible_targets": [f.to_dict() for f in plan.findings],
        "totals": plan.totals.__dict__,
        "farmland_blocks": plan.block_summary,
        "rounds": [{k: v for k, v in r.items() if k != "seconds"} for r in plan.rounds],
        **({} if plan.years is None or inst is None else {"years": year_table(inst, plan)}),
        "scenario_settings": plan.scenario.to_dict(),
    })


def write_json(data: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def write_gpkg(inst: Instance, table: pd.DataFrame, path: Path) -> None:
    """Layers plan (with the planner's own attributes), zones, townships, blocks, and their
    QGIS styles (see reporting/qgis.py)."""
    from optimizer.reporting.qgis import write_plan_gpkg

    with atomic_path(path) as tmp:
        write_plan_gpkg(inst, table, tmp)


CORE_OUTPUTS = ("plan.csv", "summary.json", "plan.gpkg", "map.png")
OUTPUTS = (*CORE_OUTPUTS, "plan.xlsx", "report.html")
ANNUAL_OUTPUTS = ("annual_plan.csv", "projects.csv", "years_map.png", "milestones.png")


def write_xlsx_tables(inst: Instance, plan: Plan, table: pd.DataFrame, path: Path,
                      lang: str = "both") -> None:
    from optimizer.reporting.excel import write_xlsx
    from optimizer.reporting.tables import blocks_table, targets_table, townships_table

    tables = {"plan": table, "targets": targets_table(plan),
              "blocks": blocks_table(inst, plan, table),
              "townships": townships_table(inst, plan, table)}
    with atomic_path(path) as tmp:
        write_xlsx(tables, tmp, lang)


def write_outputs(inst: Instance, plan: Plan, out: Path, lang: str = "both",
                  planner_files: bool = True) -> dict[str, Path]:
    """The run's outputs as one set (`optimizer.plan.runset`): marked incomplete while written,
    manifest last: plan.csv, summary.json, plan.gpkg, map.png and, with planner_files,
    plan.xlsx and report.html (a sweep leaves those two out: seconds each on a large instance);
    with [phasing], the annual tables and charts too. No plan: summary.json alone, and an
    earlier run's plan files are removed. A failure while writing (disk full, ...) raises
    OutputFolderError; the folder stays marked."""
    prepare_output_folder(out, OUTPUTS + ANNUAL_OUTPUTS)
    names = OUTPUTS if planner_files else CORE_OUTPUTS
    paths = {name: out / name for name in names}
    begin_set(out)
    try:
        if plan.result is not None and not plan.result.has_solution:
            # no plan to show: only the report of why (never an all-"keep" plan file)
            write_json(summary_dict(plan), paths["summary.json"])
            paths = {"summary.json": paths["summary.json"]}
        else:
            _write_plan_files(inst, plan, paths, lang)
        finish_set(out, list(paths), stale=OUTPUTS + ANNUAL_OUTPUTS)
    except (OSError, DataSourceError, DataLayerError) as err:
        raise OutputFolderError(f"{out}: cannot write the outputs ({err}); the folder is marked "
                                "incomplete") from None
    return paths


def _write_plan_files(inst: Instance, plan: Plan, paths: dict[str, Path], lang: str) -> None:
    from optimizer.reporting.maps import draw_plan_map

    table = plan_table(inst, plan)
    write_csv(table, paths["plan.csv"])
    write_json(summary_dict(plan, inst), paths["summary.json"])
    write_gpkg(inst, table, paths["plan.gpkg"])
    with atomic_path(paths["map.png"]) as tmp:
        draw_plan_map(inst, plan, tmp, lang=lang)
    if "plan.xlsx" in paths:
        write_xlsx_tables(inst, plan, table, paths["plan.xlsx"], lang)
    if "report.html" in paths:
        from optimizer.reporting.report import write_report

        with atomic_path(paths["report.html"]) as tmp:
            write_report(inst, plan, table, tmp)
    if plan.years is not None:  # [phasing]: the annual plan, projects and charts, in the set
        paths.update(write_annual_outputs(inst, plan, paths["plan.csv"].parent))


def write_annual_outputs(inst: Instance, plan: Plan, out: Path) -> dict[str, Path]:
    """[phasing]: annual_plan.csv, projects.csv, years_map.png, milestones.png."""
    from optimizer.reporting.annual import draw_milestones, draw_years_map

    paths = {n: out / n for n in ANNUAL_OUTPUTS}
    write_csv(annual_plan(inst, plan), paths["annual_plan.csv"])
    write_csv(projects(inst, plan), paths["projects.csv"])
    with atomic_path(paths["years_map.png"]) as tmp:
        draw_years_map(inst, plan, tmp)
    with atomic_path(paths["milestones.png"]) as tmp:
        draw_milestones(year_table(inst, plan), tmp,
                        f"{inst.name}: cumulative reduction against the milestones")
    return paths
