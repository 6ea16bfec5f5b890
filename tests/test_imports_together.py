"""Every solver library loads and solves in ONE process, in either import order.

Known trap: highspy >= 1.15 and ortools 9.15 both carry HiGHS symbols and crash when loaded
together, hence the highspy 1.14.0 pin. A crash kills the process, so each order runs in a fresh
interpreter and the test reads its exit status instead of dying with it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SOLVE_ALL = """
import numpy as np, scipy.sparse as sp
from solvers import ArrayModel, SolveOptions, get_backend
# max 5a + 4b + 3c, 2a + 3b + c <= 5, 4a + b + 2c <= 11, 3a + 4b + 2c <= 8, integers in [0, 10]
# optimum (2, 0, 1), value 13 (checked by hand: the LP optimum is 13 at the same point)
model = ArrayModel(
    c=-np.array([5.0, 4.0, 3.0]),
    A=sp.csr_matrix(np.array([[2.0, 3.0, 1.0], [4.0, 1.0, 2.0], [3.0, 4.0, 2.0]])),
    row_lower=np.full(3, -np.inf), row_upper=np.array([5.0, 11.0, 8.0]),
    col_lower=np.zeros(3), col_upper=np.full(3, 10.0), integrality=np.ones(3, bool),
)
for name in ("highs", "cbc", "cpsat", "scip"):
    r = get_backend(name).solve(model, SolveOptions(mip_gap=0.0))
    print(name, r.termination.value, round(r.objective, 6), r.x.round(6).tolist())
"""

ORDERS = {
    "highspy-first": "import highspy, ortools.sat.python.cp_model, pyscipopt, pulp",
    "ortools-first": "import ortools.sat.python.cp_model, pyscipopt, pulp, highspy",
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_all_solvers_in_one_process(order: str) -> None:
    code = ORDERS[order] + "\n" + SOLVE_ALL
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    lines = proc.stdout.split("\n")
    for name in ("highs", "cbc", "cpsat", "scip"):
        assert f"{name} optimal -13.0 [2.0, 0.0, 1.0]" in lines, proc.stdout


def test_pinned_highspy_is_below_the_clash() -> None:
    from importlib.metadata import version

    major, minor = (int(p) for p in version("highspy").split(".")[:2])
    assert (major, minor) < (1, 15), "highspy >= 1.15 crashes next to ortools 9.15"
