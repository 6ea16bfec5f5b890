"""The Python API for notebooks: GeoDataFrames in, GeoDataFrames out.

    from optimizer import api
    plots = api.load("inst.gpkg")            # one row per plot, every column, geometry
    plan = api.solve(plots, {"solver": {"time_limit": 60}})
    targets = api.check(plan)                # every target recomputed from plan["action"]
    changes = api.compare(plan, other_plan)  # the plots whose action differs

Every function takes the plots as a GeoDataFrame, so a planner can edit costs, flags or land uses
with pandas before solving; the frame is re-validated by the instance loader (one-line errors,
InstanceError) and every figure is recomputed from it. Zone layers come from the file the frame
was loaded from (kept in `frame.attrs["greenbelt_source"]`), or from `zones=`; without either,
the zones are absent as in `greenbelt import` (farmland / forest = the plots of that land use).

A scenario is None (the seed scenario), a dict in the TOML file's shape, a path to a TOML file,
or a `Scenario`. This module is the top of the house: it may import every stage; none imports it.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from instances.generator import write_layers, zone_frame
from instances.instance import Instance
from instances.loader import load_instance
from instances.schema import META_LAYER, PLOT_COLUMNS, PLOTS_LAYER, TOWNSHIPS_LAYER, ZONE_LAYERS
from optimizer.batch.compare import compare_actions
from optimizer.model.kpi import ACTIONS
from optimizer.model.scenario import Scenario, load_scenario, scenario_from_dict
from optimizer.plan.check import check_actions
from optimizer.plan.solve import solve_plan
from optimizer.reporting.export import PLAN_COLUMNS, plan_table, summary_dict

SOURCE = "greenbelt_source"
_CACHE: OrderedDict[str, Instance] = OrderedDict()  # the last few instances built from frames
_CACHE_SIZE = 2

__all__ = ["check", "compare", "load", "scenario", "solve"]


def scenario(value: Scenario | dict[str, Any] | str | Path | None = None) -> Scenario:
    """A Scenario from None (seed), a dict shaped like the TOML file, or a TOML path."""
    if isinstance(value, Scenario):
        return value
    if isinstance(value, dict):
        return scenario_from_dict(value, "<dict>")
    return load_scenario(value)


def load(path: str | Path) -> gpd.GeoDataFrame:
    """The plots of an instance file (GeoPackage or Shapefile folder), validated: the schema
    columns, the planner's own columns, and the derived `area_mu`, `share_<zone>`,
    `share_priority`, `touches_farmland`, `touches_forest`, `collective`; CRS EPSG:4548."""
    inst = load_instance(path)
    frame = gpd.GeoDataFrame(inst.plots.copy(), geometry=inst.geometry.values,
                             crs=inst.geometry.crs)
    frame.attrs[SOURCE] = str(Path(path).resolve())
    _remember(_fingerprint(frame, None), inst)
    return frame


def solve(plots: gpd.GeoDataFrame, scenario_: Scenario | dict | str | Path | None = None, *,
          zones: dict[str, gpd.GeoDataFrame] | None = None, backend: str | None = None,
          time_limit: float | None = None, elastic: bool | None = None) -> gpd.GeoDataFrame:
    """Solve a scenario on these plots. Returns the plots with the plan's columns (`action`:
    keep / farmland / forest, costs in 万元, `block_id`, `block_mu`, ... as in plan.csv);
    `attrs`: `status` (never "optimal" for a time-limited plan), `all_met`, `gap`, `summary`
    (summary.json as a dict)."""
    inst = _instance(plots, zones)
    plan = solve_plan(inst, scenario(scenario_), backend=backend, time_limit=time_limit,
                      elastic=elastic)
    out = _without_plan(plots)
    if plan.result is not None and not plan.result.has_solution:
        out["action"] = pd.NA
    else:
        table = plan_table(inst, plan).drop(columns=["plot_id", "district", "township"])
        out = out.assign(**{c: table[c].to_numpy() for c in table.columns})
    out.attrs.update(status=plan.status, all_met=plan.all_met,
                     gap=plan.gap,  # from the recomputed objective and the valid bound
                     summary=summary_dict(plan))
    return out


def check(plan: gpd.GeoDataFrame, scenario_: Scenario | dict | str | Path | None = None, *,
          zones: dict[str, gpd.GeoDataFrame] | None = None) -> pd.DataFrame:
    """Every target recomputed from `plan["action"]` and the geometry: one row per target and
    scope (`target`, `key`, `scope`, `unit`, `sense`, `required`, `achieved`, `slack`, `met`);
    `attrs["problems"]`: each violated target, broken rule and block-rule note, in words."""
    inst = _instance(plan, zones)
    result = check_actions(inst, scenario(scenario_), _codes(plan))
    rows = [{"target": c.label, "key": c.key, "scope": c.scope, "unit": c.unit,
             "sense": c.sense, "required": c.required, "achieved": c.achieved,
             "slack": c.slack, "met": bool(c.met)} for c in result.checks]
    out = pd.DataFrame(rows)
    out.attrs["problems"] = result.problems()
    return out


def compare(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame,
            scenario_: Scenario | dict | str | Path | None = None, *,
            zones: dict[str, gpd.GeoDataFrame] | None = None) -> gpd.GeoDataFrame:
    """The plots whose action differs between plans `a` and `b` of the same plots (matched by
    plot_id): `plot_id`, `from`, `to`, `change`, `area_mu`, `district`, `township`, geometry;
    `attrs["kpis"]`: every target and total in A and B and the delta B - A (list of dicts)."""
    inst = _instance(a, zones)
    order = pd.Index(b["plot_id"].astype(str)).get_indexer(inst.plots["plot_id"].astype(str))
    if (order < 0).any() or len(b) != len(a):
        raise ValueError("compare: plans a and b must hold the same plot_ids")
    codes_b = _codes(b)[order]
    result = compare_actions(inst, scenario(scenario_), _codes(a), codes_b)
    changed = result.codes > 0
    out = gpd.GeoDataFrame(result.changed.reset_index(drop=True),
                           geometry=inst.geometry.values[changed], crs=inst.geometry.crs)
    out.attrs["kpis"] = result.kpis.to_dict("records")
    return out


def _codes(plan: pd.DataFrame) -> np.ndarray:
    if "action" not in plan.columns:
        raise ValueError("the plan needs an 'action' column (keep / farmland / forest)")
    words = plan["action"].astype("string").str.strip().str.lower()
    bad = ~words.isin(ACTIONS).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"row {i + 1} (plot_id {plan['plot_id'].iloc[i]!r}), column 'action': "
                         f"{plan['action'].iloc[i]!r} is not one of {', '.join(ACTIONS)}")
    return pd.Categorical(words, categories=list(ACTIONS)).codes.astype(np.int8)


def _without_plan(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    drop = [c for c in PLAN_COLUMNS if c in frame.columns and c not in PLOT_COLUMNS
            and c != "area_mu"]
    return frame.drop(columns=drop).copy()


def _fingerprint(frame: gpd.GeoDataFrame, zones: dict[str, gpd.GeoDataFrame] | None) -> str:
    """sha256 of what the instance is built from: schema columns, geometry, zone source."""
    h = hashlib.sha256()
    cols = [c for c in PLOT_COLUMNS if c in frame.columns]
    h.update(pd.util.hash_pandas_object(pd.DataFrame(frame[cols]).astype(str),
                                        index=False).to_numpy().tobytes())
    for wkb in shapely.to_wkb(frame.geometry.to_numpy()):
        h.update(wkb)  # bytes per plot: hashing, not geometry work
    h.update(str(frame.attrs.get(SOURCE)).encode())
    for name, z in sorted((zones or {}).items()):
        h.update(name.encode() + b"".join(shapely.to_wkb(z.geometry.to_numpy())))
    return h.hexdigest()


def _remember(key: str, inst: Instance) -> None:
    _CACHE[key] = inst
    _CACHE.move_to_end(key)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)


def _source_layers(source: str | None) -> dict[str, pd.DataFrame]:
    """Zone layers, townships and meta of the file a frame was loaded from."""
    if source is None or not Path(source).exists():
        return {}
    path = Path(source)
    wanted = (*ZONE_LAYERS, TOWNSHIPS_LAYER, META_LAYER)
    if path.is_dir():
        files = {f.stem: f for f in path.iterdir() if f.suffix.lower() in (".shp", ".dbf")}
        return {n: pyogrio.read_dataframe(files[n]) for n in wanted if n in files}
    names = set(pyogrio.list_layers(path)[:, 0])
    return {n: pyogrio.read_dataframe(path, layer=n) for n in wanted if n in names}


def _instance(frame: gpd.GeoDataFrame, zones: dict[str, gpd.GeoDataFrame] | None) -> Instance:
    """The validated Instance of a frame of plots (cached by content)."""
    if not isinstance(frame, gpd.GeoDataFrame):
        raise TypeError("expected a GeoDataFrame of plots (see api.load)")
    key = _fingerprint(frame, zones)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    missing = [c for c in PLOT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"the plots lack column(s) {', '.join(missing)} (see README: the "
                         "instance format)")
    plots = gpd.GeoDataFrame(pd.DataFrame(frame[list(PLOT_COLUMNS)]).reset_index(drop=True),
                             geometry=frame.geometry.to_numpy(), crs=frame.crs)
    layers: dict[str, pd.DataFrame] = {PLOTS_LAYER: plots}
    layers.update(_source_layers(frame.attrs.get(SOURCE)))
    for name, z in (zones or {}).items():
        layers[name] = z.to_crs(plots.crs)
    geoms = plots.geometry.to_numpy()
    for name in ZONE_LAYERS:
        if name not in layers:
            mask = plots["land_use"].to_numpy() == name
            layers[name] = zone_frame(shapely.union_all(geoms[mask]) if mask.any()
                                       else shapely.Polygon(), name).to_crs(plots.crs)
    with tempfile.TemporaryDirectory(prefix="greenbelt-api-") as tmp:
        path = Path(tmp) / f"{Path(str(frame.attrs.get(SOURCE, 'plots'))).stem}.gpkg"
        inst = load_instance(write_layers(layers, path))
    _remember(key, inst)
    return inst
