"""Scenario sweeps and frontiers: same plans as solving alone, resumable after a kill, failures
recorded, Dask gives what the local pool gives, frontier cost monotone in the farmland target."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import geopandas as gpd
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from instances.generator import generate
from instances.loader import load_instance
from optimizer.batch import specs as sweep_specs
from optimizer.batch import sweep as sw
from optimizer.batch.frontier import frontier_values
from optimizer.cli import app
from optimizer.model.scenario import Scenario, scenario_from_dict
from optimizer.model.targets import plot_rules
from optimizer.plan.check import read_plan_actions
from optimizer.plan.solve import solve_plan

ROOT = Path(__file__).resolve().parents[1]
BASE_TOML = """name = "t"
[objective]
output_years = {years}
[solver]
mip_gap = 1e-6
threads = 1
time_limit = 20.0
"""
CLI = ("import sys; sys.path.insert(0, sys.argv.pop(1)); sys.argv[0] = 'greenbelt'; "
       "from optimizer.cli import main; main()")


def shared_instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 500-plot instance per test session (test_compare uses the same file)."""
    path = tmp_path_factory.getbasetemp() / "shijingshan_500_1.gpkg"
    if not path.exists():
        generate("shijingshan", 500, 1, path)
    return path


@pytest.fixture(scope="module")
def instance_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_instance(tmp_path_factory)


@pytest.fixture(scope="module")
def inst(instance_file: Path):
    return load_instance(instance_file)


@pytest.fixture(scope="module")
def farmland_values(inst) -> list[float]:
    """Priority-farmland targets from easy to binding: existing farmland plus 10% / 40% / 60% of
    the most the candidates could add (the seed budget allows about 65% on this instance)."""
    rules = plot_rules(inst, Scenario())
    can_add = float((rules.area * rules.priority)[rules.candidate & rules.farmland_ok].sum())
    existing = inst.stats["farmland_in_priority_mu"]
    return [round(existing + f * can_add, 1) for f in (0.1, 0.4, 0.6)]


@pytest.fixture(scope="module")
def base_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("base") / "base.toml"
    path.write_text(BASE_TOML.format(years=5.0), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def grid(farmland_values: list[float]) -> list[str]:
    """2 x 2 = 4 scenarios with different plans."""
    lo, _, hi = farmland_values
    return [f"targets.priority_farmland_mu={lo},{hi}", "objective.output_years=0,5"]


def make_sweep(instance_file: Path, base_file: Path, grid: list[str], out: Path) -> sw.Sweep:
    specs = sw.specs_from_grid([sw.parse_grid(g) for g in grid], base_file)
    return sw.plan_sweep(instance_file, specs, out)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, instance_file, base_file, grid) -> sw.SweepReport:
    """The reference: an uninterrupted sweep on the local process pool (2 workers)."""
    out = tmp_path_factory.mktemp("clean")
    return sw.run_sweep(make_sweep(instance_file, base_file, grid, out), workers=2)


def without_times(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig").drop(columns=list(sw.TIME_COLUMNS))


def plan_bytes(report: sw.SweepReport) -> dict[str, bytes]:
    return {j.folder: (report.sweep.out / j.folder / "plan.csv").read_bytes()
            for j in report.sweep.jobs}


# ---------------------------------------------------------------- small pieces


def test_parse_grid_reads_toml_scalars_and_bare_words() -> None:
    assert sw.parse_grid("budget.wan_per_mu_of_target=100, 120.5,1e3") == (
        "budget.wan_per_mu_of_target", [100, 120.5, 1000.0])
    assert sw.parse_grid("targets.priority_farmland_mu=auto,5000") == (
        "targets.priority_farmland_mu", ["auto", 5000])
    assert sw.parse_grid('solver.backend="highs",cbc') == ("solver.backend", ["highs", "cbc"])
    assert sw.parse_grid("targets.conversion_balance=true,false")[1] == [True, False]
    for bad in ("budget.total_wan", "=1,2", "budget..x=1", "budget.total_wan="):
        with pytest.raises(sw.SweepError):
            sw.parse_grid(bad)


def test_grid_is_crossed_and_named(tmp_path: Path) -> None:
    base = tmp_path / "b.toml"
    base.write_text('name = "tight"\n[budget]\nwan_per_mu_of_target = 90.0\n')
    specs = sw.specs_from_grid([sw.parse_grid("targets.priority_farmland_mu=1,2,3"),
                                sw.parse_grid("solver.time_limit=5,9")], base, backend="cbc")
    assert len(specs) == 6
    assert {(s.params["targets.priority_farmland_mu"], s.params["solver.time_limit"])
            for s in specs} == {(a, b) for a in (1, 2, 3) for b in (5, 9)}
    s = scenario_from_dict(specs[-1].raw)
    assert (s.targets.priority_farmland_mu, s.solver.time_limit) == (3.0, 9.0)
    assert s.budget.wan_per_mu_of_target == 90.0 and s.solver.backend == "cbc"
    assert s.name == "tight priority_farmland_mu=3, time_limit=9"
    assert [x.label for x in specs] == [f"{i:03d}" for i in range(6)]


def test_scenario_toml_round_trips() -> None:
    s = Scenario(name='odd "name" 朝阳 \\ x')
    s.targets.township_reduction_mu = {"chaoyang-03": 800.0, "a b": 1.5}
    s.targets.plain_forest_coverage = 0.32
    s.budget.total_wan = 1e7
    s.elastic.penalty = 1.5e9  # inf is refused now (issue 14); an odd finite value instead
    data = s.to_dict()
    text = sw.to_toml(data)
    assert scenario_from_dict(tomllib.loads(text)).to_dict() == data
    assert "priority_block_mu" not in text  # None is left out and reads back as None


def test_fingerprint_and_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "inst.gpkg"
    data = bytearray(np.random.default_rng(1).bytes(3 * 2**20))
    f.write_bytes(bytes(data))
    fp = sw.instance_fingerprint(f)
    data[2**20 + 5] ^= 1  # a byte in the middle
    f.write_bytes(bytes(data))
    assert sw.instance_fingerprint(f) != fp  # small files: every byte counts
    monkeypatch.setattr(sweep_specs, "FULL_HASH_LIMIT", 2**20)
    big = sw.instance_fingerprint(f)
    data[2**20 + 5] ^= 1
    st = f.stat()
    f.write_bytes(bytes(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sw.instance_fingerprint(f) == big  # big files: the middle is not read ...
    data[-1] ^= 1
    f.write_bytes(bytes(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sw.instance_fingerprint(f) != big  # ... the last MiB is
    scen = Scenario().to_dict()
    k = sw.job_key(fp, scen, {"elastic": None})
    assert k == sw.job_key(fp, Scenario().to_dict(), {"elastic": None})
    assert k != sw.job_key(fp, scen, {"elastic": True})
    scen["budget"]["wan_per_mu_of_target"] = 151.0
    assert k != sw.job_key(fp, scen, {"elastic": None})


# ---------------------------------------------------------------- (a) same as solving alone


def test_sweep_gives_the_plans_of_solving_alone(clean_run: sw.SweepReport, inst) -> None:
    report = clean_run
    assert len(report.sweep.jobs) == 4 and not report.failed and not report.skipped
    table = pd.read_csv(report.comparison, encoding="utf-8-sig")
    assert list(table["folder"]) == [j.folder for j in report.sweep.jobs]
    ids = inst.plots["plot_id"]
    plans = set()
    for job, (_, row) in zip(report.sweep.jobs, table.iterrows(), strict=True):
        folder = report.sweep.out / job.folder
        assert job.folder.endswith("_" + job.key[:8]) and row["hash"] == job.key[:8]
        for name in (*sw.OUTPUTS, sw.DONE):
            assert (folder / name).is_file(), name
        alone = solve_plan(inst, scenario_from_dict(job.scenario))
        swept = read_plan_actions(folder / "plan.csv", ids)
        np.testing.assert_array_equal(swept, alone.actions)
        plans.add(swept.tobytes())
        r = alone.result
        assert row["status"] == ("met" if alone.all_met else "missed")
        assert row["termination"] == r.termination.value
        assert row["objective"] == pytest.approx(r.objective, rel=1e-12)
        assert row["gap"] == pytest.approx(r.gap, abs=1e-12)
        assert row["cost_wan"] == pytest.approx(alone.totals.cost_wan, rel=1e-12)
        assert row["farmland_mu"] == pytest.approx(alone.totals.farmland_mu, rel=1e-12)
        for c in alone.checks:
            col = c.key if c.scope == "all" else f"{c.key}[{c.scope}]"
            want = c.share_achieved if c.share_required is not None else c.achieved
            assert row[f"{col}.achieved"] == pytest.approx(want, rel=1e-12)
            assert bool(row[f"{col}.met"]) == c.met
        assert row["targets.priority_farmland_mu"] == job.params["targets.priority_farmland_mu"]
        resolved = scenario_from_dict(tomllib.loads((folder / "scenario.toml").read_text()))
        assert resolved.to_dict() == job.scenario
    assert len(plans) >= 3  # the grid really changes the plans


# ---------------------------------------------------------------- (b) killed and resumed


def _assert_complete_files(out: Path, plot_ids: pd.Series) -> None:
    """Every final (non-dot) file left behind parses completely."""
    for f in out.rglob("*"):
        if not f.is_file() or f.name.startswith("."):
            continue
        if f.suffix == ".json":
            json.loads(f.read_text(encoding="utf-8"))
        elif f.name == "plan.csv":
            read_plan_actions(f, plot_ids)
        elif f.suffix == ".csv":
            pd.read_csv(f, encoding="utf-8-sig")
        elif f.suffix == ".toml":
            scenario_from_dict(tomllib.loads(f.read_text(encoding="utf-8")))
        elif f.suffix == ".png":
            assert f.read_bytes()[-8:-4] == b"IEND"
            mpimg.imread(f)
        elif f.suffix == ".gpkg":
            assert len(gpd.read_file(f, layer="plan")) == len(plot_ids)
        elif f.suffix == ".xlsx":
            import openpyxl

            assert openpyxl.load_workbook(f, read_only=True).sheetnames
        elif f.suffix == ".html":
            assert f.read_text(encoding="utf-8").rstrip().endswith("</html>")
        else:
            raise AssertionError(f"unexpected file {f}")


def test_killed_sweep_resumes_to_the_same_results(
    tmp_path: Path, clean_run: sw.SweepReport, instance_file: Path, base_file: Path,
    grid: list[str], inst,
) -> None:
    out = tmp_path / "sweep"
    args = [sys.executable, "-c", CLI, str(ROOT), "sweep", str(instance_file), "--out", str(out),
            "--base", str(base_file), "--workers", "1"]
    for g in grid:
        args += ["--grid", g]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(out.glob(f"*/{sw.DONE}")):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = sorted(p.parent.name for p in out.glob(f"*/{sw.DONE}"))
    assert 1 <= len(done_before) < 4  # really interrupted
    _assert_complete_files(out, inst.plots["plot_id"])
    stamps = {f: [(out / f / n).stat().st_mtime_ns for n in (sw.DONE, "plan.csv")]
              for f in done_before}

    report = sw.run_sweep(make_sweep(instance_file, base_file, grid, out), workers=1)
    assert sorted(report.skipped) == done_before  # not solved again ...
    assert {f: [(out / f / n).stat().st_mtime_ns for n in (sw.DONE, "plan.csv")]
            for f in done_before} == stamps  # ... nor rewritten
    assert len(report.solved) == 4 - len(done_before) and not report.failed
    assert not [p for p in out.rglob(".*")]  # temp files of the killed run are gone
    pd.testing.assert_frame_equal(without_times(report.comparison),
                                  without_times(clean_run.comparison))
    assert plan_bytes(report) == plan_bytes(clean_run)
    again = sw.run_sweep(make_sweep(instance_file, base_file, grid, out), workers=1)
    assert len(again.skipped) == 4 and not again.solved


# ---------------------------------------------------------------- (c) failures


def test_failing_scenarios_are_recorded_and_others_complete(
    tmp_path: Path, instance_file: Path, base_file: Path, farmland_values: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lo, mid, _ = farmland_values
    crash_at = mid

    def flaky(inst, scenario, **kw):
        if scenario.targets.priority_farmland_mu == crash_at:
            raise RuntimeError("solver crashed")
        return solve_plan(inst, scenario, **kw)

    monkeypatch.setattr(sw, "solve_plan", flaky)
    grid = [f"targets.priority_farmland_mu={lo},-1,{mid}"]
    report = sw.run_sweep(make_sweep(instance_file, base_file, grid, tmp_path), workers=1)
    table = pd.read_csv(report.comparison, encoding="utf-8-sig")
    assert list(table["status"]) == ["met", "failed", "failed"]
    assert "must not be negative" in table["error"][1]
    assert table["error"][2] == "RuntimeError: solver crashed"
    assert pd.isna(table["error"][0])
    folders = [tmp_path / j.folder for j in report.sweep.jobs]
    assert (folders[0] / sw.DONE).is_file() and not (folders[0] / sw.ERROR).exists()
    for f in folders[1:]:
        assert (f / sw.ERROR).is_file() and not (f / sw.DONE).exists()
    recorded = json.loads((folders[2] / sw.ERROR).read_text())
    assert recorded["error"] == "RuntimeError: solver crashed" and "flaky" in recorded["traceback"]

    monkeypatch.setattr(sw, "solve_plan", solve_plan)  # the solver recovers: rerun retries
    again = sw.run_sweep(make_sweep(instance_file, base_file, grid, tmp_path), workers=1)
    assert again.skipped == [folders[0].name]
    assert sorted(again.solved) == sorted(f.name for f in folders[1:])
    assert list(pd.read_csv(again.comparison, encoding="utf-8-sig")["status"]) == [
        "met", "failed", "met"]
    assert not (folders[2] / sw.ERROR).exists()


# ---------------------------------------------------------------- (d) Dask


def test_dask_gives_the_local_pool_results(
    tmp_path: Path, clean_run: sw.SweepReport, instance_file: Path, base_file: Path,
    grid: list[str],
) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        report = sw.run_sweep(make_sweep(instance_file, base_file, grid, tmp_path),
                              scheduler=cluster.scheduler_address)
    assert len(report.solved) == 4 and not report.failed
    pd.testing.assert_frame_equal(without_times(report.comparison),
                                  without_times(clean_run.comparison))
    assert plan_bytes(report) == plan_bytes(clean_run)


# ---------------------------------------------------------------- (f) frontier


def test_frontier_cost_rises_with_the_farmland_target(
    tmp_path: Path, instance_file: Path, farmland_values: list[float],
) -> None:
    base = tmp_path / "cost_only.toml"
    base.write_text(BASE_TOML.format(years=0.0))  # objective = cost: the frontier is monotone
    lo, mid, hi = farmland_values
    out = tmp_path / "fr"
    result = CliRunner().invoke(app, [
        "frontier", str(instance_file), "--out", str(out), "--vary",
        "targets.priority_farmland_mu", "--values", f"{hi},{lo},{mid}", "--measure", "cost",
        "--base", str(base), "--workers", "1"])
    assert result.exit_code == 0, result.output
    paths = {"csv": out / "frontier.csv", "png": out / "frontier.png"}
    saved = pd.read_csv(paths["csv"], encoding="utf-8-sig")
    assert list(saved["value"]) == [lo, mid, hi]
    assert (saved["termination"] == "optimal").all() and saved["met"].all()
    cost, bound = saved["measure"].to_numpy(), saved["bound"].to_numpy()
    # OPT is non-decreasing in the target; bound_i <= OPT_i <= OPT_j <= cost_j for i < j.
    assert (np.diff(cost) >= -1e-6 * cost[1:]).all()
    assert (cost[1:] >= bound[:-1] - 1e-6 * cost[1:]).all()
    assert cost[-1] > cost[0] * (1 + 1e-6)  # the highest target binds
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert frontier_values(None, 10, 20, 3) == [10.0, 15.0, 20.0]
    with pytest.raises(sw.SweepError):
        frontier_values("1,x")


def test_bad_sweep_input_is_one_line(tmp_path: Path, instance_file: Path) -> None:
    runner = CliRunner()
    for args, message in (
        (["--grid", "budget.total_wan"], "expected section.key=value1,value2"),
        (["--scenarios", str(tmp_path / "nope.toml")], "scenario file not found"),
        (["--scenarios", str(tmp_path / "a.toml"), "--grid", "budget.total_wan=1"], "not both"),
        ([], "nothing to sweep"),
    ):
        result = runner.invoke(app, ["sweep", str(instance_file), "--out", str(tmp_path), *args])
        assert result.exit_code == 1 and message in result.output, result.output
    assert not list(tmp_path.iterdir())  # nothing written
