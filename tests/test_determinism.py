"""Same input twice: the same plan.csv and the same summary.json apart from its timings
(issue 14: the rounds log carried wall-clock seconds)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from optimizer.cli import app
from tests.conftest import generated_instance

runner = CliRunner()
TIMING_FIELDS = ("timings",)  # plus solver.build_s / solver.solve_s (documented in the README)


def without_timings(summary: dict) -> dict:
    out = {k: v for k, v in summary.items() if k not in TIMING_FIELDS}
    out["solver"] = {k: v for k, v in out["solver"].items() if k not in ("build_s", "solve_s")}
    return out


def test_same_input_same_summary(tmp_path: Path) -> None:
    inst = generated_instance(tmp_path / "cy.gpkg", 800)
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        r = runner.invoke(app, ["solve", str(inst), "--out", str(out), "--time-limit", "120"])
        assert r.exit_code == 0, r.output
        runs.append((json.loads((out / "summary.json").read_text(encoding="utf-8")),
                     (out / "plan.csv").read_bytes()))
    (a, plan_a), (b, plan_b) = runs
    assert plan_a == plan_b
    assert a["rounds"], "the test needs a run with a rounds log"
    assert without_timings(a) == without_timings(b)
    assert len(a["timings"]["rounds_s"]) == len(a["rounds"])
