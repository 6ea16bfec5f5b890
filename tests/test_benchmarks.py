"""Smoke test of the benchmark machinery on a tiny instance: workers in subprocesses, rows in the
CSV with sane fields, a crashing case still gives a row, and the PuLP baseline builds the same
model as the arrays (same optimum). No timings are asserted."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks.pulp_baseline import build_pulp
from benchmarks.run import Case, Series, instance_file
from solvers.base import SolveOptions
from solvers.highs import HighsBackend
from solvers.model import ArrayModel


@pytest.fixture(scope="module")
def series_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, str]], Path]:
    cache = tmp_path_factory.mktemp("cache")
    instance_file("fengtai", 500, 1, cache)
    out = cache / "res" / "results.csv"
    series = Series(out)
    base = Case("fengtai", 500, time_limit=20.0, cache=str(cache))
    series.run(Case(**{**base.__dict__, "kind": "pulp", "method": "pulp", "backend": "pulp"}))
    series.run(Case(**{**base.__dict__, "trace": True}))
    series.run(Case(**{**base.__dict__, "scenario": "contiguity", "method": "rowgen"}))
    series.run(Case(**{**base.__dict__, "backend": "nosuchsolver"}))
    with out.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh)), out


def test_rows_written_with_sane_fields(series_rows: tuple[list[dict[str, str]], Path]) -> None:
    rows, _ = series_rows
    assert [r["scenario"] for r in rows] == ["targets", "targets", "contiguity", "targets"]
    assert len({r["run_id"] for r in rows}) == 1
    for r in rows[1:3]:
        assert r["plots"] == "500" and r["instance"] == "fengtai_500"
        assert r["termination"] in ("optimal", "time_limit")
        assert r["has_solution"] == "True"
        assert int(r["candidates"]) > 0 and int(r["rows"]) > 0
        assert int(r["columns"]) >= 2 * int(r["candidates"])  # f and g per candidate
        assert int(r["nonzeros"]) >= int(r["columns"])
        assert 0.0 <= float(r["gap"]) <= 1.0
        assert float(r["bound"]) <= float(r["objective"]) * (1 + 1e-9)
        assert float(r["peak_mem_mb"]) > 0 and float(r["solve_s"]) > 0
        assert 0 < float(r["solve_peak_mb"]) <= float(r["peak_mem_mb"]) + 1
    assert rows[1]["method_used"] == "mip"
    assert rows[2]["method_used"].startswith("rowgen")


def test_pulp_row_and_crash_row(series_rows: tuple[list[dict[str, str]], Path]) -> None:
    rows, _ = series_rows
    pulp = rows[0]
    assert pulp["termination"] == "built"
    assert float(pulp["pulp_build_s"]) > 0 and float(pulp["array_build_s"]) > 0
    assert pulp["columns"] == rows[1]["columns"]  # same model as the targets run
    crash = rows[3]
    assert crash["termination"] == "crashed"
    assert "nosuchsolver" in crash["error"]
    assert crash["objective"] == ""


def test_trace_file_matches_run(series_rows: tuple[list[dict[str, str]], Path]) -> None:
    rows, out = series_rows
    traces = out.with_name("results_traces.csv")
    if traces.exists():  # a root-node solve may report no interrupt at all
        with traces.open(encoding="utf-8") as fh:
            points = list(csv.DictReader(fh))
        assert {p["run_id"] for p in points} == {rows[0]["run_id"]}
        t = [float(p["t"]) for p in points]
        assert t == sorted(t)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_pulp_baseline_is_the_same_model() -> None:
    """Independent truth: CBC on the PuLP objects and HiGHS on the arrays agree on the optimum
    of a small model with every row kind (>=, <=, ranged, equality) and integer columns."""
    rng = np.random.default_rng(3)
    n, m = 12, 7
    A = sp.random(m, n, density=0.5, random_state=4, format="csr") * 10
    lo = np.array([1.0, -np.inf, 2.0, 3.0, -np.inf, 0.5, 1.0])
    up = np.array([np.inf, 8.0, 9.0, 3.0, 6.0, np.inf, 12.0])
    model = ArrayModel(c=rng.uniform(-3, 5, n), A=A, row_lower=lo, row_upper=up,
                       col_lower=np.zeros(n), col_upper=np.full(n, 3.0),
                       integrality=np.arange(n) % 2 == 0)
    highs = HighsBackend().solve(model, SolveOptions(mip_gap=0.0))
    prob, built = build_pulp(model)
    assert built.variables == n and built.constraints == 9  # ranged rows count twice
    import pulp

    assert highs.termination.value == "optimal"
    prob.solve(pulp.PULP_CBC_CMD(msg=False, gapRel=0.0))
    assert pulp.LpStatus[prob.status] == "Optimal"
    assert pulp.value(prob.objective) == pytest.approx(highs.objective, rel=1e-6, abs=1e-6)
