"""`check` catches each kind of violation in deliberately broken plans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer.model.scenario import Scenario
from optimizer.plan.check import PlanFileError, check_actions, read_plan_actions
from tests.conftest import grid_instance


def base_case():
    """A 4x4 instance and a scenario whose targets a hand-made plan meets exactly."""
    rng = np.random.default_rng(7)
    inst = grid_instance(rng, 4, 4, candidate_share=1.0)
    p = inst.plots
    p["soil_suitable"] = True
    p["polluted"] = False
    p["share_farmland_protection_space"] = 0.0
    p["output_wan"] = p["area_mu"] * 5.0  # all low-efficiency
    p["share_priority"] = np.r_[np.ones(8), np.zeros(8)]
    actions = np.zeros(16, dtype=np.int8)
    actions[[0, 1, 2]] = 1  # farmland inside the priority zones
    actions[[3]] = 2  # forest inside
    a = p["area_mu"].to_numpy()
    s = Scenario()
    s.contiguity.enabled = False
    s.eligibility.low_efficiency_max_wan_per_mu = 10.0
    t = s.targets
    t.total_reduction_mu = float(a[:4].sum())
    t.central_reduction_mu = float(a[:4].sum())
    t.priority_farmland_mu = 100.0 + float(a[:3].sum())
    t.conversion_balance = True
    cost = (p["demolition_wan_per_mu"] * a + p["reclaim_wan_per_mu"] * a)[:3].sum() + (
        p["demolition_wan_per_mu"] * a + p["afforest_wan_per_mu"] * a)[3]
    s.budget.total_wan = float(cost)
    return inst, s, actions


def problems(inst, s, actions) -> list[str]:
    return check_actions(inst, s, actions).problems()


def test_the_base_plan_passes() -> None:
    inst, s, actions = base_case()
    assert problems(inst, s, actions) == []


def test_each_broken_plan_is_caught() -> None:
    inst, s, actions = base_case()
    p = inst.plots

    def broken(change) -> list[str]:
        a = actions.copy()
        inst2, s2, _ = base_case()
        change(a, inst2.plots, s2)
        return problems(inst2, s2, a)

    def has(found: list[str], fragment: str) -> bool:
        return any(fragment in f for f in found)

    # too little vacated: reduction totals fail
    assert has(broken(lambda a, p, s: a.__setitem__(3, 0)), "reduction total")
    # a vacated plot outside the priority zones breaks the 90% share
    found = broken(lambda a, p, s: a.__setitem__(12, 2))
    assert has(found, "vacated area in priority zones (central city)")
    # forest instead of farmland: farmland target and conversion balance fail
    found = broken(lambda a, p, s: (a.__setitem__(0, 2), a.__setitem__(1, 2)))
    assert has(found, "priority farmland (existing + new)")
    assert has(found, "farmland >= forest")
    # over budget
    assert has(broken(lambda a, p, s: setattr(s.budget, "total_wan", s.budget.total_wan - 1)),
               "cost within budget")
    # farmland on polluted land
    assert has(broken(lambda a, p, s: p.__setitem__("polluted", np.arange(16) == 0)),
               "farmland on ineligible land")
    # forest in the farmland protection space
    assert has(broken(lambda a, p, s: p.__setitem__("share_farmland_protection_space",
                                                    (np.arange(16) == 3).astype(float))),
               "forest inside the farmland protection space")
    # a protected plot vacated
    assert has(broken(lambda a, p, s: p.__setitem__("protected", np.arange(16) == 1)),
               "protected plot vacated")
    # an illegal building kept
    assert has(broken(lambda a, p, s: p.__setitem__("illegal", np.arange(16) == 9)),
               "illegal building kept")
    # a high-efficiency plot vacated
    assert has(broken(lambda a, p, s: p.__setitem__(
        "output_wan", p["area_mu"] * np.where(np.arange(16) == 2, 50.0, 5.0))),
        "not a low-efficiency collective candidate")
    assert len(p) == 16


def _write(tmp_path: Path, table: pd.DataFrame) -> Path:
    path = tmp_path / "plan.csv"
    table.to_csv(path, index=False, encoding="utf-8-sig")
    return path


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda t: t.drop(columns="action"), "missing column 'action'"),
        (lambda t: t.assign(action=["keep"] * 15 + ["parking"]), "row 17"),
        (lambda t: t.iloc[:-1], "have no row"),
        (lambda t: pd.concat([t, t.iloc[[0]]]), "duplicate plot_id"),
        (lambda t: t.assign(plot_id=["X"] + list(t.plot_id[1:])), "'X' is not a plot"),
    ],
)
def test_bad_plan_files(tmp_path: Path, edit, fragment: str) -> None:
    inst, _, _ = base_case()
    table = pd.DataFrame({"plot_id": inst.plots["plot_id"], "action": "keep"})
    path = _write(tmp_path, edit(table))
    with pytest.raises(PlanFileError) as err:
        read_plan_actions(path, inst.plots["plot_id"])
    assert fragment in str(err.value) and str(path) in str(err.value)


def test_plan_file_round_trip_in_any_row_order(tmp_path: Path) -> None:
    inst, _, actions = base_case()
    table = pd.DataFrame({"plot_id": inst.plots["plot_id"],
                          "action": np.array(["keep", "farmland", "forest"])[actions]})
    path = _write(tmp_path, table.iloc[::-1])
    assert (read_plan_actions(path, inst.plots["plot_id"]) == actions).all()


def test_check_verifies_farmland_blocks_from_geometry() -> None:
    """A lone small farmland plot away from existing farmland breaks the block rule."""
    inst, s, actions = base_case()
    s.contiguity.enabled = True
    s.contiguity.min_block_mu = 1e6  # no stand-alone block is large enough
    p = inst.plots
    p["touches_farmland"] = False
    assert any("farmland blocks: 1 block(s)" in x for x in problems(inst, s, actions))
    p.loc[1, "touches_farmland"] = True  # plots 0-1-2 form one block touching farmland
    assert problems(inst, s, actions) == []
    s.contiguity.min_block_mu = 1.0  # or the block is large enough on its own
    p["touches_farmland"] = False
    assert problems(inst, s, actions) == []
