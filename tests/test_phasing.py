"""The five-year schedule against an independent truth: brute force over (action, year) per
candidate on tiny instances, for every back-end, with and without the block rule at every year
end; and the one-year schedule equals the single-period model exactly.

The enumeration re-states the per-year rules in plain numpy (schedule.py's docstring), not
through `optimizer.model.phasing`.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.sparse import csgraph

from optimizer.model.build import build_model
from optimizer.model.phasing import build_phased
from optimizer.model.scenario import ScenarioError, scenario_from_dict
from optimizer.plan.check import check_actions
from optimizer.plan.solve import solve_plan
from solvers.result import Termination
from tests.conftest import grid_instance
from tests.test_model_bruteforce import THRESHOLD, random_case

BACKENDS = ["highs", "cbc", "cpsat", "scip"]


def admissible_sets(inst, cand: np.ndarray, min_mu: float) -> np.ndarray:
    """For every subset (bitmask over cand) chosen as farmland: does each block touch existing
    farmland or reach min_mu? Plain BFS over the instance adjacency."""
    a = inst.plots["area_mu"].to_numpy()
    root = inst.plots["touches_farmland"].to_numpy()
    adj = inst.adjacency
    out = np.ones(2 ** len(cand), dtype=bool)
    for mask in range(2 ** len(cand)):
        idx = cand[[(mask >> j) & 1 == 1 for j in range(len(cand))]]
        if not len(idx):
            continue
        _, lab = csgraph.connected_components(adj[idx][:, idx], directed=False)
        for b in np.unique(lab):
            blk = idx[lab == b]
            if not root[blk].any() and a[blk].sum() < min_mu * (1 - 1e-9):
                out[mask] = False
    return out


def brute_force(inst, s, block_mu: float | None = None):
    """Best objective over every (action, year) choice per candidate; None if none is feasible."""
    ok, obj, _act, _year, _cand = schedules(inst, s, block_mu)
    return float(obj[ok].min()) if ok.any() else None


def schedules(inst, s, block_mu: float | None = None):
    """Every (action, year) choice per candidate: (feasible, objective, action and year index
    per candidate (year index T = never), candidates)."""
    p = inst.plots
    ph = s.phasing
    T, t = len(ph.years), s.targets
    a = p["area_mu"].to_numpy()
    pr = p["share_priority"].to_numpy()
    eff = p["output_wan"].to_numpy() / a
    illegal = p["illegal"].to_numpy() & p["collective"].to_numpy()
    cand = np.flatnonzero(p["collective"].to_numpy() & ((eff <= THRESHOLD) | illegal)
                          & ~p["protected"].to_numpy())
    farm_ok = p["soil_suitable"].to_numpy() & ~p["polluted"].to_numpy()
    forest_ok = p["share_farmland_protection_space"].to_numpy() <= 0.05
    # option 0 keep; 1 + 2k farmland in year k; 2 + 2k forest in year k
    opts = np.array(list(itertools.product(range(1 + 2 * T), repeat=len(cand))))
    act = np.where(opts == 0, 0, np.where(opts % 2 == 1, 1, 2))
    year = np.where(opts == 0, T, (opts - 1) // 2)  # T = never
    dem = p["demolition_wan_per_mu"].to_numpy() * a
    cf = (dem + p["reclaim_wan_per_mu"].to_numpy() * a)[cand]
    cg = (dem + p["afforest_wan_per_mu"].to_numpy() * a)[cand]
    ac, prc, out = a[cand], pr[cand], p["output_wan"].to_numpy()[cand]
    F, G = (act == 1), (act == 2)
    V = F | G
    ok = ~(F & ~farm_ok[cand]).any(1) & ~(G & ~forest_ok[cand]).any(1)
    vac = V @ ac
    ok &= vac >= t.total_reduction_mu - 1e-9
    ok &= vac >= t.central_reduction_mu - 1e-9
    ok &= V @ (ac * prc) >= (t.central_priority_share - t.central_priority_tolerance) * vac - 1e-9
    ok &= V @ (ac * prc) >= t.plain_priority_share * vac - 1e-9
    ok &= 100.0 + F @ (ac * prc) >= t.priority_farmland_mu - 1e-9
    cost_each = np.where(F, cf, 0) + np.where(G, cg, 0)
    ok &= cost_each.sum(1) <= s.budget.total_wan + 1e-9
    if t.conversion_balance:
        ok &= F @ ac >= G @ ac - 1e-9
    must = illegal[cand] & (farm_ok | forest_ok)[cand]
    by = ph.illegal_year_index()
    ok &= ~(must & (year > by)).any(1)
    budgets = ph.budgets(s.budget.total_wan)
    shares = ph.milestone_shares()
    towns = p["township"].to_numpy()[cand]
    bits = 1 << np.arange(len(cand))
    good = admissible_sets(inst, cand, block_mu) if block_mu is not None else None
    for k in range(T):
        spent_k = (cost_each * (year == k)).sum(1)
        if ph.carry_over:
            ok &= (cost_each * (year <= k)).sum(1) <= sum(budgets[: k + 1]) + 1e-6
        else:
            ok &= spent_k <= budgets[k] + 1e-6
        ok &= (V & (year <= k)) @ ac >= shares[k] * t.total_reduction_mu - 1e-6
        for town in np.unique(towns):
            if ph.township_capacity_mu is not None:
                ok &= (V & (year == k)) @ (ac * (towns == town)) <= ph.township_capacity_mu + 1e-9
            if ph.township_capacity_plots is not None:
                ok &= (V & (year == k)).astype(int) @ (towns == town) <= ph.township_capacity_plots
        if good is not None:
            ok &= good[(F & (year <= k)) @ bits]
    r = ph.discount_rate
    H = s.objective.output_years
    w_out = np.array([sum((1 + r) ** -j for j in range(k, int(H))) for k in range(T + 1)])
    d = np.array([(1 + r) ** -k for k in range(T)] + [0.0])
    obj = (np.where(V, w_out[year] * out, 0) + d[year] * cost_each).sum(1)
    return ok, obj, act, year, cand


def phased_case(seed: int, rows: int, cols: int, T: int, loose: float = 1.0):
    inst, s = random_case(seed)
    rng = np.random.default_rng(1000 + seed)
    inst = grid_instance(rng, rows, cols, candidate_share=0.9)
    inst.plots.loc[rng.random(rows * cols) < 0.15, "illegal"] = True
    a = inst.plots["area_mu"].to_numpy()
    pr = inst.plots["share_priority"].to_numpy()
    t = s.targets
    t.total_reduction_mu = float(np.round(loose * rng.uniform(0.15, 0.45) * a.sum(), 2))
    t.central_reduction_mu = float(np.round(loose * rng.uniform(0.1, 0.3) * a.sum(), 2))
    t.priority_farmland_mu = float(np.round(100 + loose * rng.uniform(0.05, 0.3)
                                            * (a * pr).sum(), 2))
    s.budget.total_wan = float(np.round(rng.uniform(0.4, 0.9) * (a * 130).sum(), 0))
    ph = s.phasing
    ph.enabled, ph.last_year = True, ph.first_year + T - 1
    ph.carry_over = bool(seed % 2)
    if seed % 3 == 1:
        ph.annual_budget_wan = list(np.round(rng.dirichlet(np.ones(T)) * s.budget.total_wan, 0))
    if seed % 3 == 2:
        ph.township_capacity_mu = float(np.round(rng.uniform(0.1, 0.3) * a.sum(), 2))
    if seed % 4 == 0:
        ph.township_capacity_plots = 1.0
    ph.discount_rate = 0.05 if seed % 4 == 3 else 0.0
    ph.illegal_by_year = ph.first_year + int(rng.integers(0, T))
    return inst, s


def _assert_matches(inst, s, backend, best, seed, outcomes):
    plan = solve_plan(inst, s, backend=backend, elastic=False)
    if best is None:
        outcomes["infeasible"] += 1
        assert not plan.result.has_solution or not plan.all_met, (seed, plan.status)
        return
    outcomes["feasible"] += 1
    assert plan.result.termination is Termination.OPTIMAL, (seed, plan.status)
    assert plan.all_met, (seed, [c for c in plan.checks if not c.met], plan.violations)
    assert plan.result.objective == pytest.approx(best, rel=1e-6, abs=1e-4), (seed, backend)
    # the independent checker agrees, year by year
    assert not check_actions(inst, s, plan.actions, years=plan.years).problems()
    # the plan re-encoded from (action, year) satisfies the model and has the brute-force value
    pm = build_phased(inst, s)
    x = pm.full_vector(plan.actions, plan.years)
    assert pm.model.max_violation(x) <= 1e-6
    assert pm.model.objective_value(x) == pytest.approx(best, rel=1e-6, abs=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_phased_matches_brute_force(backend: str) -> None:
    outcomes = {"feasible": 0, "infeasible": 0}
    for seed in range(12):
        rows, cols, T = ((2, 3, 3) if seed % 2 else (2, 4, 2))
        inst, s = phased_case(seed, rows, cols, T)
        _assert_matches(inst, s, backend, brute_force(inst, s), seed, outcomes)
    assert outcomes["feasible"] >= 4 and outcomes["infeasible"] >= 1, outcomes


@pytest.mark.parametrize("backend", BACKENDS)
def test_phased_block_rule_every_year_matches_brute_force(backend: str) -> None:
    outcomes = {"feasible": 0, "infeasible": 0}
    for seed in range(10):
        inst, s = phased_case(seed, 2, 3, 3, loose=0.5)
        s.targets.central_priority_share, s.targets.plain_priority_share = 0.5, 0.3
        s.contiguity.enabled = True
        s.contiguity.min_block_mu = 18.0
        _assert_matches(inst, s, backend, brute_force(inst, s, 18.0), seed, outcomes)
    assert outcomes["feasible"] >= 3 and outcomes["infeasible"] >= 1, outcomes


@pytest.mark.parametrize("contiguity", [False, True])
def test_one_year_is_the_single_period_model(contiguity: bool) -> None:
    for seed in range(4):
        inst, s = random_case(seed)
        s.contiguity.enabled = contiguity
        s.phasing.enabled, s.phasing.last_year = True, s.phasing.first_year
        s.phasing.illegal_by_year = None
        phased, single = build_phased(inst, s).model, build_model(inst, s).model
        assert np.array_equal(phased.c, single.c)
        assert (phased.A != single.A).nnz == 0
        for k in ("row_lower", "row_upper", "col_lower", "col_upper", "integrality"):
            assert np.array_equal(getattr(phased, k), getattr(single, k)), k
        p1 = solve_plan(inst, s, elastic=False)
        s.phasing.enabled = False
        p0 = solve_plan(inst, s, elastic=False)
        assert p1.result.has_solution == p0.result.has_solution
        if p0.result.has_solution:
            assert p1.result.objective == pytest.approx(p0.result.objective, rel=1e-9)
            assert set(np.unique(p1.years[p1.actions > 0])) <= {s.phasing.first_year}


def test_phasing_keys_are_validated() -> None:
    bad = {
        "annual_budget_wan": [1.0, 2.0],
        "milestones": [0.5, 0.4, 0.8, 0.9, 1.0],
        "first_year": 2021.5,
        "illegal_by_year": 2030,
        "township_capacity_mu": -1,
        "method": "fast",
        "discount_rate": 1.5,
        "years": 5,
    }
    for key, value in bad.items():
        with pytest.raises(ScenarioError, match=r"^x\.toml: .*phasing") as err:
            scenario_from_dict({"phasing": {key: value}}, "x.toml")
        assert "\n" not in str(err.value)
    s = scenario_from_dict({"phasing": {"enabled": True}})
    assert s.phasing.years == [2021, 2022, 2023, 2024, 2025]
    assert s.phasing.milestone_shares() == [0.25, 0.5, 0.75, 0.875, 1.0]
    assert s.phasing.budgets(100.0) == [20.0] * 5
    assert scenario_from_dict(s.to_dict()).phasing == s.phasing


def test_an_illegal_building_the_block_rule_locks_is_kept_in_a_schedule_too() -> None:
    """Elastic mode keeps a rule-locked illegal building (tests/test_rule_locked.py) in the
    schedule as in the single-period model; the other illegal building goes in year one."""
    from tests.test_rule_locked import easy_scenario, locked_instance

    inst, s = locked_instance(), easy_scenario()
    s.phasing.enabled, s.phasing.last_year = True, 2023
    plan = solve_plan(inst, s)
    assert plan.result is not None and plan.result.has_solution and plan.elastic, plan.status
    assert plan.actions[0] == 0 and plan.actions[5] != 0 and plan.years[5] == 2021
    assert [(v.rule, v.plot_ids) for v in plan.violations] == [
        ("illegal building kept (must be vacated)", ["P000"])]
    assert all(c.met for c in plan.checks)
