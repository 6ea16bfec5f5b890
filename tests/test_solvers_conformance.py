"""One conformance suite for every back-end (after PuLP's solver_common.py).

Truth is independent of the solvers: brute-force enumeration of all 2^n binary points (with the
single continuous column solved in closed form), planted solutions, and hand-built models.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from solvers import (
    BACKENDS,
    CAPABILITIES,
    ArrayModel,
    Backend,
    CpSatBackend,
    Cuts,
    ScipBackend,
    SolveOptions,
    Termination,
    get_backend,
)

NAMES = sorted(BACKENDS)
EXACT = SolveOptions(mip_gap=0.0, time_limit=20.0)


@pytest.fixture(params=NAMES)
def backend(request: pytest.FixtureRequest) -> Backend:
    return get_backend(request.param)


# ---------------------------------------------------------------- instances and brute force


def random_mip(seed: int, n: int = 10, continuous: bool = False) -> ArrayModel:
    """Binary MIP with knapsack, cover, equality and ranged rows, feasible by construction
    (rows are built around a random point). Coefficients have 2 decimals. With ``continuous``, a
    column y in [0, 6] (coefficients +-1) joins two rows and has a negative cost, so its optimum
    sits on a row bound and is a 2-decimal number."""
    rng = np.random.default_rng(seed)
    x0 = (rng.random(n) < 0.5).astype(float)
    rows, lo, hi = [], [], []
    for _ in range(2):  # knapsack rows
        w = rng.integers(100, 2000, n) / 100
        rows.append(w)
        lo.append(-np.inf)
        hi.append(max(w @ x0, 0.4 * w.sum()))
    cover = (rng.random(n) < 0.5).astype(float)
    rows.append(cover)
    lo.append(min(2.0, cover @ x0))
    hi.append(np.inf)
    eq = (rng.random(n) < 0.4).astype(float)
    rows.append(eq)
    lo.append(eq @ x0)
    hi.append(eq @ x0)
    ranged = rng.integers(-300, 300, n) / 100
    rows.append(ranged)
    lo.append(ranged @ x0 - 1.5)
    hi.append(ranged @ x0 + 2.25)
    A = np.array(rows)
    c = rng.integers(-1500, 1000, n) / 100
    col_lower, col_upper, integrality = np.zeros(n), np.ones(n), np.ones(n, bool)
    if continuous:
        # y <= 1.5 + a.x  and  y - b.x >= -4: y is pulled up by its cost to min(6, 1.5 + a.x)
        a = rng.integers(0, 300, n) / 100
        b = rng.integers(0, 200, n) / 100
        link = np.zeros((2, n + 1))
        link[0, :n], link[0, n] = -a, 1.0
        link[1, :n], link[1, n] = -b, 1.0
        A = np.vstack([np.hstack([A, np.zeros((A.shape[0], 1))]), link])
        lo += [-np.inf, -4.0]
        hi += [1.5, np.inf]
        c = np.append(c, -2.5)
        col_lower, col_upper = np.append(col_lower, 0.0), np.append(col_upper, 6.0)
        integrality = np.append(integrality, False)
    model = ArrayModel(
        c=c,
        A=sp.csr_matrix(A),
        row_lower=np.array(lo),
        row_upper=np.array(hi),
        col_lower=col_lower,
        col_upper=col_upper,
        integrality=integrality,
        offset=3.5,
    )
    model.validate()
    return model


def brute_force(model: ArrayModel) -> tuple[float | None, np.ndarray | None]:
    """Optimum over all binary points; a single continuous column (the last) in closed form."""
    cont = np.flatnonzero(~model.integrality)
    assert cont.size <= 1 and (cont.size == 0 or cont[0] == model.num_cols - 1)
    nb = model.num_cols - cont.size
    X = np.array(list(itertools.product([0.0, 1.0], repeat=nb)))
    A = model.A.toarray()
    act = X @ A[:, :nb].T
    if cont.size == 0:
        feas = np.all((act >= model.row_lower - 1e-9) & (act <= model.row_upper + 1e-9), axis=1)
        obj = X @ model.c + model.offset
        full = X
    else:
        col = A[:, -1]
        y_lo = np.full(X.shape[0], model.col_lower[-1])
        y_hi = np.full(X.shape[0], model.col_upper[-1])
        fixed = np.all(
            (act[:, col == 0] >= model.row_lower[col == 0] - 1e-9)
            & (act[:, col == 0] <= model.row_upper[col == 0] + 1e-9),
            axis=1,
        )
        for i in np.flatnonzero(col):  # lo_i <= act + col_i * y <= hi_i
            bounds = np.sort(
                np.stack([(model.row_lower[i] - act[:, i]), (model.row_upper[i] - act[:, i])])
                / col[i],
                axis=0,
            )
            y_lo = np.maximum(y_lo, bounds[0])
            y_hi = np.minimum(y_hi, bounds[1])
        feas = fixed & (y_lo <= y_hi + 1e-9)
        y = np.where(model.c[-1] < 0, y_hi, y_lo)
        full = np.hstack([X, y[:, None]])
        obj = full @ model.c + model.offset
    if not feas.any():
        return None, None
    best = int(np.argmin(np.where(feas, obj, np.inf)))
    return float(obj[best]), full[best]


def hard_knapsack(seed: int = 7, n: int = 150, dims: int = 10) -> ArrayModel:
    """Random multi-dimensional knapsack, far from solvable in a second by any back-end."""
    rng = np.random.default_rng(seed)
    W = rng.integers(10, 1000, (dims, n)).astype(float)
    value = W.mean(axis=0) + rng.integers(0, 100, n)
    return ArrayModel(
        c=-value,
        A=sp.csr_matrix(W),
        row_lower=np.full(dims, -np.inf),
        row_upper=W.sum(axis=1) / 2,
        col_lower=np.zeros(n),
        col_upper=np.ones(n),
        integrality=np.ones(n, bool),
    )


def market_split(seed: int = 0, m: int = 4, n: int = 30) -> tuple[ArrayModel, np.ndarray]:
    """Market-split equalities with a planted solution: no back-end finds a feasible point in
    a fraction of a second on its own, so a solution there means the warm start was used."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 100, (m, n)).astype(float)
    x0 = (rng.random(n) < 0.5).astype(float)
    model = ArrayModel(
        c=rng.integers(1, 20, n).astype(float),
        A=sp.csr_matrix(a),
        row_lower=a @ x0,
        row_upper=a @ x0,
        col_lower=np.zeros(n),
        col_upper=np.ones(n),
        integrality=np.ones(n, bool),
    )
    return model, x0


def assert_consistent(model: ArrayModel, result: object) -> None:
    """Invariants of every Result that has a solution."""
    from solvers import Result

    assert isinstance(result, Result)
    assert result.has_solution and result.x is not None and result.objective is not None
    assert model.max_violation(result.x) <= 1e-6
    assert result.objective == pytest.approx(model.objective_value(result.x), abs=1e-9)
    if result.bound is not None:
        assert result.bound <= result.objective + 1e-6 * max(1.0, abs(result.objective))
        assert result.gap == pytest.approx(
            abs(result.objective - result.bound) / max(abs(result.objective), 1e-9)
        )


# ---------------------------------------------------------------- (a) optimum vs brute force


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("continuous", [False, True])
def test_optimum_matches_brute_force(backend: Backend, seed: int, continuous: bool) -> None:
    # CP-SAT lacks "continuous" but its 0.01 grid holds this column's 2-decimal optimum exactly
    model = random_mip(seed, continuous=continuous)
    best, _ = brute_force(model)
    assert best is not None
    result = backend.solve(model, EXACT)
    assert result.termination == Termination.OPTIMAL
    assert_consistent(model, result)
    assert result.objective == pytest.approx(best, abs=1e-6)
    if "continuous" in backend.capabilities or not continuous:
        assert result.gap is not None and result.gap <= 1e-6
    else:  # CP-SAT's bound holds for its grid model only: it says so instead of giving one
        assert result.bound is None and result.stats["bound_valid"] == 0.0


def test_brute_force_is_not_trivial() -> None:
    # the rows must bind, or (a) would test nothing: the unconstrained optimum is infeasible
    for seed in range(4):
        model = random_mip(seed)
        _, x = brute_force(model)
        free = (model.c < 0).astype(float)
        assert x is not None and not np.array_equal(x, free)


def test_lp_vertex(backend: Backend) -> None:
    # max x + y, x + 2y <= 4, 3x + y <= 6, x, y >= 0: the vertex (8/5, 6/5), value 14/5
    model = ArrayModel(
        c=np.array([-1.0, -1.0]), A=sp.csr_matrix(np.array([[1.0, 2.0], [3.0, 1.0]])),
        row_lower=np.full(2, -np.inf), row_upper=np.array([4.0, 6.0]),
        col_lower=np.zeros(2), col_upper=np.full(2, np.inf), integrality=np.zeros(2, bool),
        offset=1.0,
    )
    result = backend.solve(model, EXACT)
    assert result.termination == Termination.OPTIMAL
    assert_consistent(model, result)
    np.testing.assert_allclose(result.x, [1.6, 1.2], atol=1e-6)
    assert result.objective == pytest.approx(1.0 - 2.8, abs=1e-6)


# ---------------------------------------------------------------- (b) infeasibility


def _infeasible_models() -> list[ArrayModel]:
    n = 6
    ones = np.ones((1, n))
    # sum x >= 4 and sum x <= 3: LP-infeasible
    lp_infeasible = ArrayModel(
        c=np.ones(n), A=sp.csr_matrix(np.vstack([ones, ones])),
        row_lower=np.array([4.0, -np.inf]), row_upper=np.array([np.inf, 3.0]),
        col_lower=np.zeros(n), col_upper=np.ones(n), integrality=np.ones(n, bool),
    )
    # 2 x0 + 2 x1 + 2 x2 = 3: LP-feasible, no integer point
    parity = ArrayModel(
        c=-np.arange(1.0, 4.0), A=sp.csr_matrix(np.array([[2.0, 2.0, 2.0]])),
        row_lower=np.array([3.0]), row_upper=np.array([3.0]),
        col_lower=np.zeros(3), col_upper=np.ones(3), integrality=np.ones(3, bool),
    )
    return [lp_infeasible, parity]


@pytest.mark.parametrize("which", [0, 1])
def test_infeasible_detected(backend: Backend, which: int) -> None:
    model = _infeasible_models()[which]
    assert brute_force(model)[0] is None
    result = backend.solve(model, EXACT)
    assert result.termination == Termination.INFEASIBLE
    assert not result.has_solution
    assert result.x is None and result.objective is None


# ---------------------------------------------------------------- (c) time limit


def test_time_limit_is_not_optimal(backend: Backend) -> None:
    model = hard_knapsack()
    result = backend.solve(model, SolveOptions(time_limit=0.7, mip_gap=0.0))
    assert result.termination == Termination.TIME_LIMIT
    assert_consistent(model, result)
    assert result.bound is not None and np.isfinite(result.bound)
    assert result.gap is not None and 0 < result.gap < 1
    assert result.solve_time < 10.0


# ---------------------------------------------------------------- (d) warm start


def test_warm_start_is_used(backend: Backend) -> None:
    model, planted = market_split()
    result = backend.solve(model, SolveOptions(time_limit=0.4), warm_start=planted)
    assert_consistent(model, result)
    assert result.objective <= model.objective_value(planted) + 1e-9


# ---------------------------------------------------------------- (e) incumbents


def test_incumbents_are_feasible_and_improving(backend: Backend) -> None:
    model = random_mip(11, n=12)
    seen: list[tuple[np.ndarray, float]] = []

    def record(x: np.ndarray, objective: float) -> None:
        seen.append((x.copy(), objective))

    if "incumbents" not in backend.capabilities:
        with pytest.raises(ValueError, match="incumbents"):
            backend.solve(model, EXACT, on_incumbent=record)
        return
    result = backend.solve(model, EXACT, on_incumbent=record)
    assert result.termination == Termination.OPTIMAL
    assert seen, "no incumbent reported"
    for x, objective in seen:
        assert model.max_violation(x) <= 1e-6
        assert objective == pytest.approx(model.objective_value(x), abs=1e-6)
    objectives = [obj for _, obj in seen]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(objectives))
    assert objectives[-1] == pytest.approx(result.objective, abs=1e-6)


@pytest.mark.parametrize("name", [n for n in NAMES if "incumbents" in BACKENDS[n].capabilities])
def test_incumbent_callback_can_stop(name: str) -> None:
    backend = get_backend(name)
    model = hard_knapsack(seed=3)
    calls: list[float] = []
    violations: list[float] = []  # asserted after the solve: solvers may swallow exceptions

    def stop_at_second(x: np.ndarray, objective: float) -> bool:
        violations.append(model.max_violation(x))  # presolve ran: x must be in original space
        calls.append(objective)
        return len(calls) >= 2

    result = backend.solve(
        model, SolveOptions(time_limit=10.0, mip_gap=0.0), on_incumbent=stop_at_second
    )
    assert result.termination == Termination.INTERRUPTED
    assert len(calls) == 2 and max(violations) <= 1e-6
    assert_consistent(model, result)
    assert result.solve_time < 5.0


class CallerBug(Exception):
    pass


def _raise(*args: object) -> None:
    raise CallerBug("from the caller")


@pytest.mark.parametrize("name", [n for n in NAMES if "incumbents" in BACKENDS[n].capabilities])
def test_callback_exception_reaches_caller(name: str) -> None:
    with pytest.raises(CallerBug):
        get_backend(name).solve(random_mip(0), EXACT, on_incumbent=_raise)


def test_separator_exception_reaches_caller() -> None:
    model, _ = conflict_instance(0)
    with pytest.raises(CallerBug):
        ScipBackend().solve(model, EXACT, separator=_raise)


# ---------------------------------------------------------------- (f) lazy rows


def conflict_instance(seed: int, n: int = 11) -> tuple[ArrayModel, np.ndarray]:
    """Knapsack whose pairwise conflicts x_i + x_j <= 1 are known only to the separator."""
    rng = np.random.default_rng(seed)
    value = rng.integers(5, 40, n).astype(float)
    weight = rng.integers(1, 10, n).astype(float)
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.3])
    model = ArrayModel(
        c=-value, A=sp.csr_matrix(weight[None, :]),
        row_lower=np.array([-np.inf]), row_upper=np.array([0.6 * weight.sum()]),
        col_lower=np.zeros(n), col_upper=np.ones(n), integrality=np.ones(n, bool),
    )
    return model, pairs


def conflict_rows(model: ArrayModel, pairs: np.ndarray) -> Cuts:
    k = len(pairs)
    A = sp.csr_matrix(
        (np.ones(2 * k), (np.repeat(np.arange(k), 2), pairs.ravel())), shape=(k, model.num_cols)
    )
    return Cuts(A, np.full(k, -np.inf), np.ones(k))


class ConflictSeparator:
    """Returns the violated conflict rows; records what it was shown."""

    def __init__(self, model: ArrayModel, pairs: np.ndarray) -> None:
        self.all = conflict_rows(model, pairs)
        self.integral_points: list[np.ndarray] = []
        self.fractional_calls = 0

    def __call__(self, x: np.ndarray, integral: bool) -> Cuts | None:
        if integral:
            self.integral_points.append(x.copy())
        else:
            self.fractional_calls += 1
        bad = self.all.A @ x > self.all.upper + 1e-6
        if not bad.any():
            return None
        return Cuts(self.all.A[bad], self.all.lower[bad], self.all.upper[bad])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("fractional_freq", [1, -1])
def test_lazy_rows_reach_brute_force_optimum(seed: int, fractional_freq: int) -> None:
    model, pairs = conflict_instance(seed)
    rows = conflict_rows(model, pairs)
    full = model.add_rows(rows.A, rows.lower, rows.upper, block="conflicts")
    best, _ = brute_force(full)
    relaxed_best, relaxed_x = brute_force(model)
    assert best is not None and relaxed_x is not None
    assert relaxed_best < best - 1e-9  # the lazy family must matter

    separator = ConflictSeparator(model, pairs)
    # the warm start violates conflicts: conscheck must reject it
    backend = ScipBackend(fractional_freq=fractional_freq)
    result = backend.solve(model, EXACT, separator=separator, warm_start=relaxed_x)
    assert result.termination == Termination.OPTIMAL
    assert_consistent(full, result)
    assert result.objective == pytest.approx(best, abs=1e-6)
    assert result.stats["lazy_rows"] + result.stats["cut_rows"] > 0
    assert result.stats["separator_calls_integral"] == len(separator.integral_points)
    for x in separator.integral_points:
        assert np.array_equal(x, np.round(x))
    if fractional_freq < 0:
        assert separator.fractional_calls == 0 and result.stats["cut_rows"] == 0


@pytest.mark.parametrize("name", [n for n in NAMES if "lazy_rows" not in BACKENDS[n].capabilities])
def test_separator_refused_without_capability(name: str) -> None:
    model, pairs = conflict_instance(0)
    with pytest.raises(ValueError, match="lazy_rows"):
        get_backend(name).solve(model, EXACT, separator=ConflictSeparator(model, pairs))


@pytest.mark.parametrize("seed", range(3))
def test_heuristic_proposals_are_checked_lazily(seed: int) -> None:
    """A caller's heuristic: SCIP tries each proposal against every row, the lazy ones
    included. A proposal that breaks a lazy row is refused, the optimum one is accepted, and
    the result is the brute-force optimum either way."""
    model, pairs = conflict_instance(seed)
    rows = conflict_rows(model, pairs)
    full = model.add_rows(rows.A, rows.lower, rows.upper, block="conflicts")
    best, best_x = brute_force(full)
    _, relaxed_x = brute_force(model)
    assert best_x is not None and relaxed_x is not None
    shown: list[np.ndarray] = []

    def propose(point: np.ndarray) -> np.ndarray:
        shown.append(point)
        return relaxed_x if len(shown) % 2 else best_x  # bad, good, bad, ...

    result = ScipBackend().solve(model, EXACT, separator=ConflictSeparator(model, pairs),
                                 heuristic=propose)
    assert shown and all(p.shape == (model.num_cols,) for p in shown)
    assert result.objective == pytest.approx(best, abs=1e-6)
    assert_consistent(full, result)
    assert result.stats["heuristic_proposals"] >= 1
    # only rule-breaking proposals: every one refused, the optimum still found
    bad = ScipBackend().solve(model, EXACT, separator=ConflictSeparator(model, pairs),
                              heuristic=lambda point: relaxed_x)
    assert bad.stats["heuristic_proposals"] >= 1 and bad.stats.get("heuristic_accepted", 0) == 0
    assert bad.objective == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize("name", [n for n in NAMES if "heuristic" not in BACKENDS[n].capabilities])
def test_heuristic_refused_without_capability(name: str) -> None:
    model, _ = conflict_instance(0)
    with pytest.raises(ValueError, match="heuristic"):
        get_backend(name).solve(model, EXACT, heuristic=lambda x: None)


# ---------------------------------------------------------------- registry and model


def test_registry() -> None:
    assert set(BACKENDS) == {"highs", "cbc", "cpsat", "scip"}
    for name, cls in BACKENDS.items():
        backend = get_backend(name)
        assert isinstance(backend, cls) and backend.name == name
        assert backend.capabilities <= CAPABILITIES
    with pytest.raises(ValueError, match="cbc, cpsat, highs, scip"):
        get_backend("gurobi")


def test_add_rows_and_cols_return_new_models() -> None:
    model = random_mip(0)
    model.row_blocks = {"base": slice(0, model.num_rows)}
    model.col_blocks = {"farmland": slice(0, 6), "forest": slice(6, 10)}
    extra = sp.csr_matrix(np.eye(2, model.num_cols))
    grown = model.add_rows(extra, np.zeros(2), np.ones(2), block="cuts")
    grown = grown.add_rows(extra, np.zeros(2), np.ones(2), block="cuts")
    assert model.num_rows == 5 and grown.num_rows == 9
    assert grown.row_blocks == {"base": slice(0, 5), "cuts": slice(5, 9)}
    with pytest.raises(ValueError, match="base"):
        grown.add_rows(extra, 0.0, 1.0, block="base")
    wider = grown.add_cols(
        np.array([1.0, 2.0]), 0.0, 1.0, True, block="slack",
        A_cols=sp.csr_matrix(np.ones((grown.num_rows, 2))),
    )
    wider.validate()
    assert wider.num_cols == 12 and grown.num_cols == 10
    assert wider.col_blocks["slack"] == slice(10, 12)
    assert wider.A[:, 10:].sum() == 2 * grown.num_rows
    np.testing.assert_array_equal(wider.A[:, :10].toarray(), grown.A.toarray())
    x = np.zeros(12)
    assert wider.objective_value(x) == model.offset


def test_validate_rejects_bad_blocks() -> None:
    model = random_mip(0)
    model.col_blocks = {"farmland": slice(0, 11)}
    with pytest.raises(ValueError, match="farmland"):
        model.validate()


# ---------------------------------------------------------------- CP-SAT scaling bound


def test_cpsat_rounding_bound_holds() -> None:
    """Coefficients with no short decimal form, kept to 2 digits. Truth by brute force: every
    point CP-SAT may return satisfies the rows loosened by the reported bound v, and every point
    satisfying the rows tightened by v stays feasible after rounding, so
    best(A x <= U + v) <= objective <= best(A x <= U - v) + 2 * objective_error_bound."""
    rng = np.random.default_rng(5)
    n = 12
    A = rng.random((3, n)) * np.pi
    x0 = (rng.random(n) < 0.5).astype(float)
    model = ArrayModel(
        c=-(rng.random(n) * np.e), A=sp.csr_matrix(A),
        row_lower=np.full(3, -np.inf), row_upper=A @ x0 + 1 / 3,
        col_lower=np.zeros(n), col_upper=np.ones(n), integrality=np.ones(n, bool),
    )
    result = CpSatBackend(max_digits=2).solve(model, EXACT)
    assert result.termination == Termination.OPTIMAL
    assert result.x is not None and result.objective is not None
    v = result.stats["row_violation_bound"]
    err = result.stats["objective_error_bound"]
    # each coefficient is off by <= 0.005, the bound sums them (12 binaries, plus tau)
    assert 0 < v <= 0.005 * n + 1e-5 and 0 < err <= 0.005 * n
    assert model.max_violation(result.x) <= v + 1e-12
    assert result.objective == pytest.approx(model.objective_value(result.x), abs=1e-12)

    def best_with_upper(upper: np.ndarray) -> float:
        shifted = ArrayModel(
            model.c, model.A, model.row_lower, upper, model.col_lower, model.col_upper,
            model.integrality,
        )
        best, _ = brute_force(shifted)
        assert best is not None
        return best

    assert best_with_upper(model.row_upper + v) <= result.objective + 1e-9
    assert result.objective <= best_with_upper(model.row_upper - v) + 2 * err + 1e-9
    # rounded rows: the scaled model's bound is not one for the float model, so none is given
    assert result.bound is None and result.stats["scaled_bound"] <= result.objective
    exact = CpSatBackend(max_digits=9).solve(model, EXACT)
    assert exact.stats["row_violation_bound"] < 1e-6
