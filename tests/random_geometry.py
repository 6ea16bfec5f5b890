"""Random tiny instances built geometry first: plot polygons (a jittered grid or Voronoi cells)
and zone polygons that straddle plots, written to a GeoPackage and read back by the loader, so
adjacency, areas, zone shares and "touches" are derived from the geometry exactly as for a
planner's file (and the CLI can be driven on the same file).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import Polygon, box

from instances.generator import write_layers
from instances.instance import Instance
from instances.loader import load_instance
from instances.schema import CRS_EPSG, PLOTS_LAYER, ZONE_LAYERS

CRS = f"EPSG:{CRS_EPSG}"


def jittered_grid(rng: np.random.Generator, rows: int, cols: int) -> list[Polygon]:
    """Quadrilaterals on a lattice whose inner vertices are moved at random (shared edges stay
    shared, so the cells tile the rectangle)."""
    xs = np.concatenate([[0.0], np.cumsum(rng.integers(70, 140, cols))]).astype(float)
    ys = np.concatenate([[0.0], np.cumsum(rng.integers(70, 140, rows))]).astype(float)
    X, Y = np.meshgrid(xs, ys)  # (rows+1, cols+1)
    inner = (slice(1, -1), slice(1, -1))
    X[inner] += rng.uniform(-22, 22, X[inner].shape)
    Y[inner] += rng.uniform(-22, 22, Y[inner].shape)
    X[1:-1, 0] = 0.0  # outer edges straight (a rectangle's sides)
    Y[0, 1:-1], Y[-1, 1:-1] = 0.0, ys[-1]
    X[1:-1, -1] = xs[-1]
    Y[1:-1, 0] += rng.uniform(-22, 22, rows - 1)
    Y[1:-1, -1] += rng.uniform(-22, 22, rows - 1)
    X[0, 1:-1] += rng.uniform(-22, 22, cols - 1)
    X[-1, 1:-1] += rng.uniform(-22, 22, cols - 1)
    return [Polygon([(X[r, c], Y[r, c]), (X[r, c + 1], Y[r, c + 1]),
                     (X[r + 1, c + 1], Y[r + 1, c + 1]), (X[r + 1, c], Y[r + 1, c])])
            for r in range(rows) for c in range(cols)]


def voronoi_cells(rng: np.random.Generator, n: int) -> list[Polygon]:
    """Voronoi cells of n random points, clipped to their rectangle (irregular neighbours,
    some meeting only at a corner)."""
    w, h = float(rng.uniform(200, 400)), float(rng.uniform(200, 400))
    frame = box(0, 0, w, h)
    pts = shapely.MultiPoint(rng.uniform([0, 0], [w, h], (n, 2)))
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame))
    return [shapely.intersection(c, frame) for c in cells]


def geometric_instance(rng: np.random.Generator, path: Path, n_rows: int, n_cols: int,
                       layout: str, candidate_share: float) -> Instance:
    """Write a random instance (layout "jitter" or "voronoi") to `path` and load it."""
    geoms = (jittered_grid(rng, n_rows, n_cols) if layout == "jitter"
             else voronoi_cells(rng, n_rows * n_cols))
    n = len(geoms)
    xmin, ymin, xmax, ymax = shapely.total_bounds(np.array(geoms, dtype=object))
    w, h = xmax - xmin, ymax - ymin
    collective = rng.random(n) < candidate_share
    other = rng.choice(["farmland", "forest", "urban"], n, p=[0.6, 0.2, 0.2])
    area = shapely.area(np.array(geoms, dtype=object)) / (2000.0 / 3.0)
    efficiency = rng.uniform(1, 15, n)
    illegal = collective & (rng.random(n) < (0.15 if rng.random() < 0.3 else 0.0))
    plots = gpd.GeoDataFrame({
        "plot_id": [f"Q{k:03d}" for k in range(n)],
        "district": "testdistrict",
        "township": [f"T{int(k)}" for k in np.minimum(
            (np.array([g.centroid.x for g in geoms]) - xmin) / w * 3, 2)],
        "land_use": np.where(collective, rng.choice(["collective_industrial", "rural_settlement"],
                                                    n), other),
        "output_wan": np.round(efficiency * area, 2),
        "demolition_wan_per_mu": np.round(rng.uniform(30, 120, n), 0),
        "reclaim_wan_per_mu": np.round(rng.uniform(2, 8, n), 0),
        "afforest_wan_per_mu": np.round(rng.uniform(1, 5, n), 0),
        "soil_suitable": rng.random(n) > 0.15,
        "polluted": rng.random(n) < 0.1,
        "illegal": illegal,
        "protected": collective & (rng.random(n) < 0.05),
    }, geometry=geoms, crs=CRS)

    def some_box(lo: float, hi: float) -> Polygon:
        bw, bh = w * rng.uniform(lo, hi), h * rng.uniform(lo, hi)
        x0, y0 = xmin + rng.uniform(-0.2, 1.0) * (w - bw), ymin + rng.uniform(-0.2, 1.0) * (h - bh)
        return box(x0, y0, x0 + bw, y0 + bh)

    cut = rng.choice([-1.0, 1.5, *rng.uniform(0.2, 0.9, 3)])  # none, all, or straddled
    zones: dict[str, list[Polygon]] = {z: [] for z in ZONE_LAYERS}
    if cut > 0:
        zones["central_city"] = [box(xmin - 10, ymin - 10, xmin + cut * w, ymax + 10)]
    zones["plain_area"] = [box(xmin - 10, ymin - 10, xmax + 10,
                               ymin + rng.choice([1.5, rng.uniform(0.3, 0.9)]) * h)]
    zones["green_wedges"] = [some_box(0.3, 0.7) for _ in range(int(rng.integers(1, 3)))]
    if rng.random() < 0.5:
        zones["green_belt_1"] = [some_box(0.2, 0.5)]
    if rng.random() < 0.5:
        zones["farmland_protection_space"] = [some_box(0.15, 0.4)]
    if rng.random() < 0.4:
        zones["water_source"] = [some_box(0.15, 0.4)]
    # existing farmland: the farmland plots, and a field beside the left edge
    zones["farmland"] = [g for g, use in zip(geoms, plots["land_use"], strict=True)
                         if use == "farmland"]
    zones["farmland"].append(box(xmin - 60, ymin, xmin, ymin + rng.uniform(0.2, 0.8) * h))
    if rng.random() < 0.6:
        zones["forest"] = [box(xmin, ymin - 60, xmin + rng.uniform(0.2, 0.8) * w, ymin)]
    layers: dict[str, pd.DataFrame] = {PLOTS_LAYER: plots}
    for z, polys in zones.items():  # every zone layer must exist; some are empty
        layers[z] = gpd.GeoDataFrame({"name": [z] * len(polys)},
                                     geometry=gpd.GeoSeries(polys, crs=CRS), crs=CRS)
    # tiny files: skip SQLite's fsyncs (4x faster on a busy disk); restored afterwards
    fast = {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_JOURNAL": "MEMORY"}
    pyogrio.set_gdal_config_options(fast)
    try:
        write_layers(layers, path)
    finally:
        pyogrio.set_gdal_config_options(dict.fromkeys(fast))
    return load_instance(path)
