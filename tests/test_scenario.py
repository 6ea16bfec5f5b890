"""Scenario TOML: seed defaults, district shares, clear errors for unknown keys and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.model.scenario import (
    SEED_CENTRAL_REDUCTION_MU,
    SEED_PRIORITY_FARMLAND_MU,
    Scenario,
    ScenarioError,
    district_targets,
    load_scenario,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_seed_figures() -> None:
    s = load_scenario(None)
    assert s.targets.central_priority_share == 0.90
    assert s.targets.plain_priority_share == 0.65
    dt = district_targets(s, {})
    assert dt.priority_farmland_mu == SEED_PRIORITY_FARMLAND_MU
    assert dt.central_reduction_mu == SEED_CENTRAL_REDUCTION_MU


def test_district_share_by_reference_areas() -> None:
    meta = {"city_central_mu": "2000000", "district_central_mu": "500000",
            "city_priority_mu": "1800000", "district_priority_mu": "450000",
            "city_total_mu": "24000000", "district_total_mu": "500000"}
    dt = district_targets(Scenario(), meta)
    assert dt.central_reduction_mu == pytest.approx(52_500 * 0.25)
    assert dt.priority_farmland_mu == pytest.approx(520_000 * 0.25)
    # total: the larger of the central share and the citywide net share
    assert dt.total_reduction_mu == pytest.approx(max(52_500 * 0.25, 28_500 * 500_000 / 24e6))
    assert dt.budget_wan == pytest.approx(
        Scenario().budget.wan_per_mu_of_target * dt.total_reduction_mu)


def test_file_values_override_defaults(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, """
name = "tight"
[targets]
priority_farmland_mu = 1000
central_priority_share = 0.85
township_reduction_mu = { "t-1" = 50 }
[budget]
total_wan = 12345.5
[solver]
backend = "scip"
threads = 1
"""))
    assert s.name == "tight"
    assert district_targets(s, {}).priority_farmland_mu == 1000
    assert s.targets.township_reduction_mu == {"t-1": 50.0}
    assert s.budget.total_wan == 12345.5
    assert s.solver.backend == "scip"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[targets]\nfarmland = 3\n", "unknown key [targets] farmland"),
        ("[target]\nx = 1\n", "unknown section [target]"),
        ("[targets]\ncentral_priority_share = 1.5\n", "central_priority_share = 1.5"),
        ("[targets]\npriority_farmland_mu = -5\n", "must not be negative"),
        ("[targets]\npriority_farmland_mu = \"lots\"\n", "expected a number or \"auto\""),
        ("[solver]\nbackend = \"gurobi\"\n", "not one of highs, cbc, cpsat, scip"),
        ("[targets]\nconversion_balance = 1\n", "expected true or false"),
        ("[budget]\ntownship_wan = { a = -1 }\n", "township_wan.a"),
        ("[targets\n", "not valid TOML"),
    ],
)
def test_bad_scenarios_are_one_line_errors(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert fragment in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "nope.toml")


def test_auto_budget_pays_for_the_plots_that_must_be_vacated() -> None:
    """Where the illegal buildings that must go exceed the reduction target (Daxing at 50k
    candidates: 5,530 mu against 1,796), the auto budget is per mu of that area: before, their
    demolition alone cost more than the budget and the seed scenario was infeasible."""
    import numpy as np

    from optimizer.model.targets import instance_targets
    from optimizer.plan.solve import solve_plan
    from tests.conftest import grid_instance

    inst = grid_instance(np.random.default_rng(5), 4, 4)
    p = inst.plots
    p["collective"] = True
    p["land_use"] = "collective_industrial"
    p["soil_suitable"], p["polluted"] = True, False
    p["share_priority"] = 1.0  # the priority shares hold whatever is vacated
    illegal = np.zeros(len(p), bool)
    illegal[[1, 6, 11]] = True
    p["illegal"] = illegal
    forced_mu = float(p.loc[illegal, "area_mu"].sum())  # hand count: all three may go
    s = Scenario()
    s.targets.central_reduction_mu = s.targets.total_reduction_mu = 1.0
    s.targets.priority_farmland_mu = 0.0
    s.contiguity.enabled = False
    dt = instance_targets(inst, s)
    assert dt.budget_wan == pytest.approx(s.budget.wan_per_mu_of_target * forced_mu)
    # demolition + reclamation <= 128 万元/mu < 200: the forced plots fit the auto budget
    plan = solve_plan(inst, s, backend="highs", time_limit=30)
    assert not plan.elastic and plan.result.has_solution
    assert set(np.flatnonzero(plan.actions != 0)) >= {1, 6, 11}
    # an explicit figure is taken as it is
    s.budget.total_wan = 123.0
    assert instance_targets(inst, s).budget_wan == 123.0
