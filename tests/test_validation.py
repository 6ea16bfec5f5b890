"""Bad numbers and bad files end as one line naming file and field, before any solving; valid
ones that were refused are accepted (issues 14 and 15)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from instances.errors import InstanceError
from instances.loader import load_instance
from optimizer.cli import app
from optimizer.model.scenario import ScenarioError, load_scenario, scenario_from_dict
from optimizer.model.targets import target_families
from optimizer.reporting.maps import draw_plan_map
from tests.conftest import grid_instance
from tests.test_loader import valid_layers, write_gpkg

runner = CliRunner()


def one_line_error(message: str, *fragments: str) -> None:
    assert "Traceback" not in message
    lines = [line for line in message.splitlines() if line.strip()]
    assert len(lines) == 1, message
    for f in fragments:
        assert f in message, (f, message)


# ---------------------------------------------------------------- scenario numbers


@pytest.mark.parametrize(("text", "field"), [
    ("[solver]\ntime_limit = nan\n", "[solver] time_limit"),
    ("[solver]\ntime_limit = 0\n", "[solver] time_limit"),
    ("[solver]\ntime_limit = -5\n", "[solver] time_limit"),
    ("[solver]\nmip_gap = nan\n", "[solver] mip_gap"),
    ("[budget]\ntotal_wan = nan\n", "[budget] total_wan"),
    ("[targets]\ncentral_reduction_mu = inf\n", "[targets] central_reduction_mu"),
    ("[targets]\ntotal_reduction_mu = 1e300\n", "[targets] total_reduction_mu"),
    ("[elastic]\npenalty = inf\n", "[elastic] penalty"),
    ("[targets]\ntownship_reduction_mu = { a = nan }\n", "township_reduction_mu.a"),
    ("[contiguity]\nmin_block_mu = inf\n", "[contiguity] min_block_mu"),
])
def test_meaningless_numbers_are_refused(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    one_line_error(str(err.value), str(path), field)


def test_documented_flow_method_is_accepted() -> None:
    assert scenario_from_dict({"contiguity": {"method": "flow"}}).contiguity.method == "flow"
    with pytest.raises(ScenarioError, match="not one of auto, branch_and_cut, rowgen, flow"):
        scenario_from_dict({"contiguity": {"method": "magic"}})


def test_scenario_with_a_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "notepad.toml"
    path.write_bytes(b"\xef\xbb\xbf" + b'[solver]\ntime_limit = 7\n')
    assert load_scenario(path).solver.time_limit == 7


def test_scenario_in_gbk_or_a_folder_is_one_line(tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.toml"
    gbk.write_bytes('name = "朝阳区方案"\n'.encode("gbk"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(gbk)
    one_line_error(str(err.value), str(gbk), "UTF-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path)
    one_line_error(str(err.value), str(tmp_path), "folder")


def test_cli_time_limit_must_be_positive(tmp_path: Path) -> None:
    for value in ("-5", "0", "nan"):
        r = runner.invoke(app, ["solve", str(tmp_path / "i.gpkg"), "--out", str(tmp_path / "o"),
                                "--time-limit", value])
        assert r.exit_code == 1, r.output
        one_line_error(r.output, "--time-limit")


# ---------------------------------------------------------------- township names


@pytest.mark.parametrize("section", ["targets.township_reduction_mu", "budget.township_wan"])
def test_unknown_township_names_close_matches(section: str) -> None:
    inst = grid_instance(np.random.default_rng(1), 2, 3)
    inst.plots["township"] = ["chaoyang-03", "chaoyang-13"] * 3
    top, key = section.split(".")
    s = scenario_from_dict({top: {key: {"chaoyang-3": 1.0}}})
    with pytest.raises(ScenarioError) as err:
        target_families(inst, s)
    one_line_error(str(err.value), key, "'chaoyang-3'", "did you mean", "'chaoyang-03'")
    ok = scenario_from_dict({top: {key: {"chaoyang-03": 1.0}}})
    assert target_families(inst, ok)


# ---------------------------------------------------------------- instance values


def _sqlite_update(path: Path, sql: str) -> None:
    con = sqlite3.connect(path)
    for name in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
        con.create_function(name, -1, lambda *a: 0)  # the GeoPackage's R-tree triggers
    con.execute(sql)
    con.commit()
    con.close()


@pytest.mark.parametrize(("sql", "fragments"), [
    ("UPDATE plots SET output_wan = 'abc' WHERE fid = 2",
     ("row 2 (plot_id 'P1')", "field 'output_wan'", "'abc'")),
    ("UPDATE plots SET polluted = 'zz' WHERE fid = 3",
     ("row 3 (plot_id 'P2')", "field 'polluted'", "'zz'")),
    ("UPDATE plots SET demolition_wan_per_mu = 1e300 WHERE fid = 4",
     ("row 4 (plot_id 'P3')", "field 'demolition_wan_per_mu'", "1e+300")),
])
def test_typed_plot_values_that_do_not_convert(tmp_path: Path, sql: str,
                                               fragments: tuple[str, ...]) -> None:
    path = write_gpkg(tmp_path / "i.gpkg", valid_layers())
    _sqlite_update(path, sql)
    with pytest.raises(InstanceError) as err:
        load_instance(path)
    one_line_error(str(err.value), str(path), *fragments)


@pytest.mark.parametrize(("key", "value", "fragment"), [
    ("city_central_mu", "n/a", "is not a number"),
    ("district_central_mu", "-17698", "is negative"),
    ("city_priority_mu", "0", "above 0"),
    ("district_total_mu", "inf", "finite"),
])
def test_meta_reference_areas_are_validated(tmp_path: Path, key: str, value: str,
                                            fragment: str) -> None:
    meta = pd.DataFrame({"key": ["source", key], "value": ["test", value]})
    path = write_gpkg(tmp_path / "i.gpkg", valid_layers(), meta)
    with pytest.raises(InstanceError) as err:
        load_instance(path)
    one_line_error(str(err.value), str(path), "layer 'meta', row 2", key, fragment)


# ---------------------------------------------------------------- files and names


def test_dollar_signs_in_the_instance_name_do_not_break_the_map(tmp_path: Path) -> None:
    inst = grid_instance(np.random.default_rng(2), 2, 2)
    inst.name = r"plan $\badcommand{x}$ 50%"
    actions = np.array([0, 1, 2, 0], dtype=np.int8)

    class P:
        status = "optimal"
        blocks = None

    P.actions = actions
    draw_plan_map(inst, P(), tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 0


def test_plan_path_that_is_a_folder(tmp_path: Path) -> None:
    path = write_gpkg(tmp_path / "i.gpkg", valid_layers())
    r = runner.invoke(app, ["check", str(path), str(tmp_path)])
    assert r.exit_code == 1
    one_line_error(r.output, str(tmp_path), "folder")


def test_unknown_township_in_check_is_one_line(tmp_path: Path) -> None:
    path = write_gpkg(tmp_path / "i.gpkg", valid_layers())
    pd.DataFrame({"plot_id": ["P0", "P1", "P2", "P3"], "action": "keep"}).to_csv(
        tmp_path / "plan.csv", index=False)
    sc = tmp_path / "s.toml"
    sc.write_text('[budget]\ntownship_wan = { "十八里店" = 5 }\n', encoding="utf-8")
    r = runner.invoke(app, ["check", str(path), str(tmp_path / "plan.csv"), "--scenario",
                            str(sc)])
    assert r.exit_code == 1
    one_line_error(r.output, "'十八里店' is not a township", "十八里店乡")

