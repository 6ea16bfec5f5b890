"""Citywide planning zones of Beijing, derived deterministically from documented parameters.

The real zone maps are not public as data, so each layer is a documented geometric construction on
the real district boundaries, sized to the figure of the seed plans it imitates (README table):

- central_city: union of the six central districts (real boundaries).
- central_built_up: disc of CORE_RADIUS_M around Tiananmen (about the 4th ring; internal stratum).
- plain_area: city ∩ the region south-east of the mountain foot line PLAIN_OUTLINE_LONLAT.
- green_belt_1: annulus from CORE_RADIUS_M outward, ∩ plain; outer radius tuned to 310 km2.
- green_wedges: nine sectors (WEDGE_BEARINGS_DEG, ±WEDGE_HALF_WIDTH_DEG) from CORE_RADIUS_M to
  WEDGE_OUTER_M (beyond the 6th ring), ∩ plain.
- green_belt_2: (wedges ∪ a ring along the 6th ring road) ∩ plain, minus belt 1's outer disc; the
  ring width is tuned so the belt has 910 km2.
- water_source: reservoir ellipses and wellfield discs (WATER_SOURCES_LONLAT) ∩ city.
- river_channel: buffered river polylines (RIVERS_LONLAT) ∩ city.
- farmland_protection_space: Voronoi cells (~600 m) of the plain outside the central built-up area,
  water sources and river channels, chosen by a smooth fixed-seed score favouring the outer plain,
  until 1.85 million mu.
- townships: per district, a Lloyd-relaxed Voronoi tessellation into implementation units.
"""

from __future__ import annotations

from functools import cache

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.optimize import brentq
from shapely.geometry.base import BaseGeometry

from instances.geography import (
    CENTRAL_DISTRICTS,
    CITY,
    DISTRICTS,
    MU_PER_KM2,
    check_district,
    city_geometry,
    district_geometry,
    districts,
    lonlat_to_xy,
    tiananmen_xy,
)
from instances.schema import CRS_EPSG

CORE_RADIUS_M = 10_000.0  # central built-up area: between the 4th (~9 km) and 5th (~14 km) ring
BELT1_TARGET_KM2 = 310.0  # seed 004: first green belt policy area about 310 km2
BELT2_TARGET_KM2 = 910.0  # seed 004: second green belt about 910 km2
FPS_TARGET_MU = 1_850_000.0  # seed 000: farmland protection space 1.85 million mu
RING6_RADIUS_M = 28_000.0  # 6th ring road, equal-area radius (encloses ~2,270 km2 -> 27-30 km)
WEDGE_OUTER_M = 32_000.0  # wedges reach beyond the 6th ring
WEDGE_HALF_WIDTH_DEG = 6.0
# Bearings (degrees clockwise from north) of the nine wedges, named after the green spaces
# they imitate.
WEDGE_BEARINGS_DEG: dict[str, float] = {
    "north_olympic_xiaotangshan": 5.0,
    "northeast_wenyu_river": 40.0,
    "east_dingfuzhuang_songzhuang": 75.0,
    "eastsoutheast_shibalidian_taihu": 112.0,
    "southeast_yizhuang_nanhaizi": 148.0,
    "south_nanyuan_daxing": 183.0,
    "southwest_fengtai_yongding": 220.0,
    "west_shijingshan_mentougou": 262.0,
    "northwest_shangzhuang_changping": 318.0,
}
# Mountain foot line, south-west to north-east (lon, lat). The plain lies south-east of it; the
# polygon closes well outside the city so that the city boundary cuts it. Yanqing basin is
# counted as mountain, as in the usual 6,338 km2 plain figure.
PLAIN_OUTLINE_LONLAT: tuple[tuple[float, float], ...] = (
    (115.60, 39.30),
    (115.76, 39.48),  # Fangshan, south-west border
    (115.80, 39.58),  # Zhangfang (Juma river exit)
    (115.89, 39.66),
    (115.95, 39.71),  # Zhoukoudian
    (116.03, 39.78),
    (116.08, 39.87),
    (116.10, 39.94),  # Yongding river exit, Sanjiadian
    (116.17, 39.96),  # Badachu
    (116.20, 40.00),  # Xiangshan
    (116.15, 40.05),  # Wenquan
    (116.10, 40.12),  # Yangfang
    (116.13, 40.21),  # Nankou
    (116.22, 40.23),  # Ming Tombs
    (116.35, 40.23),
    (116.45, 40.27),  # Xingshou
    (116.55, 40.31),
    (116.65, 40.37),  # Huairou
    (116.80, 40.40),
    (116.92, 40.40),  # Miyun
    (117.00, 40.33),
    (117.05, 40.25),
    (117.18, 40.21),  # Pinggu basin, northern hills
    (117.22, 40.12),  # eastern hills
    (117.24, 40.03),
    (117.70, 39.90),
    (117.70, 39.30),
)
# name -> (lon, lat, semi-axis x km, semi-axis y km): reservoirs and illustrative wellfields.
WATER_SOURCES_LONLAT: dict[str, tuple[float, float, float, float]] = {
    "miyun_reservoir": (116.98, 40.52, 12.0, 9.0),
    "huairou_reservoir": (116.61, 40.32, 3.0, 3.0),
    "guanting_reservoir": (115.80, 40.40, 6.0, 4.0),
    "wellfield_changping_shunyi": (116.50, 40.15, 3.0, 3.0),
    "wellfield_huairou": (116.70, 40.26, 3.0, 3.0),
    "wellfield_pinggu": (117.06, 40.10, 3.0, 3.0),
    "wellfield_fangshan": (115.80, 39.60, 2.5, 2.5),
    "wellfield_daxing": (116.35, 39.60, 2.5, 2.5),
}
# name -> (channel width m, polyline lon/lat).
RIVERS_LONLAT: dict[str, tuple[float, tuple[tuple[float, float], ...]]] = {
    "yongding": (400.0, ((116.09, 39.96), (116.21, 39.85), (116.25, 39.75), (116.30, 39.62),
                         (116.42, 39.50), (116.50, 39.43))),
    "chaobai": (300.0, ((116.84, 40.42), (116.82, 40.37), (116.75, 40.25), (116.70, 40.13),
                        (116.72, 40.02), (116.80, 39.92), (116.88, 39.80), (116.93, 39.70))),
    "wenyu_north_canal": (200.0, ((116.30, 40.13), (116.40, 40.10), (116.47, 40.06),
                                  (116.55, 40.00), (116.65, 39.93), (116.70, 39.88),
                                  (116.78, 39.78), (116.85, 39.70))),
    "liangshui": (100.0, ((116.20, 39.86), (116.30, 39.83), (116.40, 39.81), (116.50, 39.80),
                          (116.60, 39.80), (116.70, 39.78))),
    "tonghui": (100.0, ((116.44, 39.90), (116.55, 39.90), (116.65, 39.90))),
}
FPS_CELL_M = 600.0
ZONES_SEED = 20250101


def smooth_field(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, length_m: float,
                 n_waves: int = 64) -> np.ndarray:
    """A smooth, roughly standard-normal random field (random Fourier features, Gaussian
    covariance with correlation length `length_m`) evaluated at points, relative to Tiananmen."""
    x0, y0 = tiananmen_xy()
    k = rng.normal(0.0, 1.0 / length_m, size=(n_waves, 2))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n_waves)
    arg = np.outer(np.asarray(x) - x0, k[:, 0]) + np.outer(np.asarray(y) - y0, k[:, 1]) + phase
    return np.sqrt(2.0 / n_waves) * np.cos(arg).sum(axis=1)


def _disc(radius: float, centre: tuple[float, float] | None = None) -> BaseGeometry:
    cx, cy = centre or tiananmen_xy()
    return shapely.Point(cx, cy).buffer(radius, quad_segs=64)


def _annulus(r_in: float, r_out: float) -> BaseGeometry:
    return _disc(r_out).difference(_disc(r_in)) if r_in > 0 else _disc(r_out)


def _sector(bearing_deg: float, half_width_deg: float, r_in: float, r_out: float) -> BaseGeometry:
    cx, cy = tiananmen_xy()
    t = np.radians(np.linspace(bearing_deg - half_width_deg, bearing_deg + half_width_deg, 25))
    outer = np.column_stack([cx + r_out * np.sin(t), cy + r_out * np.cos(t)])
    inner = np.column_stack([cx + r_in * np.sin(t[::-1]), cy + r_in * np.cos(t[::-1])])
    return shapely.Polygon(np.vstack([outer, inner]))


def _lonlat_coords(points: tuple[tuple[float, float], ...]) -> np.ndarray:
    lon, lat = np.array(points).T
    return np.column_stack(lonlat_to_xy(lon, lat))


@cache
def _plain() -> BaseGeometry:
    return shapely.Polygon(_lonlat_coords(PLAIN_OUTLINE_LONLAT)).intersection(city_geometry())


def _water_source() -> BaseGeometry:
    parts = []
    for lon, lat, ax, ay in WATER_SOURCES_LONLAT.values():
        cx, cy = (float(v) for v in lonlat_to_xy(lon, lat))
        circle = shapely.Point(0, 0).buffer(1.0, quad_segs=32)
        parts.append(shapely.affinity.translate(
            shapely.affinity.scale(circle, ax * 1000, ay * 1000, origin=(0, 0)), cx, cy))
    return shapely.union_all(parts).intersection(city_geometry())


def _river_channel() -> BaseGeometry:
    lines = [shapely.LineString(_lonlat_coords(pts)).buffer(width / 2, cap_style="flat")
             for width, pts in RIVERS_LONLAT.values()]
    return shapely.union_all(lines).intersection(city_geometry())


def wedges() -> gpd.GeoDataFrame:
    """The nine green wedges, one row each (column `wedge`), clipped to the plain."""
    plain = _plain()
    geoms = [_sector(b, WEDGE_HALF_WIDTH_DEG, CORE_RADIUS_M, WEDGE_OUTER_M).intersection(plain)
             for b in WEDGE_BEARINGS_DEG.values()]
    return gpd.GeoDataFrame({"wedge": list(WEDGE_BEARINGS_DEG)}, geometry=geoms, crs=CRS_EPSG)


def _farmland_protection_space(eligible: BaseGeometry, target_m2: float) -> BaseGeometry:
    """Jittered-grid Voronoi cells of `eligible`, best score first until `target_m2`."""
    rng = np.random.default_rng(ZONES_SEED)
    x0, y0, x1, y1 = shapely.bounds(eligible)
    gx, gy = np.meshgrid(np.arange(x0, x1, FPS_CELL_M), np.arange(y0, y1, FPS_CELL_M))
    px = gx.ravel() + rng.uniform(-0.35, 0.35, gx.size) * FPS_CELL_M
    py = gy.ravel() + rng.uniform(-0.35, 0.35, gy.size) * FPS_CELL_M
    shapely.prepare(eligible)
    near = shapely.intersects_xy(eligible.buffer(FPS_CELL_M), px, py)
    px, py = px[near], py[near]
    cells = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(np.column_stack([px, py])), extend_to=shapely.box(x0, y0, x1, y1),
        ordered=True))
    inside = shapely.contains_properly(eligible, cells)
    clipped = cells.copy()
    clipped[~inside] = shapely.intersection(cells[~inside], eligible)
    area = shapely.area(clipped)
    cx, cy = tiananmen_xy()
    dist = np.hypot(px - cx, py - cy)
    # Farmland lies in the outer plain: score rises with distance from the centre (saturating),
    # plus a smooth field (~4 km) for the block pattern of the "nine farmland blocks".
    score = smooth_field(rng, px, py, 4000.0) + 0.8 * np.clip((dist - CORE_RADIUS_M) / 15e3, 0, 1.5)
    order = np.argsort(-score, kind="stable")
    take = order[: int(np.searchsorted(np.cumsum(area[order]), target_m2)) + 1]
    return shapely.union_all(clipped[take][area[take] > 0])


def _tune(fn, target: float, lo: float, hi: float) -> float:
    return float(brentq(lambda v: fn(v) - target, lo, hi, xtol=1.0))


@cache
def _city_zones() -> dict[str, BaseGeometry]:
    city = city_geometry()
    plain = _plain()
    geoms = districts().geometry
    central_city = shapely.coverage_union_all(geoms.loc[list(CENTRAL_DISTRICTS)].values)
    core = _disc(CORE_RADIUS_M).intersection(city)
    shapely.prepare(plain)
    r1 = _tune(lambda r: _annulus(CORE_RADIUS_M, r).intersection(plain).area,
               BELT1_TARGET_KM2 * 1e6, CORE_RADIUS_M + 100.0, 40_000.0)
    belt1 = _annulus(CORE_RADIUS_M, r1).intersection(plain)
    green_wedges = shapely.union_all(wedges().geometry.values)
    wedges_out = green_wedges.difference(_disc(r1))
    if wedges_out.area >= BELT2_TARGET_KM2 * 1e6:
        raise ValueError("wedges alone exceed the second belt's area; narrow them")

    def belt2(width: float) -> BaseGeometry:
        ring = _annulus(RING6_RADIUS_M - width / 2, RING6_RADIUS_M + width / 2)
        return wedges_out.union(ring.intersection(plain).difference(_disc(r1)))

    ring_width = _tune(lambda w: belt2(w).area, BELT2_TARGET_KM2 * 1e6, 1.0, 20_000.0)
    water = _water_source()
    river = _river_channel()
    eligible = plain.difference(core).difference(water).difference(river)
    fps = _farmland_protection_space(eligible, FPS_TARGET_MU / MU_PER_KM2 * 1e6)
    return {
        "central_city": central_city,
        "central_built_up": core,
        "plain_area": plain,
        "green_belt_1": belt1,
        "green_belt_2": belt2(ring_width),
        "green_wedges": green_wedges,
        "water_source": water,
        "river_channel": river,
        "farmland_protection_space": fps,
        "_belt1_outer_radius_m": shapely.Point(r1, 0),  # tuned parameters, for the README
        "_ring6_width_m": shapely.Point(ring_width, 0),
    }


def city_zones() -> dict[str, BaseGeometry]:
    """Citywide zones in EPSG:4548 (cached): central_city, central_built_up, plain_area,
    green_belt_1, green_belt_2, green_wedges, water_source, river_channel,
    farmland_protection_space."""
    return {k: v for k, v in _city_zones().items() if not k.startswith("_")}


def tuned_parameters() -> dict[str, float]:
    """The numerically tuned construction parameters: belt 1 outer radius, 6th-ring ring width."""
    z = _city_zones()
    return {"belt1_outer_radius_m": z["_belt1_outer_radius_m"].x,
            "ring6_width_m": z["_ring6_width_m"].x}


def priority_zone() -> BaseGeometry:
    """Ecological-remediation priority zones: green belts 1 and 2 and the nine wedges."""
    z = _city_zones()
    return shapely.union_all([z["green_belt_1"], z["green_belt_2"], z["green_wedges"]])


def zone_areas_km2(geometry: BaseGeometry | None = None) -> dict[str, float]:
    """Area of every zone (and of `priority`), citywide or inside `geometry`, in km2."""
    zones = {**city_zones(), "priority": priority_zone()}
    if geometry is not None:
        zones = {k: v.intersection(geometry) for k, v in zones.items()}
    return {k: v.area / 1e6 for k, v in zones.items()}


def n_townships(area_km2: float) -> int:
    """Implementation units per district: one per ~15 km2, between 10 and 40."""
    return int(np.clip(round(area_km2 / 15.0), 10, 40))


def _district_townships(name: str) -> gpd.GeoDataFrame:
    poly = district_geometry(name)
    code = int(districts().loc[name, "code"])
    rng = np.random.default_rng(code)  # fixed per district: the same units in every instance
    n = n_townships(poly.area / 1e6)
    x0, y0, x1, y1 = poly.bounds
    shapely.prepare(poly)
    pts = np.empty((0, 2))
    while len(pts) < n:
        cand = rng.uniform((x0, y0), (x1, y1), size=(4 * n, 2))
        pts = np.vstack([pts, cand[shapely.contains_xy(poly, cand[:, 0], cand[:, 1])]])
    pts = pts[:n]
    frame = shapely.box(x0, y0, x1, y1).buffer(1000.0)
    for _ in range(4):  # Lloyd relaxation: rounder, more even units
        cells = shapely.get_parts(shapely.voronoi_polygons(
            shapely.multipoints(pts), extend_to=frame, ordered=True))
        cells = shapely.intersection(cells, poly)
        pts = shapely.get_coordinates(shapely.point_on_surface(cells))
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(pts), extend_to=frame, ordered=True)), poly)
    # Number the units north-west to south-east so that ids read like a map.
    order = np.lexsort((pts[:, 0], -np.round(pts[:, 1], -3)))
    ids = [f"{name}-{i + 1:02d}" for i in range(n)]
    return gpd.GeoDataFrame({"township": ids, "district": name}, geometry=cells[order],
                            crs=CRS_EPSG)


@cache
def _townships(name: str) -> gpd.GeoDataFrame:
    if name == CITY:
        parts = [_district_townships(d) for d in DISTRICTS]
        return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=CRS_EPSG)
    return _district_townships(name)


def townships(district: str) -> gpd.GeoDataFrame:
    """Implementation units of a district (or of the whole city): columns township, district."""
    return _townships(check_district(district)).copy()
