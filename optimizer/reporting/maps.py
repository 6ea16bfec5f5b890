"""Map pictures of plans: kept / to farmland / to forest, zones outlined, legend and scale."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import geopandas as gpd  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

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
    inst.geometry.plot(ax=ax, color=list(colours), linewidth=0)
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
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def draw_value_map(
    inst: Instance,
    values: np.ndarray,
    path: Path,
    title: str,
    label: str,
    flagged: np.ndarray | None = None,
    flagged_label: str = "",
    cmap: str = "viridis_r",
) -> None:
    """Plots coloured by a value (NaN: not coloured), a colour bar named `label`, and the
    `flagged` plots in red (e.g. selection frequency, replacement cost)."""
    lu = inst.plots["land_use"].to_numpy()
    colours = np.full(len(values), COLOURS["other"], dtype=object)
    colours[inst.plots["collective"].to_numpy(bool)] = COLOURS["candidate"]
    colours[lu == "farmland"] = COLOURS["existing_farmland"]
    colours[lu == "forest"] = COLOURS["existing_forest"]
    fig, ax = plt.subplots(figsize=(9, 9), dpi=110)
    inst.geometry.plot(ax=ax, color=list(colours), linewidth=0)
    shown = np.isfinite(values)
    if flagged is not None:
        shown &= ~flagged
    if shown.any():
        lo, hi = float(values[shown].min()), float(values[shown].max())
        norm = matplotlib.colors.Normalize(lo, hi if hi > lo else lo + 1.0)
        gpd.GeoSeries(inst.geometry.values[shown], crs=inst.geometry.crs).plot(
            ax=ax, color=plt.get_cmap(cmap)(norm(values[shown])), linewidth=0)
        bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                           shrink=0.5, pad=0.01)
        bar.set_label(label)
    handles = [Patch(color=COLOURS["candidate"], label="collective land, not coloured"),
               Patch(color=COLOURS["existing_farmland"], label="existing farmland"),
               Patch(color=COLOURS["existing_forest"], label="existing forest")]
    if flagged is not None and flagged.any():
        gpd.GeoSeries(inst.geometry.values[flagged], crs=inst.geometry.crs).plot(
            ax=ax, color="#d7191c", linewidth=0)
        handles.insert(0, Patch(color="#d7191c", label=f"{flagged_label} ({flagged.sum():,})"))
    handles += zone_outlines(ax, inst)
    finish_map(fig, ax, handles, title, path)
