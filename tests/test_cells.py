"""Formula injection: no text cell of a CSV we write starts with = + - @ (or tab / CR), and the
readers undo the quoting so a plan round-trips (issue 14)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer.batch.compare import compare_plan_files
from optimizer.model.scenario import Scenario
from optimizer.plan.cells import neutralise, restore
from optimizer.plan.check import read_plan_actions
from optimizer.reporting.export import plan_table, write_csv
from tests.conftest import grid_instance

HOSTILE = ['=HYPERLINK("http://x","y")', "+1+2", "@SUM(1+2)", "=cmd|' /C calc'!A0", "-3",
           "\t=1", "\r=1", "'=already quoted", "ordinary", "'plain quote"]
RUNS = ("=", "+", "-", "@", "\t", "\r")


def cells(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [cell for row in csv.reader(f) for cell in row]


@pytest.mark.parametrize("text", HOSTILE)
def test_neutralise_then_restore_is_the_identity(text: str) -> None:
    quoted = neutralise(text)
    assert not str(quoted).startswith(RUNS)
    assert restore(quoted) == text


class _Plan:
    def __init__(self, actions: np.ndarray) -> None:
        self.actions = actions
        self.blocks = None


def hostile_instance(rng: np.random.Generator):
    inst = grid_instance(rng, 3, 4)
    n = inst.num_plots
    inst.plots["plot_id"] = [HOSTILE[k % len(HOSTILE)] + ("" if k < len(HOSTILE) else f"#{k}")
                             for k in range(n)]
    inst.plots["township"] = ["+1+2", "@SUM(1+2)"] * (n // 2)
    inst.plots["district"] = "=1+1"
    return inst


def test_plan_csv_has_no_formula_cells_and_round_trips(rng: np.random.Generator,
                                                       tmp_path: Path) -> None:
    inst = hostile_instance(rng)
    actions = np.tile(np.array([0, 1, 2], dtype=np.int8), inst.num_plots // 3)
    path = tmp_path / "plan.csv"
    write_csv(plan_table(inst, _Plan(actions)), path)
    bad = [c for c in cells(path) if c.startswith(RUNS) and not _is_number(c)]
    assert bad == []
    assert (read_plan_actions(path, inst.plots["plot_id"]) == actions).all()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_comparison_outputs_have_no_formula_cells(rng: np.random.Generator,
                                                  tmp_path: Path) -> None:
    inst = hostile_instance(rng)
    n = inst.num_plots
    a = np.zeros(n, dtype=np.int8)
    b = np.tile(np.array([0, 1, 2], dtype=np.int8), n // 3)
    pa, pb = tmp_path / "a.csv", tmp_path / "b.csv"
    write_csv(plan_table(inst, _Plan(a)), pa)
    write_csv(plan_table(inst, _Plan(b)), pb)
    cmp, paths = compare_plan_files(inst, Scenario(), pa, pb, tmp_path / "cmp")
    changed = cells(paths["changed"])
    assert not [c for c in changed if c.startswith(RUNS) and not _is_number(c)]
    table = pd.read_csv(paths["changed"], encoding="utf-8-sig", dtype=str)
    assert set(table["plot_id"].map(restore)) == set(cmp.changed["plot_id"])


def test_sweep_comparison_has_no_formula_cells(tmp_path: Path) -> None:
    from optimizer.batch.sweep import Job, Sweep, write_comparison

    jobs = [Job(name, f"s{k}_abcdef12", f"{k}" * 64, {"name_param": name}, None, "invalid")
            for k, name in enumerate(HOSTILE[:4])]
    sweep = Sweep(tmp_path / "i.gpkg", "fp", tmp_path, jobs, {})
    records = {j.folder: {"row": {"status": "failed"}, "error": "=1+1"} for j in jobs}
    path = write_comparison(sweep, records)
    assert not [c for c in cells(path) if c.startswith(RUNS) and not _is_number(c)]
    table = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    assert list(table["name"].map(restore)) == HOSTILE[:4]
