"""The synthetic instance generator: file format, geometry, determinism, calibration, errors.

Every check reads the written GeoPackage back and recomputes from geometry (not from the
generator's own bookkeeping)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from instances import generator as gen
from instances.geography import district_geometry
from instances.schema import (
    CANDIDATE_LAND_USES,
    CRS_EPSG,
    LAND_USES,
    M2_PER_MU,
    META_LAYER,
    PLOT_COLUMNS,
    PLOTS_LAYER,
    PRIORITY_LAYERS,
    TOWNSHIPS_LAYER,
    ZONE_LAYERS,
)

ROOT = Path(__file__).parents[1]
DTYPE_KIND = {"str": "OU", "float": "f", "bool": "b"}


def _plots(path: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(path, layer=PLOTS_LAYER)


def _union(path: Path, layer: str):
    g = gpd.read_file(path, layer=layer).geometry.values
    return shapely.union_all(g) if len(g) else shapely.Polygon()


def _meta(path: Path) -> dict[str, str]:
    return dict(pyogrio.read_dataframe(path, layer=META_LAYER)[["key", "value"]].values)


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gen")


@pytest.fixture(scope="module")
def small(out) -> Path:
    return gen.generate("chaoyang", 1000, 3, out / "a.gpkg")


def test_layers_and_plot_columns_follow_the_schema(small):
    layers = dict(pyogrio.list_layers(small))
    assert set(layers) == {PLOTS_LAYER, *ZONE_LAYERS, TOWNSHIPS_LAYER, META_LAYER}
    plots = _plots(small)
    assert plots.crs.to_epsg() == CRS_EPSG
    assert list(plots.columns) == [*PLOT_COLUMNS, "geometry"]
    for col, (kind, _) in PLOT_COLUMNS.items():
        dtype = plots[col].dtype
        assert dtype.kind in DTYPE_KIND[kind] or (kind == "str" and dtype == "str"), col
    towns = gpd.read_file(small, layer=TOWNSHIPS_LAYER)
    assert {"township", "district"} <= set(towns.columns)
    assert set(plots["township"]) <= set(towns["township"])
    for layer in ZONE_LAYERS:
        assert gpd.read_file(small, layer=layer).crs.to_epsg() == CRS_EPSG


def test_exact_count_and_a_clean_cover_of_the_district(small):
    plots = _plots(small)
    g = plots.geometry.values
    district = district_geometry("chaoyang")
    assert len(plots) == 1000 and plots["plot_id"].is_unique
    assert shapely.is_valid(g).all() and not shapely.is_empty(g).any()
    area = shapely.area(g)
    assert area.sum() == pytest.approx(district.area, rel=0.005)
    assert shapely.union_all(g).area == pytest.approx(area.sum(), rel=1e-6)  # no overlaps
    assert shapely.coverage_is_valid(g)
    assert area.min() >= gen.MIN_AREA_FRACTION * district.area / 1000 * 0.999
    # Vertices are snapped to a 1 mm grid: the cover may stray by at most that from the border.
    assert shapely.difference(shapely.union_all(g), district).area < district.length * gen.GRID_M


def test_attributes_are_plausible(small):
    p = _plots(small)
    area = shapely.area(p.geometry.values) / M2_PER_MU
    assert set(p["land_use"]) <= set(LAND_USES)
    assert set(p["land_use"]) >= {*CANDIDATE_LAND_USES, "urban", "farmland", "forest"}
    construction = p["land_use"].isin([*CANDIDATE_LAND_USES, "urban"]).to_numpy()
    assert (p["output_wan"].to_numpy()[construction] > 0).all()
    eff = p["output_wan"].to_numpy() / area
    industrial = (p["land_use"] == "collective_industrial").to_numpy()
    assert 3 < np.median(eff[industrial]) < 20  # mostly low-efficiency, some high
    assert (p["reclaim_wan_per_mu"].between(1.5, 10)).all()
    assert (p["afforest_wan_per_mu"].between(1.0, 8)).all()
    collective = p["land_use"].isin(CANDIDATE_LAND_USES)
    assert not (p["illegal"] & p["protected"]).any()
    assert not (p["illegal"] | p["protected"])[~collective].any()
    assert 0 < p["polluted"].mean() < 0.1 and p["soil_suitable"].mean() > 0.9


def test_farmland_and_forest_layers_dissolve_their_plots(small):
    p = _plots(small)
    for use in ("farmland", "forest"):
        expected = shapely.area(p.geometry.values[(p["land_use"] == use).to_numpy()]).sum()
        assert _union(small, use).area == pytest.approx(expected, rel=1e-6)


def test_zone_layers_are_clipped_to_the_district(small):
    district = district_geometry("chaoyang")
    for layer in ZONE_LAYERS:  # farmland, forest: plots snapped to 1 mm
        assert _union(small, layer).difference(district).area < district.length * gen.GRID_M
    assert _union(small, "central_city").area == pytest.approx(district.area, rel=1e-6)


def test_meta_reference_areas_match_the_layers(small):
    meta = _meta(small)
    assert meta["district"] == "chaoyang" and meta["seed"] == "3" and meta["plots"] == "1000"
    assert meta["generator_version"] == gen.GENERATOR_VERSION
    priority = shapely.union_all([_union(small, z) for z in PRIORITY_LAYERS])
    assert float(meta["district_priority_mu"]) == pytest.approx(priority.area / M2_PER_MU,
                                                                rel=1e-4)
    assert float(meta["city_priority_mu"]) == pytest.approx(1220 * 1500, rel=0.002)
    assert float(meta["district_central_mu"]) == pytest.approx(
        district_geometry("chaoyang").area / M2_PER_MU, rel=1e-4)
    for key in ("city_central_mu", "city_plain_mu", "district_plain_mu", "city_total_mu"):
        assert float(meta[key]) > 0


def test_same_seed_same_instance_other_seed_different(small, out):
    again = gen.generate("chaoyang", 1000, 3, out / "b.gpkg")
    other = gen.generate("chaoyang", 1000, 4, out / "c.gpkg")
    for layer in (PLOTS_LAYER, "farmland", TOWNSHIPS_LAYER, META_LAYER):
        a = pyogrio.read_dataframe(small, layer=layer)
        b = pyogrio.read_dataframe(again, layer=layer)
        pd.testing.assert_frame_equal(a.drop(columns="geometry", errors="ignore"),
                                      b.drop(columns="geometry", errors="ignore"))
        if "geometry" in a:
            assert (shapely.to_wkb(a.geometry.values) == shapely.to_wkb(b.geometry.values)).all()
    a, c = _plots(small), _plots(other)
    assert (a["land_use"] != c["land_use"]).mean() > 0.2
    assert not a.geometry.geom_equals_exact(c.geometry, 1.0).all()


def test_same_instance_in_another_process(out):
    here = gen.generate("dongcheng", 500, 9, out / "p1.gpkg")
    code = ("from instances import generator as g; "
            f"g.generate('dongcheng', 500, 9, {str(out / 'p2.gpkg')!r})")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    a, b = _plots(here), _plots(out / "p2.gpkg")
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    assert (shapely.to_wkb(a.geometry.values) == shapely.to_wkb(b.geometry.values)).all()


def test_calibration_makes_the_default_targets_bind_but_feasible(out):
    """Chaoyang: existing farmland ~25% of the priority area (target 28.4%), ample collective
    land inside, low-efficiency candidates in the zones > 90% of the central reduction."""
    path = gen.generate("chaoyang", 2000, 11, out / "calib.gpkg")
    p, meta = _plots(path), _meta(path)
    g = p.geometry.values
    area = shapely.area(g) / M2_PER_MU
    prio = shapely.union_all([_union(path, z) for z in PRIORITY_LAYERS])
    share = shapely.area(shapely.intersection(g, prio)) / shapely.area(g)
    total = (area * share).sum()
    use = p["land_use"].to_numpy()
    farmland = (area * share)[use == "farmland"].sum() / total
    collective = np.isin(use, CANDIDATE_LAND_USES)
    target = 520_000 * float(meta["district_priority_mu"]) / float(meta["city_priority_mu"])
    assert 0.23 < farmland < 0.27 < target / total
    assert 0.12 < (area * share)[collective].sum() / total < 0.18
    rest = (area * (1 - share))[collective].sum() / (area * (1 - share)).sum()
    assert 0.07 < rest < 0.13
    eff = p["output_wan"].to_numpy() / area
    cand = collective & (eff <= 20) & ~p["protected"].to_numpy()
    central = 52_500 * float(meta["district_central_mu"]) / float(meta["city_central_mu"])
    assert 17_000 < central < 19_000
    assert (area * share)[cand].sum() > 1.5 * central


def test_whole_city_instance(out):
    path = gen.generate("Beijing", 500, 1, out / "city.gpkg")
    p = _plots(path)
    assert len(p) == 500 and p["district"].nunique() >= 12
    assert shapely.area(p.geometry.values).sum() / 1e6 == pytest.approx(16412, rel=0.005)
    meta = _meta(path)
    assert meta["district_priority_mu"] == meta["city_priority_mu"]


def test_progress_is_reported_up_to_done(out):
    calls: list[tuple[str, float]] = []
    gen.generate("dongcheng", 500, 1, out / "d.gpkg", progress=lambda s, f: calls.append((s, f)))
    fractions = [f for _, f in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and calls[-1] == ("done", 1.0)


def test_bad_arguments_raise_clear_errors_and_write_nothing(out):
    target = out / "bad.gpkg"
    with pytest.raises(ValueError, match="unknown district 'atlantis'.*chaoyang"):
        gen.generate("atlantis", 1000, 1, target)
    for plots in (499, 200_001):
        with pytest.raises(ValueError, match=r"\[500, 200000\]"):
            gen.generate("chaoyang", plots, 1, target)
    for plots in (1000.0, True):
        with pytest.raises(ValueError, match="integer"):
            gen.generate("chaoyang", plots, 1, target)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        gen.generate("chaoyang", 1000, -1, target)
    assert not target.exists()


def test_writes_atomically_over_an_existing_file(out):
    target = out / "sub" / "x.gpkg"
    target.parent.mkdir()
    target.write_text("old")
    gen.generate("xicheng", 500, 2, target)
    assert len(_plots(target)) == 500
    assert sorted(f.name for f in target.parent.iterdir()) == ["x.gpkg"]  # no temp left
