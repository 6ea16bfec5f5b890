"""Every back-end's optimum equals brute-force enumeration of all plans on tiny instances.

The enumeration re-states the rules of domain.md in plain numpy (not through
`optimizer.model.targets`), so it is an independent check of the model compilation and of each
back-end.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from optimizer.model.scenario import Scenario
from optimizer.plan.solve import solve_plan
from solvers.result import Termination
from tests.conftest import grid_instance

BACKENDS = ["highs", "cbc", "cpsat", "scip"]
THRESHOLD = 12.0  # low-efficiency threshold used in these scenarios


def brute_force(inst, s: Scenario):
    ok, obj, full = enumerate_plans(inst, s)
    if not ok.any():
        return None, None
    best = int(np.argmin(np.where(ok, obj, np.inf)))
    return float(obj[best]), full[best]


def enumerate_plans(inst, s: Scenario):
    """Every plan over the candidates: (meets all targets and rules, objective, per-plot actions).

    Zones may be straddled: a plot counts as central / plain when at least half of it lies
    inside; farmland is barred by a water-source or river-channel share above 5%, forest by a
    farmland-protection share above 5%. Illegal collective buildings are candidates whatever
    their efficiency and must be vacated; protected plots never are.
    """
    p = inst.plots
    a = p["area_mu"].to_numpy()
    pr = p["share_priority"].to_numpy()
    eff = p["output_wan"].to_numpy() / a
    collective = p["collective"].to_numpy(bool)
    illegal = p["illegal"].to_numpy(bool) & collective
    cand = np.flatnonzero(collective & ((eff <= THRESHOLD) | illegal)
                          & ~p["protected"].to_numpy(bool))
    farm_ok = (p["soil_suitable"].to_numpy(bool) & ~p["polluted"].to_numpy(bool)
               & (p["share_water_source"].to_numpy() <= 0.05)
               & (p["share_river_channel"].to_numpy() <= 0.05))
    forest_ok = p["share_farmland_protection_space"].to_numpy() <= 0.05
    central = p["share_central_city"].to_numpy() >= 0.5
    plain = p["share_plain_area"].to_numpy() >= 0.5
    acts = np.array(list(itertools.product((0, 1, 2), repeat=len(cand))), dtype=np.int8)
    full = np.zeros((len(acts), len(a)), dtype=np.int8)
    full[:, cand] = acts
    F, G = (full == 1).astype(float), (full == 2).astype(float)
    V = F + G
    t = s.targets
    ok = (F @ (~farm_ok)) == 0
    ok &= (G @ (~forest_ok)) == 0
    ok &= (V[:, illegal] == 1).all(axis=1)
    ok &= V @ a >= t.total_reduction_mu - 1e-9
    if central.any():
        ok &= V @ (a * central) >= t.central_reduction_mu - 1e-9
    town = p["township"].astype(str).to_numpy()
    for name, need in t.township_reduction_mu.items():
        ok &= V @ (a * (town == name)) >= need - 1e-9
    for scope, rho in ((central, t.central_priority_share - t.central_priority_tolerance),
                       (plain, t.plain_priority_share)):
        if scope.any() and rho > 0:
            ok &= V @ (a * pr * scope) >= rho * (V @ (a * scope)) - 1e-9
    existing = inst.stats.get("farmland_in_priority_mu", 0.0)
    ok &= existing + F @ (a * pr) >= t.priority_farmland_mu - 1e-9
    dem = p["demolition_wan_per_mu"].to_numpy() * a
    to_farm, to_forest = dem + p["reclaim_wan_per_mu"].to_numpy() * a, dem + p[
        "afforest_wan_per_mu"].to_numpy() * a
    cost = F @ to_farm + G @ to_forest
    ok &= cost <= s.budget.total_wan + 1e-9
    for name, cap in s.budget.township_wan.items():
        here = town == name
        ok &= F @ (to_farm * here) + G @ (to_forest * here) <= cap + 1e-9
    if t.conversion_balance:
        ok &= F @ a >= G @ a - 1e-9
    obj = s.objective.output_years * (V @ p["output_wan"].to_numpy()) + cost
    return ok, obj, full


def plan_objective(inst, s: Scenario, actions: np.ndarray) -> float:
    p = inst.plots
    a = p["area_mu"].to_numpy()
    f, g = actions == 1, actions == 2
    dem = p["demolition_wan_per_mu"].to_numpy() * a
    return float(s.objective.output_years * p["output_wan"].to_numpy()[f | g].sum()
                 + (dem + p["reclaim_wan_per_mu"].to_numpy() * a)[f].sum()
                 + (dem + p["afforest_wan_per_mu"].to_numpy() * a)[g].sum())


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    inst = grid_instance(rng, 3, 3, candidate_share=0.9)
    a = inst.plots["area_mu"].to_numpy()
    pr = inst.plots["share_priority"].to_numpy()
    s = Scenario()
    s.contiguity.enabled = False  # the block rule has its own tests (test_contiguous_solve)
    s.eligibility.low_efficiency_max_wan_per_mu = THRESHOLD
    t = s.targets
    t.total_reduction_mu = float(np.round(rng.uniform(0.15, 0.5) * a.sum(), 2))
    t.central_reduction_mu = float(np.round(rng.uniform(0.1, 0.4) * a.sum(), 2))
    t.central_priority_share = float(np.round(rng.uniform(0.4, 0.85), 2))
    t.plain_priority_share = float(np.round(rng.uniform(0.2, 0.6), 2))
    t.priority_farmland_mu = float(np.round(100 + rng.uniform(0.05, 0.4) * (a * pr).sum(), 2))
    t.conversion_balance = bool(rng.random() < 0.5)
    s.budget.total_wan = float(np.round(rng.uniform(0.3, 0.9) * (a * 130).sum(), 0))
    s.solver.time_limit = 30
    s.solver.mip_gap = 0.0
    return inst, s


CASES = list(range(14))


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_matches_brute_force(backend: str) -> None:
    outcomes = {"feasible": 0, "infeasible": 0}
    for seed in CASES:
        inst, s = random_case(seed)
        best, _ = brute_force(inst, s)
        plan = solve_plan(inst, s, backend=backend, elastic=False)
        if best is None:
            outcomes["infeasible"] += 1
            assert plan.result.termination is Termination.INFEASIBLE, (seed, plan.status)
            assert not plan.result.has_solution
            continue
        outcomes["feasible"] += 1
        assert plan.result.termination is Termination.OPTIMAL, (seed, plan.status)
        assert plan.all_met, (seed, [c for c in plan.checks if not c.met], plan.violations)
        got = plan_objective(inst, s, plan.actions)
        assert got == pytest.approx(best, rel=1e-6, abs=1e-6), (seed, backend)
    # The random scenarios must exercise both outcomes, or the test proves little.
    assert outcomes["feasible"] >= 5 and outcomes["infeasible"] >= 1, outcomes


def test_targets_bind_in_the_random_cases() -> None:
    """Each target family is tight (dropping it changes the brute-force optimum) somewhere."""
    tight: set[str] = set()
    for seed in CASES:
        inst, s = random_case(seed)
        best, _ = brute_force(inst, s)
        if best is None:
            continue
        relax = {
            "reduction": lambda s: (setattr(s.targets, "total_reduction_mu", 0.0),
                                    setattr(s.targets, "central_reduction_mu", 0.0)),
            "share": lambda s: (setattr(s.targets, "central_priority_share", 0.0),
                                setattr(s.targets, "central_priority_tolerance", 0.0),
                                setattr(s.targets, "plain_priority_share", 0.0)),
            "farmland": lambda s: setattr(s.targets, "priority_farmland_mu", 0.0),
            "budget": lambda s: setattr(s.budget, "total_wan", 1e12),
        }
        for name, drop in relax.items():
            _, s2 = random_case(seed)
            drop(s2)
            other, _ = brute_force(inst, s2)
            if other is not None and other < best - 1e-6:
                tight.add(name)
    assert {"reduction", "share", "farmland"} <= tight, tight


@pytest.mark.parametrize("backend", ["highs", "scip"])
def test_elastic_mode_reports_the_true_minimal_shortfall(backend: str) -> None:
    """A farmland target set beyond reach: presolve names it, the elastic solve still returns a
    plan meeting every other target, and its shortfall equals the brute-force minimum."""
    for seed in range(6):
        inst, s = random_case(seed)
        s.targets.priority_farmland_mu = 0.0
        s.budget.total_wan = 1e9
        if brute_force(inst, s)[0] is None:
            continue
        # the most new priority farmland any plan meeting the other targets can give
        ok, _, full = enumerate_plans(inst, s)
        gain = (inst.plots["area_mu"] * inst.plots["share_priority"]).to_numpy()
        exact = float(((full == 1) @ gain)[ok].max())
        impossible = 100.0 + gain.sum() + 50.0
        s.targets.priority_farmland_mu = impossible
        s.elastic.penalty = 1e5
        plan = solve_plan(inst, s, backend=backend)
        assert plan.elastic
        assert any(f.target == "priority_farmland" for f in plan.findings)
        unmet = {c.key: -c.slack for c in plan.checks if not c.met}
        assert set(unmet) == {"priority_farmland"}, unmet
        assert unmet["priority_farmland"] == pytest.approx(impossible - 100.0 - exact,
                                                           rel=1e-6, abs=1e-4)
        return
    pytest.fail("no feasible base case found")


def test_stuck_illegal_building_is_explained_not_infeasible() -> None:
    """An illegal building that may become neither farmland nor forest cannot be vacated: the
    plan is still solved, presolve names the plot and the plan reports it kept."""
    for seed in range(10):
        inst, s = random_case(seed)
        if brute_force(inst, s)[0] is not None:
            break
    p = inst.plots
    k = int(np.flatnonzero(p["collective"].to_numpy())[0])
    p.loc[k, ["illegal", "polluted"]] = True
    p.loc[k, "share_farmland_protection_space"] = 1.0
    plan = solve_plan(inst, s, backend="highs")
    assert plan.result.has_solution and plan.actions[k] == 0
    assert any(f.target == "must_vacate" and p.loc[k, "plot_id"] in f.message
               for f in plan.findings)
    assert any(v.rule.startswith("illegal building kept") for v in plan.violations)
