"""The village mode of the generator: candidate count, parcel sizes, clustering, a clean cover,
determinism. Small instances (Dongcheng/Xicheng: ~45 km2) keep every test fast."""

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
from instances.schema import CANDIDATE_LAND_USES, M2_PER_MU, META_LAYER, PLOT_COLUMNS, PLOTS_LAYER

ROOT = Path(__file__).parents[1]


def _plots(path: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(path, layer=PLOTS_LAYER)


def _meta(path: Path) -> dict[str, str]:
    return dict(pyogrio.read_dataframe(path, layer=META_LAYER)[["key", "value"]].values)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("villages")


@pytest.fixture(scope="module")
def village(out: Path) -> Path:
    return gen.generate("xicheng", None, 5, out / "v.gpkg", candidates=800, median_mu=8.0)


def _candidates(p: gpd.GeoDataFrame) -> np.ndarray:
    return p["land_use"].isin(CANDIDATE_LAND_USES).to_numpy()


def test_exact_candidate_count_and_schema(village: Path) -> None:
    p = _plots(village)
    assert list(p.columns) == [*PLOT_COLUMNS, "geometry"]
    assert _candidates(p).sum() == 800
    assert len(p) > 800 and p["plot_id"].is_unique
    meta = _meta(village)
    assert meta["mode"] == "villages" and meta["candidates"] == "800"
    assert meta["plots"] == str(len(p)) and float(meta["median_mu"]) == 8.0


def test_candidate_parcels_are_small_and_lognormal_the_rest_larger(village: Path) -> None:
    p = _plots(village)
    area = shapely.area(p.geometry.values) / M2_PER_MU
    cand = _candidates(p)
    assert 5.0 <= np.median(area[cand]) <= 15.0
    assert np.median(area[cand]) == pytest.approx(8.0, rel=0.2)
    assert 0.4 < np.log(area[cand]).std() < 1.0  # lognormal-like spread
    assert np.median(area[~cand]) > 2 * np.median(area[cand])


def test_candidates_come_in_villages(village: Path) -> None:
    """Most candidate parcels share an edge with another candidate parcel."""
    p = _plots(village)
    g = p.geometry.values
    cand = np.flatnonzero(_candidates(p))
    i, j = shapely.STRtree(g[cand]).query(g[cand], predicate="intersects")
    m = i != j
    i, j = i[m], j[m]
    shared = shapely.length(shapely.intersection(shapely.boundary(g[cand][i]),
                                                 shapely.boundary(g[cand][j])))
    has_neighbour = np.zeros(len(cand), bool)
    has_neighbour[i[shared > 0]] = True
    assert has_neighbour.mean() > 0.9


def test_a_clean_cover_of_the_district(village: Path) -> None:
    g = _plots(village).geometry.values
    district = district_geometry("xicheng")
    assert shapely.is_valid(g).all() and (shapely.get_type_id(g) == 3).all()
    area = shapely.area(g)
    assert area.sum() == pytest.approx(district.area, rel=1e-4)
    assert shapely.union_all(g).area == pytest.approx(area.sum(), rel=1e-6)  # no overlaps
    assert shapely.coverage_is_valid(g)
    assert shapely.difference(shapely.union_all(g), district).area < district.length * gen.GRID_M


def test_background_gets_land_use_and_illegal_parcels_may_become_forest(village: Path) -> None:
    p = _plots(village)
    cand = _candidates(p)
    assert set(p["land_use"][~cand]) >= {"urban", "forest"}
    assert not (p["illegal"] | p["protected"])[~cand].any()
    assert not (p["illegal"] & p["protected"]).any()


def test_same_instance_in_another_process(village: Path, out: Path) -> None:
    code = ("from instances import generator as g; "
            f"g.generate('xicheng', None, 5, {str(out / 'v2.gpkg')!r}, candidates=800, "
            "median_mu=8.0)")
    env = {**os.environ, "PYTHONHASHSEED": "4321"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    a, b = _plots(village), _plots(out / "v2.gpkg")
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    assert (shapely.to_wkb(a.geometry.values) == shapely.to_wkb(b.geometry.values)).all()


def test_another_seed_gives_another_instance(village: Path) -> None:
    other = gen.build("xicheng", None, 6, candidates=800, median_mu=8.0)[PLOTS_LAYER]
    a = _plots(village)
    assert _candidates(other).sum() == 800
    assert len(other) != len(a) or not a.geometry.geom_equals_exact(other.geometry, 1.0).all()


def test_default_median_follows_the_collective_reference_area() -> None:
    """Without median_mu: the collective reference area / the count, clipped to [5, 15] mu."""
    few = gen.village_plan("chaoyang", 2_000)
    many = gen.village_plan("chaoyang", 50_000)
    mid = gen.village_plan("chaoyang", 8_000)
    assert few["median_mu"] == 15.0 and many["median_mu"] == 5.0
    assert 5.0 < mid["median_mu"] < 15.0
    assert mid["collective_mu"] == pytest.approx(mid["reference_mu"])


def test_mode_arguments() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        gen.build("xicheng", 500, 1, mode="fine")
    with pytest.raises(ValueError, match="plot count follows"):
        gen.build("xicheng", 500, 1, mode="villages")
    with pytest.raises(ValueError, match="belong to mode 'villages'"):
        gen.build("xicheng", 500, 1, mode="coarse", candidates=1000)
    with pytest.raises(ValueError, match=r"candidates must lie in \[200, 400000\]"):
        gen.build("xicheng", None, 1, candidates=100)
    with pytest.raises(ValueError, match="candidates must be an integer"):
        gen.build("xicheng", None, 1, candidates=1000.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"median_mu must lie in \[5, 15\]"):
        gen.build("xicheng", None, 1, candidates=1000, median_mu=30.0)
    with pytest.raises(ValueError, match="at most .* fit"):
        gen.build("xicheng", None, 1, candidates=20_000, median_mu=15.0)
