"""`greenbelt compare`: hand-made plans with known differences give exactly the changed plots and
the KPI deltas recomputed here by hand from the plot table (and, for the CLI, from the geometry)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from instances.generator import generate
from instances.loader import load_instance
from instances.schema import M2_PER_MU
from optimizer.batch.compare import CHANGES, change_codes, compare_actions, compare_plan_files
from optimizer.cli import app
from optimizer.model.kpi import ACTIONS
from optimizer.model.scenario import Scenario
from tests.conftest import grid_instance

K, F, G = 0, 1, 2


def kpi(table: pd.DataFrame, key: str) -> pd.Series:
    rows = table[table["key"] == key]
    assert len(rows) == 1, key
    return rows.iloc[0]


def write_plan(path: Path, ids: pd.Series, actions: np.ndarray) -> Path:
    pd.DataFrame({"plot_id": ids.astype(str), "action": np.asarray(ACTIONS)[actions]}).to_csv(
        path, index=False, encoding="utf-8-sig")
    return path


def test_change_codes_cover_every_pair() -> None:
    a = np.array([K, K, K, F, F, F, G, G, G])
    b = np.array([K, F, G, K, F, G, K, F, G])
    assert [CHANGES[c] for c in change_codes(a, b)] == [
        "unchanged", "kept->vacated", "kept->vacated", "vacated->kept", "unchanged",
        "farmland->forest", "vacated->kept", "forest->farmland", "unchanged"]


def test_compare_hand_made_plans(rng: np.random.Generator, tmp_path: Path) -> None:
    inst = grid_instance(rng, 3, 4)
    p = inst.plots
    a = np.array([F, F, G, K, K, K, G, K, K, F, K, K], dtype=np.int8)
    b = np.array([F, G, G, F, K, K, K, K, F, F, G, K], dtype=np.int8)
    s = Scenario()
    cmp = compare_actions(inst, s, a, b)

    expected = {"P001": ("farmland", "forest"), "P003": ("keep", "farmland"),
                "P006": ("forest", "keep"), "P008": ("keep", "farmland"),
                "P010": ("keep", "forest")}
    c = cmp.changed
    got = dict(zip(c["plot_id"], zip(c["from"], c["to"], strict=True), strict=True))
    assert got == expected
    assert cmp.counts == {"unchanged": 7, "kept->vacated": 3, "vacated->kept": 1,
                          "farmland->forest": 1, "forest->farmland": 0}
    assert list(cmp.changed["area_mu"]) == pytest.approx(
        p.set_index("plot_id").loc[list(expected), "area_mu"].round(3).tolist())

    # Deltas recomputed from the plot table, independently of the target matrices.
    area, prio = p["area_mu"].to_numpy(), p["share_priority"].to_numpy()
    demolition = p["demolition_wan_per_mu"].to_numpy() * area
    cost_f = demolition + p["reclaim_wan_per_mu"].to_numpy() * area
    cost_g = demolition + p["afforest_wan_per_mu"].to_numpy() * area

    def by_hand(x: np.ndarray) -> dict[str, float]:
        f, g = x == F, x == G
        v = f | g
        return {"vacated_mu": area[v].sum(), "farmland_mu": area[f].sum(),
                "forest_mu": area[g].sum(), "vacated_plots": v.sum(),
                "cost_wan": cost_f[f].sum() + cost_g[g].sum(),
                "lost_output_wan": p["output_wan"].to_numpy()[v].sum(),
                "priority_farmland": inst.stats["farmland_in_priority_mu"]
                + (area * prio)[f].sum(),
                "conversion_balance": area[f].sum() - area[g].sum(),
                "share": (area * prio)[v].sum() / area[v].sum()}

    ha, hb = by_hand(a), by_hand(b)
    for key in ("vacated_mu", "farmland_mu", "forest_mu", "vacated_plots", "cost_wan",
                "lost_output_wan"):
        row = kpi(cmp.kpis, key)
        assert (row["a"], row["b"]) == pytest.approx((ha[key], hb[key]))
        assert row["delta"] == pytest.approx(hb[key] - ha[key])
    for key, truth in (("priority_farmland", "priority_farmland"), ("budget", "cost_wan"),
                       ("conversion_balance", "conversion_balance"),
                       ("total_reduction", "vacated_mu")):
        row = kpi(cmp.kpis, key)
        assert (row["a"], row["b"], row["delta"]) == pytest.approx(
            (ha[truth], hb[truth], hb[truth] - ha[truth]))
    share = kpi(cmp.kpis, "central_priority_share")
    assert share["unit"] == "share" and share["required"] == pytest.approx(0.89)
    assert (share["a"], share["b"]) == pytest.approx((ha["share"], hb["share"]))
    assert bool(share["met_a"]) == (ha["share"] >= 0.89 - 1e-9)
    budget = kpi(cmp.kpis, "budget")
    assert budget["met_b"] == (hb["cost_wan"] <= budget["required"])

    # Files: the same tables, and a map.
    ids = p["plot_id"]
    cmp2, paths = compare_plan_files(inst, s, write_plan(tmp_path / "a.csv", ids, a),
                                     write_plan(tmp_path / "b.csv", ids, b), tmp_path / "out")
    changed = pd.read_csv(paths["changed"], encoding="utf-8-sig")
    assert list(changed["plot_id"]) == list(expected)
    assert list(changed["change"]) == ["farmland->forest", "kept->vacated", "vacated->kept",
                                       "kept->vacated", "kept->vacated"]
    deltas = pd.read_csv(paths["kpis"], encoding="utf-8-sig")
    assert kpi(deltas, "cost_wan")["delta"] == pytest.approx(hb["cost_wan"] - ha["cost_wan"])
    assert paths["map"].read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def instance_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "shijingshan_500_1.gpkg"  # shared with test_sweep
    if not path.exists():
        generate("shijingshan", 500, 1, path)
    return path


def test_compare_cli_on_a_generated_instance(instance_file: Path, tmp_path: Path) -> None:
    inst = load_instance(instance_file)
    ids = inst.plots["plot_id"]
    cand = np.flatnonzero(inst.plots["collective"].to_numpy(bool))[:6]
    a = np.zeros(len(ids), dtype=np.int8)
    b = a.copy()
    a[cand[:3]] = F
    b[cand[1:3]] = G
    b[cand[3:6]] = F
    pa, pb = write_plan(tmp_path / "a.csv", ids, a), write_plan(tmp_path / "b.csv", ids, b)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["compare", str(instance_file), str(pa), str(pb),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "6 plots change" in result.output
    changed = pd.read_csv(out / "changed_plots.csv", encoding="utf-8-sig", dtype={"plot_id": str})
    want = ids.iloc[cand].astype(str).tolist()
    assert changed["plot_id"].tolist() == want
    assert changed["change"].tolist() == ["vacated->kept", "farmland->forest", "farmland->forest",
                                          "kept->vacated", "kept->vacated", "kept->vacated"]
    # Areas from the polygons themselves.
    area = inst.geometry.area.to_numpy() / M2_PER_MU
    deltas = pd.read_csv(out / "kpi_deltas.csv", encoding="utf-8-sig")
    row = kpi(deltas, "vacated_mu")
    assert row["delta"] == pytest.approx(area[cand[3:6]].sum() - area[cand[0]], rel=1e-9)
    assert kpi(deltas, "forest_mu")["b"] == pytest.approx(area[cand[1:3]].sum(), rel=1e-9)
    assert (out / "difference_map.png").stat().st_size > 0

    other = tmp_path / "other.csv"
    write_plan(other, ids.iloc[:-1], a[:-1])  # a plan missing a plot
    bad = CliRunner().invoke(app, ["compare", str(instance_file), str(pa), str(other),
                                   "--out", str(out)])
    assert bad.exit_code == 1 and "have no row" in bad.output
