"""Map pictures of plans: kept / to farmland / to forest, zones outlined, legend and scale."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import geopandas as gpd  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

from instances.instance import Instance  # noqa: E402

COLOURS = {"other": "#e6e6e6", "candidate": "#bdbdbd", "farmland": "#f2b701",
           "forest": "#1b7837", "existing_farmland": "#fbe9a6", "existing_forest": "#c7e9c0"}
ZONE_STYLES = {"green_belt_1": ("#2b8cbe", "-"), "green_belt_2": ("#7b3294", "-"),
               "green_wedges": ("#008837", "--"), "central_city": ("#444444", ":")}


def _scale_bar(ax: plt.Axes) -> None:
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    span = (x1 - x0) / 5
    km = max(1, int(round(span / 1000 / 5.0)) * 5) if span > 5000 else max(1, round(span / 1000))
    length = km * 1000
    bx, by = x0 + 0.05 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    ax.plot([bx, bx + length], [by, by], color="black", lw=3)
    ax.text(bx + length / 2, by + 0.015 * (y1 - y0), f"{km} km", ha="center", fontsize=8)


def fill_plots(ax: plt.Axes, polygons: np.ndarray, colours: np.ndarray) -> None:
    """Fill each polygon with its colour, as one compound path per colour (vectorised: one patch
    object per plot, as geopandas draws, takes seconds at 50k plots). Exteriors are oriented
    counter-clockwise and holes clockwise, so matplotlib's nonzero fill leaves holes open."""
    polygons = np.asarray(polygons, dtype=object)
    colours = np.asarray(colours, dtype=object)
    paths: list[MplPath] = []
    faces: list[str] = []
    for colour in np.unique(colours.astype(str)):
        geoms = shapely.orient_polygons(polygons[colours == colour], exterior_cw=False)
        rings = shapely.get_rings(shapely.get_parts(geoms))
        rings = rings[~shapely.is_empty(rings)]
        if not len(rings):
            continue
        xy, ring_of = shapely.get_coordinates(rings, return_index=True)
        codes = np.full(len(xy), MplPath.LINETO, dtype=np.uint8)
        first = np.r_[0, np.flatnonzero(np.diff(ring_of)) + 1]
        codes[first] = MplPath.MOVETO
        codes[np.r_[first[1:] - 1, len(xy) - 1]] = MplPath.CLOSEPOLY
        paths.append(MplPath(xy, codes))
        faces.append(colour)
    # autolim=False: matplotlib's limit update walks every segment (seconds at 50k plots)
    ax.add_collection(PathCollection(paths, facecolors=faces, edgecolors="none", linewidths=0),
                      autolim=False)
    x0, y0, x1, y1 = shapely.total_bounds(polygons)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def draw_plan_map(
    inst: Instance,
    plan,  # optimizer.plan.solve.Plan (not imported: the map is also drawn for comparisons)
    path: Path,
    title: str | None = None,
    actions: np.ndarray | None = None,
) -> None:
    act = plan.actions if actions is None else actions
    lu = inst.plots["land_use"].to_numpy()
    colours = np.full(len(act), COLOURS["other"], dtype=object)
    colours[inst.plots["collective"].to_numpy(bool)] = COLOURS["candidate"]
    colours[lu == "farmland"] = COLOURS["existing_farmland"]
    colours[lu == "forest"] = COLOURS["existing_forest"]
    colours[act == 1] = COLOURS["farmland"]
    colours[act == 2] = COLOURS["forest"]
    fig, ax = plt.subplots(figsize=(9, 9), dpi=110)
    fill_plots(ax, inst.geometry.values, colours)
    handles = [
        Patch(color=COLOURS["farmland"], label=f"to farmland ({(act == 1).sum():,} plots)"),
        Patch(color=COLOURS["forest"], label=f"to forest ({(act == 2).sum():,} plots)"),
        Patch(color=COLOURS["candidate"], label="collective land, kept"),
        Patch(color=COLOURS["existing_farmland"], label="existing farmland"),
        Patch(color=COLOURS["existing_forest"], label="existing forest"),
        Patch(color=COLOURS["other"], label="other land"),
    ]
    handles += zone_outlines(ax, inst)
    blocks = getattr(plan, "blocks", None)
    if actions is None and blocks is not None and (blocks >= 0).any():
        new = blocks >= 0
        outline = gpd.GeoDataFrame({"block": blocks[new]}, geometry=inst.geometry.values[new],
                                   crs=inst.geometry.crs).dissolve("block").boundary
        outline.plot(ax=ax, color="#8c510a", linewidth=0.6)
        handles.append(Line2D([], [], color="#8c510a", label=f"new farmland block "
                              f"({len(outline)})"))
    finish_map(fig, ax, handles, title or f"{inst.name}: {getattr(plan, 'status', '')}", path)


def zone_outlines(ax: plt.Axes, inst: Instance) -> list[Line2D]:
    """Outline the planning zones; return their legend entries."""
    handles = []
    for name, (colour, style) in ZONE_STYLES.items():
        zone = inst.zones.get(name)
        if zone is not None and len(zone) and not zone.geometry.is_empty.all():
            zone.boundary.plot(ax=ax, color=colour, linewidth=1.2, linestyle=style)
            handles.append(Line2D([], [], color=colour, linestyle=style,
                                  label=name.replace("_", " ")))
    return handles


def finish_map(fig: plt.Figure, ax: plt.Axes, handles: list, title: str, path: Path) -> None:
    """Scale bar, legend and title; save as PNG and close."""
    ax.set_axis_off()
    ax.set_aspect("equal")
    _scale_bar(ax)
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)
    # "$" would start matplotlib mathtext (an instance named "a$b$.gpkg" breaks the title)
    ax.set_title(title.replace("$", r"\$"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
