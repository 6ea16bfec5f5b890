"""A rule-locked dead end (issue 14): an illegal building (must be vacated) whose only allowed
use is farmland and that can join no admissible farmland block. The presolve names exactly that
plot; elastic mode keeps it, reports it, and still returns the best plan."""

from __future__ import annotations

import numpy as np
import pytest

from instances.instance import Instance
from optimizer.model.kpi import KEEP
from optimizer.model.scenario import Scenario
from optimizer.plan.check import check_actions
from optimizer.plan.solve import solve_plan
from tests.conftest import grid_instance


def locked_instance(reachable: bool = False) -> Instance:
    """3 x 3 grid, all collective candidates, forest allowed, plot 8 touches existing farmland.
    P000 (corner) is illegal and lies in the farmland protection space (no forest); its two
    neighbours P001 and P003 are urban (not candidates), so its farmland block is P000 alone,
    ~27 mu < 100 mu without existing farmland. P005 is illegal too but may become forest."""
    inst = grid_instance(np.random.default_rng(7), 3, 3)
    p = inst.plots
    p["land_use"], p["collective"] = "collective_industrial", True
    p["soil_suitable"], p["polluted"], p["illegal"] = True, False, False
    p["share_farmland_protection_space"] = 0.0
    p["touches_farmland"] = np.arange(9) == 8
    p.loc[0, "illegal"] = True
    p.loc[0, "share_farmland_protection_space"] = 1.0
    p.loc[5, "illegal"] = True
    if not reachable:
        for k in (1, 3):
            p.loc[k, "land_use"], p.loc[k, "collective"] = "urban", False
    return inst


def easy_scenario() -> Scenario:
    s = Scenario()
    t = s.targets
    t.total_reduction_mu, t.central_reduction_mu, t.priority_farmland_mu = 10.0, 0.0, 0.0
    t.central_priority_share = t.central_priority_tolerance = t.plain_priority_share = 0.0
    t.conversion_balance = False
    s.budget.total_wan = 1e6
    return s


def test_locked_plot_is_named_and_a_best_plan_comes_out() -> None:
    inst = locked_instance()
    plan = solve_plan(inst, easy_scenario())
    assert plan.result is not None and plan.result.has_solution, plan.status
    assert plan.elastic
    locked = [f for f in plan.findings if f.target == "must_vacate"]
    assert len(locked) == 1 and "P000" in locked[0].message and "P005" not in locked[0].message
    assert locked[0].required == pytest.approx(inst.plots["area_mu"][0])
    assert plan.actions[0] == KEEP and plan.actions[5] != KEEP
    # the only broken rule is the locked plot kept; every target and the block rule hold
    assert [(v.rule, v.plot_ids) for v in plan.violations] == [
        ("illegal building kept (must be vacated)", ["P000"])]
    assert all(c.met for c in plan.checks)
    checked = check_actions(inst, easy_scenario(), plan.actions)
    assert not checked.notes and all(c.met for c in checked.checks)


def test_without_elastic_mode_no_plan_but_the_right_plot_is_named() -> None:
    plan = solve_plan(locked_instance(), easy_scenario(), elastic=False)
    assert plan.result is not None and not plan.result.has_solution
    assert [f.message for f in plan.findings if "P000" in f.message]


def test_a_plot_that_can_join_a_block_is_not_named() -> None:
    plan = solve_plan(locked_instance(reachable=True), easy_scenario())
    assert not [f for f in plan.findings if f.target == "must_vacate"]
    assert plan.result is not None and plan.result.has_solution and not plan.elastic
    assert plan.actions[0] != KEEP and plan.all_met
