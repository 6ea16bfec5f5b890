"""The Python API: the README's notebook example runs as written, and the functions agree with
the command-line path (an edited frame is re-validated and its edits count)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from instances.errors import InstanceError
from optimizer import api

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README lost its API example"
    return match.group(1)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("api")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        namespace: dict = {}
        exec(compile(readme_example(), "README.md", "exec"), namespace)  # noqa: S102
    finally:
        os.chdir(cwd)
    return namespace


def test_readme_example_runs(ran: dict) -> None:
    plan, other, changes = ran["plan"], ran["other"], ran["changes"]
    assert plan.attrs["all_met"] and "optimal" in plan.attrs["status"]
    forest = (plan["action"] == "forest").sum()
    assert len(changes) == forest and set(changes["change"]) <= {"vacated->kept"}
    assert (other["action"] != "forest").all()


def test_an_edit_in_the_frame_changes_the_figures(ran: dict) -> None:
    plots, plan = ran["plots"], ran["plan"]
    vacated = plan["action"] != "keep"
    cost = plan.loc[vacated, "demolition_cost_wan"].sum()
    expected = (plots.loc[vacated, "demolition_wan_per_mu"] * plots.loc[vacated, "area_mu"]).sum()
    assert cost == pytest.approx(expected, rel=1e-6)  # the halved costs, not the file's


def test_a_frame_edited_wrongly_gets_the_loaders_error(ran: dict) -> None:
    bad = ran["plots"].copy()
    bad.loc[bad.index[5], "output_wan"] = -1.0
    with pytest.raises(InstanceError, match="output_wan"):
        api.solve(bad)


def test_check_recomputes_a_hand_edited_plan(ran: dict) -> None:
    other = ran["other"]  # the plan with its forest plots kept: the reduction falls short
    targets = api.check(other).set_index(["key", "scope"])
    total = targets.loc[("total_reduction", "whole instance")]
    farmland = other.loc[other["action"] == "farmland", "area_mu"].sum()
    assert total["achieved"] == pytest.approx(farmland, abs=0.01)  # plan area_mu: 3 decimals
    assert not total["met"]
    assert any(p.startswith("reduction total (whole instance)")
               for p in api.check(other).attrs["problems"])
