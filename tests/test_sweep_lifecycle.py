"""A sweep's workers die with it; a bad instance or a bad Dask address is one line, exit 1,
before any scenario starts (issues 14 and 15)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from optimizer.cli import app
from tests.conftest import generated_instance

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
SLOW = '[compactness]\nweight = 50\nform = "boundary"\n[solver]\nmip_gap = 0\ntime_limit = 60\n'


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_instance(tmp_path_factory.mktemp("life") / "cy.gpkg", 800)


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def running(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_no_worker_outlives_its_sweep(instance: Path, tmp_path: Path, how: signal.Signals) -> None:
    base = tmp_path / "slow.toml"
    base.write_text(SLOW, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "optimizer", "sweep", str(instance), "--out", str(tmp_path / "sw"),
         "--base", str(base), "--grid", "compactness.weight=50,51,52,53", "--workers", "2"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    everyone: list[psutil.Process] = []
    try:
        workers: list[psutil.Process] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            # workers fork from the forkserver: the sweep's grandchildren
            workers = [p for p in running(descendants(proc.pid)) if p.ppid() != proc.pid]
            if len(workers) >= 2 and any(p.cpu_times().user > 0.5 for p in workers):
                break  # two workers, solving
            time.sleep(0.3)
        assert len(workers) >= 2, "the sweep never started its workers"
        everyone = descendants(proc.pid)
        os.kill(proc.pid, how)
        proc.wait(30)
        deadline = time.monotonic() + 5
        while running(everyone) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = running(everyone)
        assert not left, f"still running after the sweep ended: {[p.cmdline() for p in left]}"
    finally:  # never leave orphans behind, whatever the outcome
        for p in running(everyone + descendants(proc.pid)):
            p.kill()
        if proc.poll() is None:
            proc.kill()


def test_bad_instance_fails_before_any_scenario_even_with_dask(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gpkg"
    junk.write_text("not a geopackage", encoding="utf-8")
    r = runner.invoke(app, ["sweep", str(junk), "--out", str(tmp_path / "sw"),
                            "--grid", "solver.time_limit=5,6", "--scheduler", "tcp://127.0.0.1:9"])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and str(junk) in r.output
    assert not list((tmp_path / "sw").glob("*/*"))  # no scenario started


def test_malformed_dask_address_is_refused_at_once(instance: Path, tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = runner.invoke(app, ["sweep", str(instance), "--out", str(tmp_path / "sw"),
                            "--grid", "solver.time_limit=5,6", "--scheduler", "not a url"])
    assert r.exit_code == 1 and "not a Dask scheduler address" in r.output, r.output
    assert time.monotonic() - t0 < 5


def test_unreachable_dask_scheduler_is_one_line_within_the_stated_timeout(
        instance: Path, tmp_path: Path) -> None:
    from optimizer.batch.lifecycle import DASK_CONNECT_S

    t0 = time.monotonic()
    r = runner.invoke(app, ["sweep", str(instance), "--out", str(tmp_path / "sw"),
                            "--grid", "solver.time_limit=5,6", "--scheduler", "tcp://127.0.0.1:9"])
    took = time.monotonic() - t0
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert f"no Dask scheduler answered within {DASK_CONNECT_S:g} s" in r.output
    assert took < DASK_CONNECT_S + 20
