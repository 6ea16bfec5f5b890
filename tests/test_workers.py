"""`[contiguity] workers`: 0 resolves to a pool only for large models, and a pool is never started
where its workers would re-run the caller's script (no __main__ guard)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import optimizer.blocks.neighbourhood as nb
from optimizer.model.scenario import Scenario, ScenarioError, validate

ROOT = Path(__file__).resolve().parents[1]


def test_auto_workers_pool_only_from_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert nb.auto_workers(0, nb.AUTO_POOL_CANDIDATES - 1) == 1
    assert nb.auto_workers(0, nb.AUTO_POOL_CANDIDATES) == nb.AUTO_POOL_MAX
    assert nb.auto_workers(3, 10) == 3  # an explicit count is kept
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert nb.auto_workers(0, 10 * nb.AUTO_POOL_CANDIDATES) == 2


def test_negative_workers_is_refused() -> None:
    s = Scenario()
    s.contiguity.workers = -1
    with pytest.raises(ScenarioError, match="workers"):
        validate(s)


def _runner_in_script(tmp_path: Path, name: str, body: str) -> list[str]:
    """Run `body` as a script of its own; its printed words."""
    script = tmp_path / name
    script.write_text("from optimizer.blocks.neighbourhood import Runner\n" + textwrap.dedent(body),
                      encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_a_script_without_main_guard_gets_no_pool(tmp_path: Path) -> None:
    # each forkserver worker would import the script again (and start its own pool): the
    # Runner must solve in this process instead of crashing
    assert _runner_in_script(tmp_path, "unguarded.py", """
        with Runner(2) as r:
            print("pool" if r._pool is not None else "here", r.workers)
    """) == ["here", "1"]
    assert _runner_in_script(tmp_path, "guarded.py", """
        if __name__ == "__main__":
            with Runner(2) as r:
                print("pool" if r._pool is not None else "here", r.workers)
    """) == ["pool", "2"]
