"""Outputs of the five-year schedule against hand-counted truth, `greenbelt check` on per-year
rules (it passes a solved plan and fails a hand-edited one that breaks an annual budget), and
`compare` treating a plot moved by a year as a change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from instances.generator import generate
from instances.loader import load_instance
from optimizer.batch.compare import compare_actions, compare_plan_files
from optimizer.cli import app
from optimizer.model.kpi import ACTIONS
from optimizer.model.scenario import Scenario, load_scenario
from optimizer.plan.check import check_actions
from optimizer.plan.solve import Plan
from optimizer.reporting.annual import annual_plan, project_ids, projects, year_table
from tests.conftest import grid_instance

K, F, G = 0, 1, 2
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "phased.toml"


def _plan(inst, s: Scenario, actions: np.ndarray, years: np.ndarray) -> Plan:
    return Plan(inst.name, s, actions, [], [], None, years=years)  # type: ignore[arg-type]


def test_projects_and_annual_plan_by_hand(rng: np.random.Generator) -> None:
    # 3 x 4 grid, row-major ids 0..11; townships alternate T0 (even ids) / T1 (odd ids)
    inst = grid_instance(rng, 3, 4)
    a = np.array([F, F, G, K, F, K, K, K, G, G, K, F], dtype=np.int8)
    y = np.array([21, 21, 21, 0, 22, 0, 0, 0, 23, 23, 0, 22]) + 2000
    y[a == K] = 0
    s = Scenario()
    s.phasing.enabled, s.phasing.last_year = True, 2023
    proj = project_ids(inst, a, y)
    # {0, 1} farmland 2021 (adjacent); {2} forest 2021; {4} farmland 2022 (0 is 2021);
    # {8, 9} forest 2023; {11} farmland 2022 (alone)
    groups = {frozenset(np.flatnonzero(proj == k)) for k in range(proj.max() + 1)}
    assert groups == {frozenset({0, 1}), frozenset({2}), frozenset({4}), frozenset({8, 9}),
                      frozenset({11})}
    plan = _plan(inst, s, a, y)
    table = projects(inst, plan)
    area = inst.plots["area_mu"].to_numpy()
    assert len(table) == 5
    assert sorted(table["year"]) == [2021, 2021, 2022, 2022, 2023]
    big = table[table["plots"] == 2].set_index("year")
    assert big.loc[2021, "area_mu"] == pytest.approx(area[[0, 1]].sum(), abs=1e-3)
    assert big.loc[2023, "action"] == "forest"
    ap = annual_plan(inst, plan).set_index(["township", "year"])
    assert ap.loc[("T0", 2021), "plots"] == 2  # plots 0 and 2
    assert ap.loc[("T0", 2021), "mu"] == pytest.approx(area[[0, 2]].sum(), abs=1e-3)
    assert ap.loc[("T1", 2022), "mu"] == pytest.approx(area[11], abs=1e-3)
    assert ap["plots"].sum() == (a != K).sum()
    rows = year_table(inst, plan)
    assert [r["plots"] for r in rows] == [3, 2, 2]
    assert rows[-1]["cumulative_vacated_mu"] == pytest.approx(area[a != K].sum())


def test_compare_counts_a_year_move_as_a_change(rng: np.random.Generator,
                                                tmp_path: Path) -> None:
    inst = grid_instance(rng, 2, 3)
    a = np.array([F, G, K, F, K, G], dtype=np.int8)
    ya = np.array([2021, 2022, 0, 2023, 0, 2021])
    yb = np.array([2021, 2024, 0, 2022, 0, 2021])
    cmp = compare_actions(inst, Scenario(), a, a, (ya, yb))
    assert cmp.counts["moved to a later year"] == 1
    assert cmp.counts["moved to an earlier year"] == 1
    assert cmp.counts["unchanged"] == 4
    assert cmp.changed["plot_id"].tolist() == ["P001", "P003"]
    assert cmp.changed["to_year"].tolist() == [2024, 2022]
    ids = inst.plots["plot_id"]
    paths = []
    for name, y in (("a", ya), ("b", yb)):
        pd.DataFrame({"plot_id": ids, "action": np.asarray(ACTIONS)[a],
                      "year": pd.Series(y, dtype="Int64").where(a != K)}).to_csv(
            tmp_path / f"{name}.csv", index=False, encoding="utf-8-sig")
        paths.append(tmp_path / f"{name}.csv")
    cmp2, _ = compare_plan_files(inst, Scenario(), *paths, tmp_path / "out")
    assert len(cmp2.changed) == 2


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.getbasetemp()
    inst = base / "fengtai_600_2.gpkg"
    if not inst.exists():
        generate("fengtai", 600, 2, inst)
    out = base / "phased_run"
    result = CliRunner().invoke(app, ["solve", str(inst), "--scenario", str(EXAMPLE),
                                      "--out", str(out), "--time-limit", "60"])
    assert result.exit_code == 0, result.output
    return inst, out


def test_solve_writes_the_schedule_and_check_passes_it(solved: tuple[Path, Path]) -> None:
    inst_path, out = solved
    for name in ("plan.csv", "annual_plan.csv", "projects.csv", "years_map.png",
                 "milestones.png", "plan.gpkg"):
        assert (out / name).exists(), name
    plan = pd.read_csv(out / "plan.csv", encoding="utf-8-sig", dtype={"plot_id": str})
    vac = plan["action"] != "keep"
    assert plan.loc[vac, "year"].between(2021, 2025).all()
    assert plan.loc[~vac, "year"].isna().all()
    ap = pd.read_csv(out / "annual_plan.csv", encoding="utf-8-sig")
    assert ap["plots"].sum() == vac.sum()
    assert ap["cost_wan"].sum() == pytest.approx(plan["total_cost_wan"].sum(), rel=1e-6)
    pj = pd.read_csv(out / "projects.csv", encoding="utf-8-sig")
    assert pj["plots"].sum() == vac.sum()
    assert pj["area_mu"].sum() == pytest.approx(plan.loc[vac, "area_mu"].sum(), rel=1e-4)
    result = CliRunner().invoke(app, ["check", str(inst_path), str(out / "plan.csv"),
                                      "--scenario", str(EXAMPLE)])
    assert result.exit_code == 0, result.output


def test_check_fails_a_plan_edited_to_break_an_annual_budget(solved: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    inst_path, out = solved
    plan = pd.read_csv(out / "plan.csv", encoding="utf-8-sig", dtype={"plot_id": str})
    vac = plan["action"] != "keep"
    edited = plan.copy()
    edited.loc[vac, "year"] = 2021  # everything in the first year: 2021's budget is one fifth
    path = tmp_path / "edited.csv"
    edited.to_csv(path, index=False, encoding="utf-8-sig")
    inst = load_instance(inst_path)
    s = load_scenario(EXAMPLE)
    result = CliRunner().invoke(app, ["check", str(inst_path), str(path), "--scenario",
                                      str(EXAMPLE)])
    assert result.exit_code == 1, result.output
    assert "spending so far within the budgets so far (2021)" in result.output
    # the same plan with its years intact passes; a year outside the period is a file error
    years = pd.to_numeric(plan["year"]).fillna(0).to_numpy(int)
    ok = check_actions(inst, s, pd.Categorical(plan["action"], categories=ACTIONS).codes
                       .astype(np.int8), years=years)
    assert not ok.problems()
    edited.loc[vac.idxmax(), "year"] = 2030
    edited.to_csv(path, index=False, encoding="utf-8-sig")
    result = CliRunner().invoke(app, ["check", str(inst_path), str(path), "--scenario",
                                      str(EXAMPLE)])
    assert result.exit_code != 0 and "field 'year'" in result.output
