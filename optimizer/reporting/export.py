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

from instances.instance import Instance
from optimizer.model.kpi import ACTIONS, FARMLAND, FOREST
from optimizer.plan.solve import Plan

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
    })


def write_csv(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, encoding="utf-8-sig")


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


def summary_dict(plan: Plan) -> dict[str, Any]:
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
        "timings": plan.timings,
        "targets": [c.to_dict() for c in plan.checks],
        "shortfalls": shortfalls,
        "rule_violations": [{"rule": v.rule, "plots": len(v.plot_ids),
                             "examples": v.plot_ids[:10]} for v in plan.violations],
        "impossible_targets": [f.to_dict() for f in plan.findings],
        "totals": plan.totals.__dict__,
        "farmland_blocks": plan.block_summary,
        "rounds": plan.rounds,
        "scenario_settings": plan.scenario.to_dict(),
    })


def write_json(data: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def write_gpkg(inst: Instance, table: pd.DataFrame, path: Path) -> None:
    import geopandas as gpd

    gdf = gpd.GeoDataFrame(table, geometry=inst.geometry.values, crs=inst.geometry.crs)
    with atomic_path(path) as tmp:
        gdf.to_file(tmp, layer="plan", driver="GPKG")


def write_outputs(inst: Instance, plan: Plan, out: Path) -> dict[str, Path]:
    from optimizer.reporting.maps import draw_plan_map

    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("plan.csv", "summary.json", "plan.gpkg", "map.png")}
    if plan.result is not None and not plan.result.has_solution:
        # no plan to show: only the report of why (never an all-"keep" plan file)
        write_json(summary_dict(plan), paths["summary.json"])
        return {"summary.json": paths["summary.json"]}
    table = plan_table(inst, plan)
    write_csv(table, paths["plan.csv"])
    write_json(summary_dict(plan), paths["summary.json"])
    write_gpkg(inst, table, paths["plan.gpkg"])
    with atomic_path(paths["map.png"]) as tmp:
        draw_plan_map(inst, plan, tmp)
    return paths
