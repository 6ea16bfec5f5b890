"""Random tiny cases: every back-end and block-rule method against enumeration of all plans.

Per case (one seed, see tests/random_instances.py): the same feasibility verdict, the optimum
within the gap, and the reported objective equal to the value recomputed from the plan. A failure
names its seed: ``random_case(seed)`` rebuilds it. GREENBELT_RANDOM_CASES sets the count.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from optimizer.plan.solve import solve_plan
from solvers.result import Termination
from tests.random_instances import plan_values, random_case

CASES = int(os.environ.get("GREENBELT_RANDOM_CASES", "60"))
SEED0 = 1_000
RUNS = [("highs", "auto"), ("cbc", "auto"), ("cpsat", "auto"), ("scip", "auto"),
        ("highs", "flow"), ("scip", "branch_and_cut")]


def check(seed: int, backend: str, method: str) -> str | None:
    """None if the solve agrees with enumeration, else what went wrong."""
    case = random_case(seed)
    s = case.scenario
    if method != "auto":
        if not s.contiguity.enabled:
            return None
        s.contiguity.method = method
    plan = solve_plan(case.inst, s, backend=backend, elastic=s.elastic.enabled)
    r = plan.result
    if case.best is None:
        if r.has_solution and not plan.elastic:
            allowed, _ = plan_values(case.inst, s, plan.actions[None, :])
            return f"enumeration: no plan; solver returned one (allowed={bool(allowed[0])})"
        return None
    if not r.has_solution:
        return f"enumeration: optimum {case.best:.4f}; solver: {plan.status}"
    allowed, value = plan_values(case.inst, s, plan.actions[None, :])
    got = float(value[0])
    if not allowed[0]:
        return f"plan breaks a hard rule ({plan.status})"
    tol = 1e-6 * max(1.0, abs(case.best))
    if r.termination is Termination.OPTIMAL and got > case.best + tol:
        return f"'optimal' plan {got:.4f} > optimum {case.best:.4f} ({plan.status})"
    if got < case.best - tol:
        return f"plan {got:.4f} below the enumerated optimum {case.best:.4f}"
    if r.objective is None or abs(r.objective - got) > tol:
        return f"solver objective {r.objective} != the plan's {got:.4f}"
    if plan.objective is None or abs(plan.objective - got) > tol:
        return f"recomputed objective {plan.objective} != the enumerated {got:.4f}"
    if r.bound is not None and r.bound > case.best + tol:
        return f"bound {r.bound:.4f} above the optimum {case.best:.4f}"
    return None


@pytest.mark.parametrize(("backend", "method"), RUNS)
def test_random_cases_match_enumeration(backend: str, method: str) -> None:
    failures = []
    for seed in range(SEED0, SEED0 + CASES):
        problem = check(seed, backend, method)
        if problem:
            failures.append(f"seed {seed}: {problem}")
    assert not failures, "\n".join(failures)


def test_random_cases_cover_the_outcomes() -> None:
    """The draw must give elastic, block-rule, infeasible and feasible cases, or it tests little."""
    cases = [random_case(seed) for seed in range(SEED0, SEED0 + CASES)]
    elastic = sum(c.scenario.elastic.enabled for c in cases)
    rule = sum(c.scenario.contiguity.enabled for c in cases)
    none = sum(c.best is None for c in cases)
    assert elastic >= CASES // 5 and rule >= CASES // 5, (elastic, rule)
    assert 1 <= none <= CASES - 5, none
    assert np.isfinite([c.best for c in cases if c.best is not None]).all()
    rules = [c.scenario.contiguity for c in cases if c.scenario.contiguity.enabled]
    shapes = {
        "jitter": sum(c.layout == "jitter" for c in cases),
        "voronoi": sum(c.layout == "voronoi" for c in cases),
        "priority tier": sum(r.priority_block_mu is not None for r in rules),
        "forest connected": sum(r.forest_connected for r in rules),
        "township target": sum(bool(c.scenario.targets.township_reduction_mu) for c in cases),
        "township budget": sum(bool(c.scenario.budget.township_wan) for c in cases),
        "illegal building": sum(bool(c.inst.plots["illegal"].any()) for c in cases),
        "central city straddled": sum(bool(((c.inst.plots["share_central_city"] % 1) > 0).any())
                                      for c in cases),
    }
    assert min(shapes.values()) >= 1, shapes


def test_township_rows_name_only_their_plots() -> None:
    """A township target or budget naming some townships: one row each, over that township's
    plots (pandas' Categorical with values outside its categories, deprecated in pandas 3 and an
    error in 4, built these rows; now no warning is raised)."""
    import warnings

    from optimizer.model.targets import target_families

    case = next(c for c in map(random_case, range(SEED0, SEED0 + 100))
                if c.scenario.targets.township_reduction_mu)
    s, p = case.scenario, case.inst.plots
    s.budget.township_wan = {"T0": 100.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fams = {f.key: f for f in target_families(case.inst, s)[0]}
    town = p["township"].astype(str).to_numpy()
    area = p["area_mu"].to_numpy()
    W = fams["township_reduction"].Wf.toarray()
    for k, name in enumerate(s.targets.township_reduction_mu):
        assert np.allclose(W[k], np.where(town == name, area, 0.0))
    B = fams["township_budget"].Wf.toarray()
    assert (B[0] > 0).sum() == (town == "T0").sum() < len(town)


def test_random_scenarios_are_valid_scenario_files(tmp_path: Path) -> None:
    """Every random scenario passes the scenario checks a TOML file gets (the CLI runs them: a
    priority tier below the minimum block size was refused there)."""
    from optimizer.batch.specs import to_toml
    from optimizer.model.scenario import load_scenario

    for seed in range(SEED0, SEED0 + CASES):
        data = random_case(seed).scenario.to_dict()
        path = tmp_path / f"{seed}.toml"
        path.write_text(to_toml(data), encoding="utf-8")
        assert load_scenario(path).to_dict() == data, seed
