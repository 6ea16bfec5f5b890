"""Map pictures of plans: kept / to farmland / to forest, zones outlined, legend (outside the map),
scale bar, north arrow, township names; Chinese text in a CJK font shipped by a Python package
(mplfonts' Noto Sans CJK SC), so no system font is needed."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import geopandas as gpd  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shapely  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

from instances.instance import Instance  # noqa: E402

COLOURS = {"other": "#e6e6e6", "candidate": "#bdbdbd", "farmland": "#f2b701",
           "forest": "#1b7837", "existing_farmland": "#fbe9a6", "existing_forest": "#c7e9c0"}
ZONE_STYLES = {"green_belt_1": ("#2b8cbe", "-"), "green_belt_2": ("#7b3294", "-"),
               "green_wedges": ("#008837", "--"), "central_city": ("#444444", ":")}


CJK_FONT_FILE = "NotoSansCJKsc-Regular.otf"  # in the mplfonts package (SIL Open Font License)
LABELS = {  # legend words: English, Chinese
    "farmland": ("to farmland", "复垦为耕地"), "forest": ("to forest", "造林"),
    "plots": ("plots", "块"), "candidate": ("collective land, kept", "集体建设用地（保留）"),
    "existing_farmland": ("existing farmland", "现状耕地"),
    "existing_forest": ("existing forest", "现状林地"), "other": ("other land", "其他用地"),
    "block": ("new farmland block", "新增耕地连片"), "green_belt_1": ("green belt 1", "一道绿隔"),
    "green_belt_2": ("green belt 2", "二道绿隔"), "green_wedges": ("green wedges", "楔形绿廊"),
    "central_city": ("central city", "中心城区"), "north": ("N", "北"),
}


def label(key: str, lang: str = "en") -> str:
    en, zh = LABELS[key]
    return en if lang == "en" else zh if lang == "zh" else f"{zh} {en}"


def cjk_font_path() -> Path | None:
    """The packaged CJK font file (found without importing mplfonts), or None."""
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "fonts" / CJK_FONT_FILE
    return path if path.exists() else None


@cache
def cjk_font() -> str | None:
    """Register the packaged CJK font with matplotlib; its family name, or None if the package
    is not installed (Chinese text then falls back to the default font)."""
    path = cjk_font_path()
    if path is None:
        return None
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def font_rc() -> dict[str, object]:
    """rc settings that draw Latin and Chinese text (use with plt.rc_context)."""
    name = cjk_font()
    return {"font.family": "sans-serif",
            "font.sans-serif": [*([name] if name else []), "DejaVu Sans"],
            "axes.unicode_minus": False}


def _north_arrow(ax: plt.Axes, lang: str) -> None:
    """Grid north (EPSG:4548 is within 1 degree of true north in Beijing), beside the map."""
    ax.annotate(label("north", lang if lang != "both" else "en"), xy=(1.04, 0.16),
                xytext=(1.04, 0.04), xycoords="axes fraction", ha="center", va="center",
                fontsize=10, annotation_clip=False,
                arrowprops={"facecolor": "black", "width": 4, "headwidth": 10})


def _township_names(ax: plt.Axes, inst: Instance, max_names: int = 60) -> None:
    """Each township's name at the area-weighted centre of its plots (if few enough)."""
    towns = inst.plots["township"].astype(str)
    if towns.nunique() > max_names:
        return
    pts = inst.geometry.representative_point()
    w = inst.plots["area_mu"].to_numpy(float)
    frame = pd.DataFrame({"t": towns.to_numpy(), "w": w, "x": pts.x.to_numpy() * w,
                          "y": pts.y.to_numpy() * w}).groupby("t").sum()
    for name, row in frame.iterrows():
        if row["w"] > 0:
            ax.text(row["x"] / row["w"], row["y"] / row["w"], str(name), fontsize=7,
                    ha="center", va="center", color="#333333", alpha=0.85)


def _scale_bar(ax: plt.Axes) -> None:
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    span = (x1 - x0) / 5
    km = max(1, int(round(span / 1000 / 5.0)) * 5) if span > 5000 else max(1, round(span / 1000))
    length = km * 1000
    bx, by = x0 + 0.05 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    ax.plot([bx, bx + length], [by, by], color="black", lw=3)
    ax.text(bx + length / 2, by + 0.015 * (y1 - y0), f"{km} km", ha="center", fontsize=8)


def plan_colours(inst: Instance, actions: np.ndarray) -> np.ndarray:
    """Each plot's fill: to farmland / to forest, else existing farmland / forest, collective
    land kept, other land (the map and report.html draw the same colours)."""
    lu = inst.plots["land_use"].to_numpy()
    colours = np.full(len(actions), COLOURS["other"], dtype=object)
    colours[inst.plots["collective"].to_numpy(bool)] = COLOURS["candidate"]
    colours[lu == "farmland"] = COLOURS["existing_farmland"]
    colours[lu == "forest"] = COLOURS["existing_forest"]
    colours[actions == 1] = COLOURS["farmland"]
    colours[actions == 2] = COLOURS["forest"]
    return colours


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
    lang: str = "en",
    township_names: bool = True,
) -> None:
    with plt.rc_context(font_rc()):
        _draw_plan_map(inst, plan, path, title, actions, lang, township_names)


def _draw_plan_map(inst: Instance, plan, path: Path, title: str | None,
                   actions: np.ndarray | None, lang: str, township_names: bool) -> None:
    act = plan.actions if actions is None else actions
    colours = plan_colours(inst, act)
    fig, ax = plt.subplots(figsize=(9, 9), dpi=110)
    fill_plots(ax, inst.geometry.values, colours)
    n = label("plots", lang)
    handles = [
        Patch(color=COLOURS["farmland"], label=f"{label('farmland', lang)} ({(act == 1).sum():,}"
                                               f" {n})"),
        Patch(color=COLOURS["forest"], label=f"{label('forest', lang)} ({(act == 2).sum():,} "
                                             f"{n})"),
        *(Patch(color=COLOURS[k], label=label(k, lang))
          for k in ("candidate", "existing_farmland", "existing_forest", "other")),
    ]
    handles += zone_outlines(ax, inst, lang)
    blocks = getattr(plan, "blocks", None)
    if actions is None and blocks is not None and (blocks >= 0).any():
        new = blocks >= 0
        outline = gpd.GeoDataFrame({"block": blocks[new]}, geometry=inst.geometry.values[new],
                                   crs=inst.geometry.crs).dissolve("block").boundary
        outline.plot(ax=ax, color="#8c510a", linewidth=0.6)
        handles.append(Line2D([], [], color="#8c510a", label=f"{label('block', lang)} "
                              f"({len(outline)})"))
    if township_names:
        _township_names(ax, inst)
    finish_map(fig, ax, handles, title or f"{inst.name}: {getattr(plan, 'status', '')}", path,
               lang)


def zone_outlines(ax: plt.Axes, inst: Instance, lang: str = "en") -> list[Line2D]:
    """Outline the planning zones; return their legend entries."""
    handles = []
    for name, (colour, style) in ZONE_STYLES.items():
        zone = inst.zones.get(name)
        if zone is not None and len(zone) and not zone.geometry.is_empty.all():
            zone.boundary.plot(ax=ax, color=colour, linewidth=1.2, linestyle=style)
            handles.append(Line2D([], [], color=colour, linestyle=style,
                                  label=label(name, lang)))
    return handles


def finish_map(fig: plt.Figure, ax: plt.Axes, handles: list, title: str, path: Path,
               lang: str = "en") -> None:
    """Scale bar, north arrow, legend outside the map (it never hides a plot) and title; save
    as PNG and close."""
    ax.set_axis_off()
    ax.set_aspect("equal")
    _scale_bar(ax)
    _north_arrow(ax, lang)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False, borderaxespad=0.0)
    # "$" would start matplotlib mathtext (an instance named "a$b$.gpkg" breaks the title)
    ax.set_title(title.replace("$", r"\$"), fontsize=10)
    fig.savefig(path, format="png", bbox_inches="tight", pad_inches=0.15)
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
