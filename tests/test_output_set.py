"""The output folder: checked before any work, written as a set. A run killed at any moment
leaves the complete previous set, the complete new set, or a set marked incomplete that `check`
and `compare` refuse (issue 14); stale temporary files are removed by the next run (issue 15)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import optimizer.reporting.export as export
from instances.loader import load_instance
from optimizer.cli import app
from optimizer.model.scenario import Scenario
from optimizer.plan.solve import solve_plan
from solvers.result import Result, Termination
from tests.conftest import generated_instance

MARKER, MANIFEST = "outputs.incomplete", "outputs.json"  # documented in the README
ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_instance(tmp_path_factory.mktemp("set") / "cy.gpkg", 600, seed=5)


def one_line(output: str, *fragments: str) -> None:
    """One error line (progress lines of the work done before it aside), no traceback."""
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and output.rstrip().endswith(errors[0].rstrip()), output
    for f in fragments:
        assert f in output, (f, output)


def complete(folder: Path) -> bool:
    """A complete set: no marker, a manifest whose every file exists with its hash."""
    if (folder / MARKER).exists() or not (folder / MANIFEST).exists():
        return False
    files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    return all(hashlib.sha256((folder / n).read_bytes()).hexdigest() == h
               for n, h in files.items())


# ---------------------------------------------------------------- the folder, before any work


def bad_out_folders(tmp_path: Path) -> list[tuple[Path, str]]:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return [(a_file, "is a file"), (a_file / "below" / "deeper", "which is a file"),
            (Path("/proc/self/greenbelt-out"), "not writable")]


@pytest.mark.parametrize("command", ["solve", "sweep", "compare", "frontier"])
def test_bad_output_folder_is_one_line_before_any_work(
        instance: Path, tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("work started before the output folder was checked")

    monkeypatch.setattr("optimizer.plan.solve.solve_plan", no_work)
    monkeypatch.setattr("instances.loader.load_instance", no_work)
    plan = tmp_path / "plan.csv"
    plan.write_text("plot_id,action\n", encoding="utf-8")
    for out, fragment in bad_out_folders(tmp_path):
        args = {"solve": ["solve", str(instance)],
                "sweep": ["sweep", str(instance), "--grid", "solver.time_limit=5,6"],
                "compare": ["compare", str(instance), str(plan), str(plan)],
                "frontier": ["frontier", str(instance), "--vary", "budget.total_wan",
                             "--values", "1e5,2e5"]}[command]
        r = runner.invoke(app, [*args, "--out", str(out)])
        assert r.exit_code == 1, r.output
        one_line(r.output, str(out), fragment)


def test_generate_out_is_a_file_not_a_folder(tmp_path: Path) -> None:
    r = runner.invoke(app, ["generate", "--plots", "500", "--out", str(tmp_path)])
    assert r.exit_code == 1
    one_line(r.output, str(tmp_path), "is a folder")
    blocker = tmp_path / "f"
    blocker.write_text("x")
    r = runner.invoke(app, ["generate", "--plots", "500", "--out", str(blocker / "i.gpkg")])
    assert r.exit_code == 1
    one_line(r.output, str(blocker / "i.gpkg"), "is a file")


# ---------------------------------------------------------------- the set


@pytest.fixture(scope="module")
def solved(instance: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("solved") / "run"
    r = runner.invoke(app, ["solve", str(instance), "--out", str(out), "--time-limit", "60"])
    assert r.exit_code == 0, r.output
    assert complete(out)
    return out


STEPS = ["write_csv", "write_json", "write_gpkg", "draw_plan_map", "finish_set"]


@pytest.mark.parametrize("step", STEPS)
def test_a_run_stopped_between_files_is_marked_and_refused(
        instance: Path, solved: Path, tmp_path: Path, step: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure injected at each step of writing (as a kill there would): the folder is marked
    incomplete and check / compare refuse it in one line; the next run completes the set."""
    out = tmp_path / "run"
    r = runner.invoke(app, ["solve", str(instance), "--out", str(out), "--time-limit", "60"])
    assert r.exit_code == 0 and complete(out)

    class Killed(BaseException):
        pass

    def die(*args: object, **kwargs: object) -> None:
        raise Killed

    target = "optimizer.reporting.maps" if step == "draw_plan_map" else "optimizer.reporting.export"
    monkeypatch.setattr(f"{target}.{step}", die)
    inst = load_instance(instance)
    plan = solve_plan(inst, Scenario(), time_limit=60)
    with pytest.raises(Killed):
        export.write_outputs(inst, plan, out)
    monkeypatch.undo()
    assert (out / MARKER).exists() and not complete(out)
    r = runner.invoke(app, ["check", str(instance), str(out / "plan.csv")])
    assert r.exit_code == 1
    one_line(r.output, MARKER, "interrupted")
    r = runner.invoke(app, ["compare", str(instance), str(solved / "plan.csv"),
                            str(out / "plan.csv"), "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 1
    one_line(r.output, MARKER)
    export.write_outputs(inst, plan, out)
    assert complete(out)
    r = runner.invoke(app, ["check", str(instance), str(out / "plan.csv")])
    assert r.exit_code == 0, r.output


def test_disk_full_while_writing_is_one_line(instance: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("optimizer.reporting.export.write_gpkg", full)
    out = tmp_path / "run"
    r = runner.invoke(app, ["solve", str(instance), "--out", str(out), "--time-limit", "60"])
    assert r.exit_code == 1
    one_line(r.output, str(out), "No space left on device", "marked incomplete")
    assert (out / MARKER).exists()


def test_a_run_without_a_plan_leaves_no_plan_of_an_earlier_run(
        instance: Path, solved: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    for name in ("plan.csv", "summary.json", "plan.gpkg", "map.png"):
        out.mkdir(exist_ok=True)
        (out / name).write_bytes((solved / name).read_bytes())
    inst = load_instance(instance)
    plan = solve_plan(inst, Scenario(), time_limit=60)
    none = replace(plan, result=Result("highs", Termination.INFEASIBLE, False))
    export.write_outputs(inst, none, out)
    assert complete(out)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "summary.json"]


KILLABLE = """
import os, sys, time
from pathlib import Path
import optimizer.reporting.export as export

def stall(*args, **kwargs):
    Path(os.environ["GREENBELT_TEST_READY"]).write_text("writing")
    time.sleep(300)

export.write_gpkg = stall  # plan.csv and summary.json are written, plan.gpkg never
from optimizer.cli import app
app(prog_name="greenbelt")
"""


def test_kill_9_while_writing(instance: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = runner.invoke(app, ["solve", str(instance), "--out", str(out), "--time-limit", "60"])
    assert r.exit_code == 0 and complete(out)
    before = (out / "summary.json").read_bytes()
    (out / ".plan.gpkg.stale1.gpkg").write_bytes(b"left by a killed run")
    (out / ".summary.json.stale2.json").write_bytes(b"{")
    script, ready = tmp_path / "killable.py", tmp_path / "ready"
    script.write_text(KILLABLE, encoding="utf-8")
    scenario = tmp_path / "other.toml"
    scenario.write_text("[objective]\ncost_weight = 0.5\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GREENBELT_TEST_READY": str(ready)}
    proc = subprocess.Popen([sys.executable, str(script), "solve", str(instance), "--out",
                             str(out), "--scenario", str(scenario), "--time-limit", "60"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.exists(), "the run never reached its outputs"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not list(out.glob(".*.stale*"))  # the killed run's preparation removed them
    assert (out / "summary.json").read_bytes() != before  # a mixed set on disk...
    assert (out / MARKER).exists()  # ...marked as such
    r = runner.invoke(app, ["check", str(instance), str(out / "plan.csv")])
    assert r.exit_code == 1
    one_line(r.output, "interrupted")


def test_a_sweep_does_not_trust_a_folder_marked_incomplete(tmp_path: Path) -> None:
    from optimizer.batch.sweep import DONE, OUTPUTS, read_done

    for name in OUTPUTS:
        (tmp_path / name).write_text("x", encoding="utf-8")
    (tmp_path / DONE).write_text(json.dumps({"key": "k", "row": {"status": "met"}}),
                                 encoding="utf-8")
    assert read_done(tmp_path, "k") is not None
    (tmp_path / MARKER).write_text("a later attempt was killed", encoding="utf-8")
    assert read_done(tmp_path, "k") is None
