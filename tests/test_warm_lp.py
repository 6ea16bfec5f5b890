"""WarmLP (rows appended, warm re-solves) against a cold solve of the same LP every round."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from solvers import WarmLP, get_backend
from solvers.base import SolveOptions
from solvers.model import ArrayModel
from solvers.result import Termination


@pytest.mark.parametrize("seed", range(6))
def test_warm_rounds_match_cold_solves(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = 12, 5
    model = ArrayModel(c=rng.normal(0, 1, n), A=sp.random(m, n, 0.5, "csr", random_state=seed),
                       row_lower=np.full(m, -np.inf), row_upper=rng.uniform(1, 3, m),
                       col_lower=np.zeros(n), col_upper=np.ones(n),
                       integrality=np.ones(n, bool), offset=1.5)
    warm = WarmLP(model)
    cold = replace(model, integrality=np.zeros(n, bool))
    for _ in range(4):
        sol = warm.solve(10.0)
        ref = get_backend("highs").solve(cold, SolveOptions())
        assert sol.termination is Termination.OPTIMAL and sol.x is not None
        assert sol.objective == pytest.approx(ref.objective, abs=1e-7)
        assert cold.max_violation(sol.x) <= 1e-7
        rows = sp.random(2, n, 0.6, "csr", random_state=rng.integers(1 << 30))
        upper = np.maximum(rows @ sol.x - 0.1, 0.0)  # cuts the optimum off; x = 0 stays
        warm.add_rows(rows, np.full(2, -np.inf), upper)
        cold = cold.add_rows(rows, np.full(2, -np.inf), upper)
    assert warm.num_rows == cold.num_rows


def test_an_infeasible_round_and_a_wrong_width_are_reported() -> None:
    model = ArrayModel(c=np.ones(2), A=sp.csr_matrix(np.ones((1, 2))), row_lower=np.array([1.0]),
                       row_upper=np.array([2.0]), col_lower=np.zeros(2), col_upper=np.ones(2),
                       integrality=np.zeros(2, bool))
    lp = WarmLP(model)
    assert lp.solve().termination is Termination.OPTIMAL
    with pytest.raises(ValueError, match="3 columns, the LP 2"):
        lp.add_rows(sp.csr_matrix(np.ones((1, 3))), np.zeros(1), np.ones(1))
    lp.add_rows(sp.csr_matrix(np.ones((1, 2))), np.array([-np.inf]), np.array([0.5]))
    assert lp.solve().termination is Termination.INFEASIBLE


def test_a_warm_lp_after_a_solve_with_other_threads() -> None:
    """HiGHS keeps one global scheduler per process: a WarmLP (one thread) made after a
    back-end solve with two threads once failed every run (found in the full suite)."""
    model = ArrayModel(c=-np.ones(3), A=sp.csr_matrix(np.ones((1, 3))), row_lower=np.zeros(1),
                       row_upper=np.array([2.0]), col_lower=np.zeros(3), col_upper=np.ones(3),
                       integrality=np.ones(3, bool))
    assert get_backend("highs").solve(model, SolveOptions(threads=2)).objective == -2.0
    sol = WarmLP(model).solve(10.0)
    assert sol.termination is Termination.OPTIMAL and sol.objective == pytest.approx(-2.0)


def test_deleted_rows_leave_the_lp_as_if_never_added() -> None:
    rng = np.random.default_rng(7)
    n = 8
    model = ArrayModel(c=rng.normal(0, 1, n), A=sp.csr_matrix((0, n)), row_lower=np.zeros(0),
                       row_upper=np.zeros(0), col_lower=np.zeros(n), col_upper=np.ones(n),
                       integrality=np.zeros(n, bool))
    keep = sp.random(3, n, 0.7, "csr", random_state=1)
    drop = sp.random(2, n, 0.7, "csr", random_state=2)
    lp = WarmLP(model)
    lp.add_rows(keep, np.full(3, -np.inf), np.full(3, 0.5))
    lp.add_rows(drop, np.full(2, -np.inf), np.full(2, 0.1))
    both = lp.solve()
    assert lp.row_activity() == pytest.approx(sp.vstack([keep, drop]) @ both.x, abs=1e-9)
    lp.delete_rows(np.array([3, 4]))
    assert lp.num_rows == 3
    ref = get_backend("highs").solve(model.add_rows(keep, np.full(3, -np.inf), np.full(3, 0.5)),
                                     SolveOptions())
    assert lp.solve().objective == pytest.approx(ref.objective, abs=1e-7)
    assert both.objective >= ref.objective - 1e-9


def test_delete_slack_removes_only_the_rows_not_binding() -> None:
    """min -x0 - x1, x in [0, 1]: the row x0 + x1 <= 1 binds, x0 - x1 <= 5 cannot."""
    model = ArrayModel(c=-np.ones(2), A=sp.csr_matrix((0, 2)), row_lower=np.zeros(0),
                       row_upper=np.zeros(0), col_lower=np.zeros(2), col_upper=np.ones(2),
                       integrality=np.zeros(2, bool))
    lp = WarmLP(model)
    lp.add_rows(sp.csr_matrix(np.array([[1.0, -1.0], [1.0, 1.0]])), -np.inf, [5.0, 1.0])
    assert lp.solve().objective == pytest.approx(-1.0)
    assert lp.delete_slack(0, 1e-6) == 1 and lp.num_rows == 1
    assert lp.solve().objective == pytest.approx(-1.0)
    lp.add_rows(sp.csr_matrix(np.array([[1.0, 0.0]])), -np.inf, 0.0)  # the kept row is x0 + x1
    assert lp.solve().x == pytest.approx([0.0, 1.0])
