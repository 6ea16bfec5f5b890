"""The README pictures: citywide zone overview and a map of one generated instance.

python -m instances.figures --instance /tmp/chaoyang_20000.gpkg --outdir instances
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from instances import zones as zm  # noqa: E402
from instances.geography import districts, tiananmen_xy  # noqa: E402
from instances.schema import CRS_EPSG, PLOTS_LAYER  # noqa: E402

LAND_USE_COLOURS = {
    "collective_industrial": "#d7301f", "rural_settlement": "#fc8d59", "urban": "#9e9e9e",
    "farmland": "#f2d872", "forest": "#4daf4a", "water": "#4a90d9", "other": "#e8e4dc",
}
ZONE_STYLE = {  # layer -> (face colour or None, edge colour, line width, label)
    "plain_area": ("#f6f1df", "none", 0.0, "plain area"),
    "farmland_protection_space": ("#ecd36b", "none", 0.0, "farmland protection space"),
    "green_belt_1": ("#1b7837", "none", 0.0, "first green belt"),
    "green_belt_2": ("#7fbf7b", "none", 0.0, "second green belt"),
    "water_source": ("#6fa8dc", "none", 0.0, "water-source protection"),
    "river_channel": ("#1f5fa0", "none", 0.0, "river channel"),
}


def _scale_bar(ax: Axes, km: float) -> None:
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    x, y = x0 + 0.05 * (x1 - x0), y0 + 0.04 * (y1 - y0)
    ax.plot([x, x + km * 1000], [y, y], color="black", lw=3, solid_capstyle="butt")
    ax.text(x + km * 500, y + 0.012 * (y1 - y0), f"{km:g} km", ha="center", va="bottom")


def _frame(ax: Axes, title: str) -> None:
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")


def zones_overview(path: Path) -> Path:
    z = zm.city_zones()
    fig, ax = plt.subplots(figsize=(8.5, 8.5))
    handles = []
    for layer, (face, edge, lw, label) in ZONE_STYLE.items():
        gpd.GeoSeries([z[layer]], crs=CRS_EPSG).plot(ax=ax, color=face, edgecolor=edge, lw=lw)
        handles.append(Patch(facecolor=face, label=label))
    zm.wedges().boundary.plot(ax=ax, color="#00441b", lw=0.6)
    handles.append(Patch(facecolor="none", edgecolor="#00441b", label="nine green wedges"))
    gpd.GeoSeries([z["central_built_up"]]).boundary.plot(ax=ax, color="#b2182b", lw=1.0)
    handles.append(Patch(facecolor="none", edgecolor="#b2182b", label="central built-up area"))
    zm.townships("beijing").boundary.plot(ax=ax, color="#bbbbbb", lw=0.2)
    d = districts()
    d.boundary.plot(ax=ax, color="black", lw=0.7)
    for name, geom in zip(d["name"], d.geometry, strict=True):
        p = geom.representative_point()
        ax.annotate(name, (p.x, p.y), ha="center", fontsize=7, color="#333333")
    ax.plot(*tiananmen_xy(), marker="*", color="#b2182b", ms=8)
    _frame(ax, "Beijing: derived planning zones (EPSG:4548)")
    _scale_bar(ax, 20)
    ax.legend(handles=handles, loc="upper left", fontsize=7, frameon=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def instance_map(gpkg: Path, path: Path) -> Path:
    plots = gpd.read_file(gpkg, layer=PLOTS_LAYER)
    fig, ax = plt.subplots(figsize=(10.5, 8.5))
    for use, colour in LAND_USE_COLOURS.items():
        sel = plots[plots["land_use"] == use]
        if len(sel):
            sel.plot(ax=ax, color=colour, lw=0)
    plots.boundary.plot(ax=ax, color="white", lw=0.08)
    outlines = {"green_belt_1": ("#00441b", "first green belt"),
                "green_belt_2": ("#41ab5d", "second green belt"),
                "green_wedges": ("#00441b", "green wedges"),
                "river_channel": ("#08519c", "river channel"),
                "farmland_protection_space": ("#b8860b", "farmland protection space")}
    handles = [Patch(facecolor=c, label=u.replace("_", " ")) for u, c in LAND_USE_COLOURS.items()]
    for layer, (colour, label) in outlines.items():
        g = gpd.read_file(gpkg, layer=layer)
        if len(g):
            style = "--" if layer == "green_wedges" else "-"
            g.boundary.plot(ax=ax, color=colour, lw=1.0, linestyle=style)
            handles.append(Patch(facecolor="none", edgecolor=colour, label=label))
    meta = dict(gpd.read_file(gpkg, layer="meta")[["key", "value"]].values)
    _frame(ax, f"{meta['district']}: {len(plots):,} synthetic plots (seed {meta['seed']})")
    _scale_bar(ax, 5)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Draw the instances/README.md pictures")
    parser.add_argument("--instance", type=Path, help="generated GeoPackage to map")
    parser.add_argument("--outdir", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    zones_overview(args.outdir / "zones_overview.png")
    if args.instance:
        instance_map(args.instance, args.outdir / f"{args.instance.stem}.png")


if __name__ == "__main__":
    main()
