"""`solve --no-elastic` on an impossible scenario exits 3 and writes only summary.json (issue 16).

It used to exit 2 and write plan.csv where the model stays feasible although the scenario is
not: an illegal building that is also protected, or that may become neither farmland nor
forest, is not forced by the model (presolve names it) and the plan kept it. Driven through the
CLI on random tiny impossible cases written to a GeoPackage (tests/random_instances.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
from typer.testing import CliRunner

from instances.schema import PLOTS_LAYER
from optimizer.batch.specs import to_toml
from optimizer.cli import app
from optimizer.plan.solve import solve_plan
from solvers.result import Termination
from tests.random_instances import random_case

runner = CliRunner()


def impossible_cases(count: int) -> list:
    """Geometry-first cases that enumeration proves impossible with elastic mode off."""
    out = []
    for seed in range(1000, 1400):
        case = random_case(seed)
        if case.path is not None and not case.scenario.elastic.enabled and case.best is None:
            out.append(case)
        if len(out) == count:
            return out
    pytest.fail(f"only {len(out)} impossible geometry-first cases")


def feasible_case():
    """A geometry-first case with a plan meeting everything, elastic mode off, no block rule."""
    for seed in range(1000, 1400):
        case = random_case(seed)
        s = case.scenario
        if case.path is not None and not s.elastic.enabled and not s.contiguity.enabled \
                and case.best is not None and not case.inst.plots["illegal"].any():
            return case
    pytest.fail("no feasible geometry-first case")


def no_plan_files(out: Path) -> bool:
    """summary.json and nothing of a plan (the output set's manifest outputs.json may be there)."""
    names = {p.name for p in out.iterdir()}
    return "summary.json" in names and names <= {"summary.json", "outputs.json"}


def solve_cli(case, tmp_path: Path, backend: str) -> tuple[int, Path, str]:
    scenario = tmp_path / f"s{case.seed}.toml"
    scenario.write_text(to_toml(case.scenario.to_dict()), encoding="utf-8")
    out = tmp_path / f"out{case.seed}_{backend}"
    r = runner.invoke(app, ["solve", str(case.path), "--out", str(out), "--scenario",
                            str(scenario), "--backend", backend, "--no-elastic"])
    return r.exit_code, out, r.output


@pytest.mark.parametrize("backend", ["highs", "scip"])
def test_no_elastic_on_impossible_cases_exits_3_with_summary_only(
        tmp_path: Path, backend: str) -> None:
    for case in impossible_cases(4):
        code, out, output = solve_cli(case, tmp_path, backend)
        assert code == 3, (case.seed, backend, output)
        assert no_plan_files(out), case.seed
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        assert summary["status"].startswith("no plan found")
        assert not summary["elastic_mode"] and summary["solver"]["objective"] is None


@pytest.mark.parametrize("shape", ["protected", "neither_use"])
def test_cli_refuses_a_kept_illegal_building(tmp_path: Path, shape: str) -> None:
    """The two shapes that exited 2 with plan.csv: an illegal building that is protected, or that
    may become neither farmland (polluted) nor forest (inside the farmland protection space).
    The model is feasible (it cannot force the plot); the scenario is not."""
    case = feasible_case()
    case.path = Path(shutil.copy(case.path, tmp_path / "case.gpkg"))  # the shared file stays
    plots = gpd.read_file(case.path, layer=PLOTS_LAYER)
    k = int(np.flatnonzero(plots["land_use"].isin(["collective_industrial",
                                                   "rural_settlement"]))[0])
    plots.loc[k, "illegal"] = True
    if shape == "protected":
        plots.loc[k, "protected"] = True
    else:
        plots.loc[k, "polluted"] = True
        fps = gpd.read_file(case.path, layer="farmland_protection_space")
        fps = gpd.GeoDataFrame({"name": ["fps"] * (len(fps) + 1)},
                               geometry=[*fps.geometry, plots.geometry[k]], crs=plots.crs)
        pyogrio.write_dataframe(fps, case.path, layer="farmland_protection_space",
                                promote_to_multi=True)
    pyogrio.write_dataframe(plots, case.path, layer=PLOTS_LAYER)
    code, out, output = solve_cli(case, tmp_path, "highs")
    assert code == 3, output
    assert no_plan_files(out)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert [f["target"] for f in summary["impossible_targets"]] == ["must_vacate"]
    assert "illegal building kept" in summary["solver"]["message"]
    # without --no-elastic: the best plan, with the kept building reported (exit 2)
    scenario = tmp_path / f"s{case.seed}.toml"
    r = runner.invoke(app, ["solve", str(case.path), "--out", str(tmp_path / "auto"),
                            "--scenario", str(scenario)])
    assert r.exit_code == 2, r.output
    assert (tmp_path / "auto" / "plan.csv").exists()


def test_kept_illegal_building_is_refused_without_elastic_mode() -> None:
    """The shape that exited 2: an illegal building that may become neither use. The model is
    feasible (it does not force the plot); with elastic mode off the plan is refused."""
    for seed in range(1000, 1100):
        case = random_case(seed)
        s = case.scenario
        p = case.inst.plots
        s.contiguity.enabled = False
        s.targets.township_reduction_mu.clear()
        if case.path is not None or not solve_plan(case.inst, s, elastic=False).all_met:
            continue
        k = int(p.index[p["collective"]][0])
        p.loc[k, ["illegal", "polluted"]] = True
        p.loc[k, "share_farmland_protection_space"] = 1.0
        plan = solve_plan(case.inst, s, elastic=False)
        assert not plan.result.has_solution
        assert plan.result.termination is Termination.INFEASIBLE
        assert "illegal building kept" in plan.result.message
        assert [f.target for f in plan.findings] == ["must_vacate"]
        auto = solve_plan(case.inst, s)  # without --no-elastic: the best plan, explained
        assert auto.elastic and auto.result.has_solution and not auto.all_met
        return
    pytest.fail("no feasible grid case")
