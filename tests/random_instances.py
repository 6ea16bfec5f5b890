"""Random tiny instances and scenarios, and the optimum of each by enumerating every plan.

Used by tests/test_random_bruteforce.py (a seeded CI run) and for larger runs. One seed gives one
(instance, scenario) case, so a failure reproduces from the seed it prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from instances.instance import Instance
from optimizer.model.build import PlanModel, build_model
from optimizer.model.scenario import Scenario
from tests.conftest import grid_instance
from tests.test_contiguous_solve import rule_ok
from tests.test_model_bruteforce import THRESHOLD, enumerate_plans

MAX_CANDIDATES = 9


@dataclass
class Case:
    seed: int
    inst: Instance
    scenario: Scenario
    best: float | None  # optimum over all plans (None: no plan meets the hard rules)


def random_case(seed: int) -> Case:
    """A 2x3..3x4 grid (5-9 candidates), every target on or off, tight or loose, budget,
    balance, elastic mode and the block rule each drawn at random."""
    rng = np.random.default_rng(seed)
    while True:
        rows, cols = int(rng.integers(2, 4)), int(rng.integers(3, 5))
        inst = grid_instance(rng, rows, cols, candidate_share=float(rng.uniform(0.6, 1.0)),
                             central=True)  # enumerate_plans treats every plot as central
        if 5 <= len(candidates(inst)) <= MAX_CANDIDATES:
            break
    inst.plots["township"] = [f"T{k % int(rng.integers(1, 4))}" for k in range(len(inst.plots))]
    a = inst.plots["area_mu"].to_numpy()
    pr = inst.plots["share_priority"].to_numpy()
    s = Scenario()
    s.eligibility.low_efficiency_max_wan_per_mu = THRESHOLD
    t = s.targets

    def level(on: float, tight: tuple[float, float], loose: tuple[float, float]) -> float:
        if rng.random() >= on:
            return 0.0
        lo, hi = tight if rng.random() < 0.5 else loose
        return float(rng.uniform(lo, hi))

    t.total_reduction_mu = round(level(0.8, (0.4, 0.7), (0.05, 0.3)) * a.sum(), 2)
    t.central_reduction_mu = round(level(0.6, (0.3, 0.6), (0.05, 0.25)) * a.sum(), 2)
    t.central_priority_share = round(level(0.7, (0.7, 0.9), (0.2, 0.5)), 2)
    t.central_priority_tolerance = 0.01 if t.central_priority_share > 0 else 0.0
    t.plain_priority_share = round(level(0.6, (0.6, 0.8), (0.1, 0.4)), 2)
    t.priority_farmland_mu = round(100 + level(0.6, (0.3, 0.6), (0.02, 0.2)) * (a * pr).sum(), 2)
    t.conversion_balance = bool(rng.random() < 0.5)
    s.budget.total_wan = float(np.round(rng.uniform(0.2, 1.2) * (a * 130).sum(), 0))
    s.elastic.enabled = bool(rng.random() < 0.4)
    s.elastic.penalty = 10_000.0
    s.contiguity.enabled = bool(rng.random() < 0.35)
    s.contiguity.min_block_mu = float(rng.choice([15.0, 40.0]))
    s.solver.time_limit = 30
    s.solver.mip_gap = 0.0
    s.solver.threads = 1
    return Case(seed, inst, s, optimum(inst, s))


def candidates(inst: Instance) -> np.ndarray:
    p = inst.plots
    eff = p["output_wan"].to_numpy() / p["area_mu"].to_numpy()
    return np.flatnonzero(p["collective"].to_numpy() & (eff <= THRESHOLD)
                          & ~p["protected"].to_numpy())


def plan_values(inst: Instance, s: Scenario, full: np.ndarray,
                pm: PlanModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(allowed, objective) of each plan (rows of per-plot actions).

    Without elastic mode: the independent re-statement of the rules (enumerate_plans). In elastic
    mode the objective adds penalty x the least shortfall of each target row of the compiled
    model (shortfalls are continuous, so the least one is closed-form per row); the hard rules
    (column bounds, rows without shortfall) must hold.
    """
    if not s.elastic.enabled:
        ok, obj, every = enumerate_plans(inst, s)
        index = {row.tobytes(): k for k, row in enumerate(every)}
        pick = np.array([index[row.tobytes()] for row in full.astype(np.int8)])
        allowed = ok[pick]
        values = obj[pick]
    else:
        pm = pm or build_model(inst, s)
        m = pm.model
        X = np.zeros((len(full), m.num_cols))
        nc = len(pm.candidates)
        acts = full[:, pm.candidates]
        X[:, :nc], X[:, nc:2 * nc] = acts == 1, acts == 2
        short = m.col_blocks.get("shortfall", slice(0, 0))
        S = m.A[:, short].toarray()  # one +-1 per shortfall column
        act = (m.A @ X.T).T  # shortfall columns are 0 in X
        need = np.zeros((len(full), S.shape[1]))
        for j in range(S.shape[1]):
            i = int(np.flatnonzero(S[:, j])[0])
            coef = S[i, j]
            if coef > 0:  # raises a >= row
                lo = (m.row_lower[i] - act[:, i]) / coef
            else:  # lowers a <= row (a budget)
                lo = (act[:, i] - m.row_upper[i]) / -coef
            need[:, j] = np.maximum(0.0, np.nan_to_num(lo, neginf=0.0))
        X[:, short] = need
        act = (m.A @ X.T).T
        tol = 1e-7 * np.maximum(1.0, np.abs(act))
        allowed = ((act >= m.row_lower - tol) & (act <= m.row_upper + tol)).all(axis=1)
        allowed &= ((X >= m.col_lower - 1e-9) & (X <= m.col_upper + 1e-9)).all(axis=1)
        values = X @ m.c + m.offset
    if s.contiguity.enabled:
        allowed = allowed & rule_ok(inst, full, s.contiguity.min_block_mu)
    return allowed, values


def all_plans(inst: Instance) -> np.ndarray:
    cand = candidates(inst)
    grids = np.meshgrid(*([np.arange(3)] * len(cand)), indexing="ij")
    acts = np.stack([g.ravel() for g in grids], axis=1).astype(np.int8)
    full = np.zeros((len(acts), len(inst.plots)), dtype=np.int8)
    full[:, cand] = acts
    return full


def optimum(inst: Instance, s: Scenario) -> float | None:
    allowed, values = plan_values(inst, s, all_plans(inst))
    return float(values[allowed].min()) if allowed.any() else None
