"""End to end through the command line: generate -> solve -> check, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from optimizer.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    inst = root / "sj.gpkg"
    r = runner.invoke(app, ["generate", "--district", "chaoyang", "--plots", "800",
                            "--seed", "3", "--out", str(inst)])
    assert r.exit_code == 0, r.output
    out = root / "plan"
    r = runner.invoke(app, ["solve", str(inst), "--out", str(out), "--time-limit", "60"])
    assert r.exit_code == 0, r.output
    return inst, out


def test_solve_writes_four_outputs_that_check_passes(solved: tuple[Path, Path]) -> None:
    inst, out = solved
    for name in ("plan.csv", "summary.json", "plan.gpkg", "map.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "plan.csv").read_bytes()[:3] == b"\xef\xbb\xbf"  # BOM for Excel
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["all_targets_met"] and summary["solver"]["gap"] is not None
    assert summary["farmland_blocks"]["violating"] == 0
    r = runner.invoke(app, ["check", str(inst), str(out / "plan.csv")])
    assert r.exit_code == 0, r.output
    assert "all targets and rules met" in r.output


def test_check_names_the_violated_target(solved: tuple[Path, Path], tmp_path: Path) -> None:
    inst, out = solved
    plan = pd.read_csv(out / "plan.csv", encoding="utf-8-sig", dtype={"plot_id": str})
    plan.loc[plan["action"] != "keep", "action"] = "keep"  # vacate nothing
    broken = tmp_path / "plan.csv"
    plan.to_csv(broken, index=False, encoding="utf-8-sig")
    r = runner.invoke(app, ["check", str(inst), str(broken)])
    assert r.exit_code == 1
    assert "violated: reduction total" in r.output
    assert "violated: priority farmland" in r.output


def test_bad_inputs_are_one_line_errors(solved: tuple[Path, Path], tmp_path: Path) -> None:
    inst, out = solved
    missing = tmp_path / "nope.gpkg"
    r = runner.invoke(app, ["solve", str(missing), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "nope.gpkg" in r.output and "Traceback" not in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[targets]\nfarmland = 1\n", encoding="utf-8")
    r = runner.invoke(app, ["check", str(inst), str(out / "plan.csv"), "--scenario", str(bad)])
    assert r.exit_code == 1 and "unknown key [targets] farmland" in r.output
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_impossible_scenario_is_explained_and_solved_elastic(tmp_path: Path) -> None:
    """Dongcheng lies wholly inside the central built-up area: no priority zones, so the 90%
    share cannot be met. solve names it, returns the best plan, exits 2; check exits 1."""
    inst = tmp_path / "dc.gpkg"
    r = runner.invoke(app, ["generate", "--district", "dongcheng", "--plots", "500", "--out",
                            str(inst)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["solve", str(inst), "--out", str(tmp_path / "p")])
    assert r.exit_code == 2, r.output
    assert "cannot be met: at most 0.0% of the vacated area in the central city" in r.output
    summary = json.loads((tmp_path / "p" / "summary.json").read_text(encoding="utf-8"))
    assert summary["elastic_mode"] and not summary["all_targets_met"]
    assert {f["target"] for f in summary["impossible_targets"]} >= {"central_priority_share"}
    r = runner.invoke(app, ["solve", str(inst), "--out", str(tmp_path / "q"), "--no-elastic"])
    assert r.exit_code == 3, r.output  # no plan: only the report of why is written
    assert not (tmp_path / "q" / "plan.csv").exists()
    refused = json.loads((tmp_path / "q" / "summary.json").read_text(encoding="utf-8"))
    assert refused["status"].startswith("no plan found") and refused["impossible_targets"]
    r = runner.invoke(app, ["check", str(inst), str(tmp_path / "p" / "plan.csv")])
    assert r.exit_code == 1 and "violated: vacated area in priority zones" in r.output
