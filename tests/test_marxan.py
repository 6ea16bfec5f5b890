"""Marxan interoperability on the hand-built survey grid (10 x 8 cells of 120 m = 21.6 mu):
the exported files hold the figures computed by hand, and a Marxan solution read back is a plan
that `greenbelt check` evaluates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from survey_data import COLS, ROWS, import_survey_instance
from typer.testing import CliRunner

from optimizer.cli import app

runner = CliRunner()
CELL_MU = 120.0 * 120.0 / (2000.0 / 3.0)  # 21.6


def unit(r: int, c: int) -> int:
    return r * COLS + c + 1  # Marxan id = row number of the plot (plots in row-major order)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("marxan")
    inst, scenario = import_survey_instance(root)
    r = runner.invoke(app, ["marxan", "export", str(inst), "--scenario", str(scenario),
                            "--out", str(root / "mx")])
    assert r.exit_code == 0, r.output
    return inst, scenario, root / "mx"


def test_exported_files_hold_the_hand_computed_figures(exported: tuple[Path, Path, Path]
                                                       ) -> None:
    _, _, mx = exported
    for name in ("pu.dat", "spec.dat", "puvspr.dat", "bound.dat", "input.dat"):
        assert (mx / name).stat().st_size > 0
    pu = pd.read_csv(mx / "pu.dat").set_index("id")
    assert len(pu) == ROWS * COLS
    for r in range(ROWS):
        for c in (0, 1, 2, 6, 7, 8, 9):  # farmland, state industry, forest, water: locked out
            assert pu.loc[unit(r, c), "status"] == 3
    assert pu.loc[unit(1, 3), "status"] == 2  # the illegal building: locked in
    assert pu.loc[unit(7, 5), "status"] == 3  # protected
    assert pu.loc[unit(0, 3), "status"] == 0
    # cost of (0, 3): 5 years x output 23 + (demolition 63 + reclamation 18) x 21.6 mu
    assert pu.loc[unit(0, 3), "cost"] == pytest.approx(5 * 23 + (63 + 18) * CELL_MU, abs=1e-3)
    spec = pd.read_csv(mx / "spec.dat").set_index("name")
    assert spec.loc["total_reduction[whole instance]", "target"] == pytest.approx(180)
    assert spec.loc["township_reduction[孙河乡]", "target"] == pytest.approx(100)
    assert spec.loc["township_reduction[崔各庄乡]", "target"] == pytest.approx(80)
    puvspr = pd.read_csv(mx / "puvspr.dat")
    total = puvspr[puvspr["species"] == spec.loc["total_reduction[whole instance]", "id"]]
    # collective construction cells: 4 x 8 minus 8 state industry minus the protected one
    assert len(total) == 23
    assert total["amount"].to_numpy() == pytest.approx(CELL_MU, abs=1e-3)
    assert list(puvspr["pu"]) == sorted(puvspr["pu"])  # Marxan wants it ordered by unit
    bound = pd.read_csv(mx / "bound.dat")
    assert len(bound) == (COLS - 1) * ROWS + COLS * (ROWS - 1)  # 142 shared edges
    assert bound["boundary"].to_numpy() == pytest.approx(120.0, abs=1e-3)
    assert "PUNAME pu.dat" in (mx / "input.dat").read_text(encoding="utf-8")


def test_a_marxan_solution_is_read_back_and_checked(exported: tuple[Path, Path, Path]) -> None:
    inst, scenario, mx = exported
    chosen = {unit(r, 3) for r in range(ROWS)} | {unit(r, 4) for r in range(4)}
    solution = mx / "output" / "output_best.csv"
    pd.DataFrame({"PUID": range(1, ROWS * COLS + 1),
                  "SOLUTION": [int(i in chosen) for i in range(1, ROWS * COLS + 1)]}
                 ).to_csv(solution, index=False)
    plan = mx / "marxan_plan.csv"
    r = runner.invoke(app, ["marxan", "read", str(inst), str(solution), "--scenario",
                            str(scenario), "--out", str(plan)])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(plan, dtype={"plot_id": str})
    assert (table["action"] != "keep").sum() == len(chosen)
    assert set(table.loc[table["action"] != "keep", "action"]) == {"farmland"}
    r = runner.invoke(app, ["check", str(inst), str(plan), "--scenario", str(scenario)])
    assert r.exit_code == 0, r.output  # 259.2 mu >= 180; townships 172.8 >= 100, 86.4 >= 80
    assert "259.2" in r.output


def test_a_solution_from_elsewhere_is_refused(exported: tuple[Path, Path, Path]) -> None:
    inst, scenario, mx = exported
    solution = mx / "output" / "foreign.csv"
    pd.DataFrame({"planning_unit": [unit(0, 0)], "solution": [1]}).to_csv(solution, index=False)
    r = runner.invoke(app, ["marxan", "read", str(inst), str(solution), "--scenario",
                            str(scenario), "--out", str(mx / "x.csv")])
    assert r.exit_code == 1
    assert "locked out" in " ".join(r.output.split())
