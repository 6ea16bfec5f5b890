"""Shared fixtures: tiny hand-built instances whose every number is known."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from shapely.geometry import box

from instances.instance import Instance
from instances.schema import M2_PER_MU, ZONE_LAYERS


def grid_instance(
    rng: np.random.Generator,
    rows: int = 3,
    cols: int = 3,
    candidate_share: float = 1.0,
    central: bool = True,
) -> Instance:
    """rows x cols rectangles with random widths/heights (so areas differ), random attributes.

    Areas and shares are rounded to 2 decimals so integer-scaling back-ends see exact data.
    Derived columns are set directly (the loader has its own geometry tests).
    """
    widths = rng.integers(60, 140, cols).astype(float)
    heights = rng.integers(60, 140, rows).astype(float)
    xs, ys = np.concatenate([[0], np.cumsum(widths)]), np.concatenate([[0], np.cumsum(heights)])
    geoms, areas = [], []
    for r in range(rows):
        for c in range(cols):
            geoms.append(box(xs[c], ys[r], xs[c + 1], ys[r + 1]))
            areas.append(widths[c] * heights[r] / M2_PER_MU)
    n = rows * cols
    area = np.round(np.array(areas), 2)
    idx = np.arange(n).reshape(rows, cols)
    pairs = [(idx[r, c], idx[r, c + 1], heights[r]) for r in range(rows) for c in range(cols - 1)]
    pairs += [(idx[r, c], idx[r + 1, c], widths[c]) for r in range(rows - 1) for c in range(cols)]
    i, j, w = (np.array(v) for v in zip(*pairs, strict=True))
    adj = sp.csr_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(n, n))
    collective = rng.random(n) < candidate_share
    efficiency = np.round(rng.uniform(1, 15, n), 2)
    plots = pd.DataFrame({
        "plot_id": [f"P{k:03d}" for k in range(n)],
        "district": "testdistrict",
        "township": [f"T{k % 2}" for k in range(n)],
        "land_use": np.where(collective, "collective_industrial", "farmland"),
        "output_wan": np.round(efficiency * area, 2),
        "demolition_wan_per_mu": np.round(rng.uniform(30, 120, n), 0),
        "reclaim_wan_per_mu": np.round(rng.uniform(2, 8, n), 0),
        "afforest_wan_per_mu": np.round(rng.uniform(1, 5, n), 0),
        "soil_suitable": rng.random(n) > 0.15,
        "polluted": rng.random(n) < 0.1,
        "illegal": np.zeros(n, bool),
        "protected": np.zeros(n, bool),
        "area_mu": area,
        "collective": collective,
        "touches_farmland": rng.random(n) < 0.3,
        "touches_forest": np.zeros(n, bool),
    })
    for zone in ZONE_LAYERS:
        plots[f"share_{zone}"] = 0.0
    plots["share_priority"] = np.round(np.where(rng.random(n) < 0.6, rng.uniform(0.5, 1, n),
                                                rng.uniform(0, 0.2, n)), 2)
    plots["share_central_city"] = 1.0 if central else 0.0
    plots["share_plain_area"] = 1.0
    plots["share_farmland_protection_space"] = np.where(rng.random(n) < 0.15, 1.0, 0.0)
    crs = "EPSG:4548"
    zones = {z: gpd.GeoDataFrame(geometry=[], crs=crs) for z in ZONE_LAYERS}
    stats = {"farmland_in_priority_mu": 100.0, "plain_area_mu": float(area.sum()),
             "forest_in_plain_mu": 0.0, "study_area_mu": float(area.sum()),
             "priority_mu": float((area * plots["share_priority"]).sum())}
    return Instance("grid", plots, gpd.GeoSeries(geoms, crs=crs), adj, zones, stats, {})


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True, scope="session")
def _private_derived_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never read or fill the user's cache of derived tables (instances.derived_cache)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GREENBELT_CACHE", str(tmp_path_factory.mktemp("greenbelt-cache")))
    yield
    mp.undo()


def generated_instance(path: Path, plots: int, seed: int = 3, district: str = "chaoyang") -> Path:
    """A generated district instance at `path`, through the CLI's `generate` (as a user makes
    one); fails the test with the command's output if it does not exit 0."""
    from typer.testing import CliRunner

    from optimizer.cli import app

    r = CliRunner().invoke(app, ["generate", "--district", district, "--plots", str(plots),
                                 "--seed", str(seed), "--out", str(path)])
    assert r.exit_code == 0, r.output
    return path
