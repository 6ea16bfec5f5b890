"""plan.gpkg for QGIS: the plan layer with the planner's own attributes, the zones, the townships
and the new farmland blocks as layers, each with a default style in the GeoPackage's
`layer_styles` table (the table QGIS reads and writes: opening a layer applies its style)."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from instances.instance import Instance
from instances.schema import M2_PER_MU, PLOT_COLUMNS, TOWNSHIPS_LAYER

DERIVED = ("area_mu", "collective")
DERIVED_PREFIXES = ("share_", "touches_")
ACTION_STYLE = {"keep": ("230,230,230,255", "保留 keep"),
                "farmland": ("242,183,1,255", "复垦为耕地 to farmland"),
                "forest": ("27,120,55,255", "造林 to forest")}
ZONE_COLOURS = {"green_belt_1": "43,140,190,255", "green_belt_2": "123,50,148,255",
                "green_wedges": "0,136,55,255", "central_city": "68,68,68,255",
                "plain_area": "150,150,150,255", "farmland": "240,200,80,255",
                "forest": "80,160,80,255", "water_source": "30,120,220,255",
                "river_channel": "0,90,200,255", "farmland_protection_space": "200,150,50,255"}


def own_attributes(inst: Instance, taken: set[str]) -> pd.DataFrame:
    """The instance's extra plot columns (the planner's own attributes), in file order."""
    keep = [c for c in inst.plots.columns
            if c not in PLOT_COLUMNS and c not in DERIVED and c not in taken
            and not str(c).startswith(DERIVED_PREFIXES)]
    return inst.plots[keep].reset_index(drop=True)


def _fill_symbol(name: str, fill: str, outline: str, width: float, style: str = "solid") -> str:
    props = {"color": fill, "outline_color": outline, "outline_width": f"{width}",
             "outline_width_unit": "MM", "style": style, "outline_style": "solid"}
    options = "".join(f'<Option type="QString" name="{k}" value="{v}"/>' for k, v in props.items())
    legacy = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in props.items())
    return (f'<symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" pass="0" locked="0">'
            f'<Option type="Map">{options}</Option>{legacy}</layer></symbol>')


def categorized_qml(field: str, categories: dict[str, tuple[str, str]],
                    outline_only: bool = False) -> str:
    """A QGIS style: one fill colour (or outline) per value of `field`."""
    cats, syms = [], []
    for k, (value, (colour, text)) in enumerate(categories.items()):
        cats.append(f'<category render="true" symbol="{k}" value={quoteattr(value)} '
                    f'label={quoteattr(text)}/>')
        syms.append(_fill_symbol(str(k), "0,0,0,0" if outline_only else colour,
                                 colour if outline_only else "255,255,255,120",
                                 0.6 if outline_only else 0.05,
                                 "no" if outline_only else "solid"))
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
            '<qgis version="3.28.0" styleCategories="Symbology">'
            f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(field)} symbollevels="0" '
            'enableorderby="0" forceraster="0">'
            f'<categories>{"".join(cats)}</categories><symbols>{"".join(syms)}</symbols>'
            '</renderer-v2></qgis>')


def single_qml(colour: str, width: float = 0.8) -> str:
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
            '<qgis version="3.28.0" styleCategories="Symbology">'
            '<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0">'
            f'<symbols>{_fill_symbol("0", "0,0,0,0", colour, width, "no")}</symbols>'
            '</renderer-v2></qgis>')


def _zones(inst: Instance) -> gpd.GeoDataFrame:
    names, geoms = [], []
    for name, frame in inst.zones.items():
        if name == TOWNSHIPS_LAYER or len(frame) == 0:
            continue
        geom = shapely.union_all(frame.geometry.to_numpy())
        if not geom.is_empty:
            names.append(name)
            geoms.append(geom)
    return gpd.GeoDataFrame({"zone": names, "area_mu": np.round(shapely.area(np.asarray(
        geoms, dtype=object)) / M2_PER_MU, 1) if geoms else []}, geometry=geoms,
        crs=inst.geometry.crs)


def _blocks(inst: Instance, table: pd.DataFrame) -> gpd.GeoDataFrame:
    ids = table["block_id"].to_numpy()
    new = ids >= 0
    frame = gpd.GeoDataFrame({"block_id": ids[new], "plots": 1,
                              "area_mu": table["area_mu"].to_numpy()[new],
                              "touches_existing_farmland":
                                  inst.plots["touches_farmland"].to_numpy(bool)[new]},
                             geometry=inst.geometry.values[new], crs=inst.geometry.crs)
    if not new.any():
        return frame
    return frame.dissolve("block_id", aggfunc={"plots": "sum", "area_mu": "sum",
                                               "touches_existing_farmland": "any"}).reset_index()


def write_plan_gpkg(inst: Instance, table: pd.DataFrame, path: Path) -> None:
    """Layers plan (+ the planner's attributes and land_use), zones, townships (if any) and
    blocks, with their styles, into the new GeoPackage `path`."""
    extra = own_attributes(inst, set(table.columns))
    plan = gpd.GeoDataFrame(pd.concat([table, inst.plots[["land_use"]].reset_index(drop=True),
                                       extra], axis=1),
                            geometry=inst.geometry.values, crs=inst.geometry.crs)
    layers: dict[str, tuple[gpd.GeoDataFrame, str]] = {
        "plan": (plan, categorized_qml("action", ACTION_STYLE))}
    zones = _zones(inst)
    if len(zones):
        layers["zones"] = (zones, categorized_qml(
            "zone", {z: (ZONE_COLOURS.get(z, "0,0,0,255"), z) for z in zones["zone"]},
            outline_only=True))
    towns = inst.zones.get(TOWNSHIPS_LAYER)
    if towns is not None and len(towns):
        layers["townships"] = (towns, single_qml("90,90,90,255", 0.4))
    layers["blocks"] = (_blocks(inst, table), single_qml("140,81,10,255"))
    for name, (frame, _) in layers.items():
        pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG",
                                promote_to_multi=name != "plan")
    geometry_column = {name: pyogrio.read_info(path, layer=name)["geometry_name"] or "geom"
                       for name in layers}
    styles = pd.DataFrame({
        "f_table_catalog": "", "f_table_schema": "", "f_table_name": list(layers),
        "f_geometry_column": [geometry_column[n] for n in layers],
        "styleName": list(layers), "styleQML": [qml for _, qml in layers.values()],
        "styleSLD": "", "useAsDefault": True, "description": "greenbelt default style",
        "owner": "", "ui": "", "update_time": pd.Timestamp.now(tz="UTC").isoformat()})
    pyogrio.write_dataframe(styles, path, layer="layer_styles", driver="GPKG")
