"""`greenbelt import`: a GBK Shapefile in EPSG:4490 with Chinese fields and an XLSX township
table go to a checked plan in two commands; every problem of bad data is reported in one pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
from survey_data import TOWNSHIPS, cell_area_mu, parcels, write_survey, write_township_xlsx
from typer.testing import CliRunner

from instances.loader import load_instance
from instances.survey.landclasses import class_lookup, is_collective, normalise_code
from optimizer.cli import app

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "examples" / "survey_mapping.toml"
runner = CliRunner()


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("survey")
    shp = write_survey(root / "data")
    xlsx = write_township_xlsx(root / "data" / "乡镇任务.xlsx")
    r = runner.invoke(app, ["import", str(shp), "--mapping", str(MAPPING), "--out",
                            str(root / "inst.gpkg"), "--townships", str(xlsx)])
    assert r.exit_code == 0, r.output
    assert "reprojected from EPSG:4490" in r.output
    return root


def test_import_then_solve_gives_a_checked_plan(imported: Path) -> None:
    inst, scenario = imported / "inst.gpkg", imported / "inst.scenario.toml"
    out = imported / "plan"
    r = runner.invoke(app, ["solve", str(inst), "--scenario", str(scenario), "--out", str(out),
                            "--time-limit", "60"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["check", str(inst), str(out / "plan.csv"), "--scenario",
                            str(scenario)])
    assert r.exit_code == 0, r.output
    plan = pd.read_csv(out / "plan.csv", dtype={"plot_id": str})
    src = parcels()
    assert list(plan["plot_id"]) == list(src["标识码"])  # 16-digit codes exact, same order
    np.testing.assert_allclose(plan["area_mu"], cell_area_mu(), atol=0.01)
    vacated = plan["action"] != "keep"
    cls = src["地类编码"].to_numpy()
    state = src["权属性质"].to_numpy() == "10"
    candidate = np.isin(cls, ["0702", "0601"]) & ~state
    assert not (vacated & ~candidate).any()  # state industry, farmland, forest never vacated
    assert vacated[src["违建"] == "是"].all()  # the illegal building is vacated
    assert not vacated[src["保护"] == "是"].any()  # the protected one is kept
    by_town = plan.loc[vacated].groupby("township")["area_mu"].sum()
    assert by_town[TOWNSHIPS[0]] >= 100 - 1e-6 and by_town[TOWNSHIPS[1]] >= 80 - 1e-6
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["all_targets_met"]


def test_the_instance_keeps_the_planners_attributes(imported: Path) -> None:
    inst = load_instance(imported / "inst.gpkg")
    assert inst.geometry.crs.to_epsg() == 4548
    for col in ("地类名称", "图斑面积", "标识码"):
        assert col in inst.plots.columns
    uses = inst.plots.set_index("标识码")["land_use"]
    assert uses["1101052024000004"] == "rural_settlement"  # row 0, column 3: 0702
    assert uses["1101052024000007"] == "urban"  # state-owned industry
    assert uses["1101052024000001"] == "farmland"
    flags = inst.plots.set_index("标识码")
    assert not flags.loc["1101052024000026", "soil_suitable"]  # row 2, column 5: 否
    assert flags.loc["1101052024000065", "polluted"]  # row 6, column 4: Y
    assert inst.plots["output_wan"].to_numpy()[inst.plots["land_use"] == "farmland"].max() == 0
    meta = pyogrio.read_dataframe(imported / "inst.gpkg", layer="meta")
    assert meta["key"].str.startswith("import_note_").any()


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    gdf = parcels()
    gdf.loc[3, "地类编码"] = "0799"  # no such class
    gdf.loc[4, "拆除单价"] = None  # empty cost on a candidate
    gdf.loc[13, "污染"] = "maybe"  # not a yes/no word
    gdf.loc[14, "年产值"] = "-5"  # negative
    gdf.loc[15, "标识码"] = gdf.loc[16, "标识码"]  # duplicate id
    gdf.loc[0, "拆除单价"] = None  # empty cost on farmland: allowed (0)
    shp = write_survey(tmp_path / "bad", gdf)
    out = tmp_path / "bad.gpkg"
    r = runner.invoke(app, ["import", str(shp), "--mapping", str(MAPPING), "--out", str(out)])
    assert r.exit_code == 1
    text = " ".join(r.output.split())
    assert "5 problem(s)" in text, text
    for expected in ("row 4, field '地类编码': value '0799'",
                     "row 5, field '拆除单价': value ''",
                     "row 14, field '污染': value 'maybe'",
                     "row 15, field '年产值': value '-5'",
                     "row 17, field '标识码'"):
        assert expected in text, expected
    assert not out.exists()


def test_a_misspelt_township_names_the_close_match(imported: Path, tmp_path: Path) -> None:
    csv = tmp_path / "towns.csv"
    pd.DataFrame({"乡镇": ["孙河镇"], "减量任务": [10]}).to_csv(csv, index=False,
                                                           encoding="gbk")
    r = runner.invoke(app, ["import", str(imported / "data" / "三调图斑.shp"), "--mapping",
                            str(MAPPING), "--out", str(tmp_path / "i.gpkg"), "--townships",
                            str(csv)])
    assert r.exit_code == 1
    text = " ".join(r.output.split())
    assert "township '孙河镇' is not in the instance; did you mean 孙河乡?" in text, text


def test_land_class_table_codes_names_and_ownership() -> None:
    table = class_lookup({"1201": "forest"})
    assert table[normalise_code("103")] == ("farmland", "farmland")  # leading zero lost
    assert table[normalise_code("702.0")] == ("rural_settlement", "rural_settlement")
    assert table["工业用地"] == ("collective_industrial", "urban")
    assert table["05h1".upper()] == ("collective_industrial", "urban")
    assert table["1201"] == ("forest", "forest")
    assert is_collective("30") and is_collective("集体土地所有权") and is_collective("40.0")
    assert not is_collective("10") and not is_collective("国有土地使用权")


def test_a_layer_of_a_geopackage_in_wgs84_with_a_zone_layer(tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import box
    from survey_data import CELL_M, X0, Y0

    gpkg = tmp_path / "survey.gpkg"
    parcels().to_crs(4326).to_file(gpkg, layer="DLTB", engine="pyogrio")
    gpd.GeoDataFrame({"note": ["x"]}, geometry=[box(0, 0, 1, 1)], crs=4326).to_file(
        gpkg, layer="其他", engine="pyogrio")
    belt = gpd.GeoDataFrame({"名称": ["一道绿隔"]}, crs=4548, geometry=[box(
        X0 + 3 * CELL_M, Y0 - 4 * CELL_M, X0 + 6 * CELL_M, Y0)]).to_crs(4490)
    belt.to_file(tmp_path / "一道绿隔.shp", encoding="GBK", engine="pyogrio")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(MAPPING.read_text(encoding="utf-8")
                       + '\n[zones.green_belt_1]\nfile = "一道绿隔.shp"\n', encoding="utf-8")
    out = tmp_path / "inst.gpkg"
    r = runner.invoke(app, ["import", str(gpkg), "--mapping", str(mapping), "--out", str(out)])
    assert r.exit_code == 1 and "holds 2 layers" in " ".join(r.output.split())
    r = runner.invoke(app, ["import", str(gpkg), "--layer", "DLTB", "--mapping", str(mapping),
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "reprojected from EPSG:4326" in " ".join(r.output.split())
    inst = load_instance(out)
    in_belt = np.zeros((8, 10), dtype=bool)
    in_belt[:4, 3:6] = True
    np.testing.assert_allclose(inst.plots["share_green_belt_1"], in_belt.ravel(), atol=1e-3)
    np.testing.assert_allclose(inst.plots["share_priority"], in_belt.ravel(), atol=1e-3)
    assert float(inst.meta["district_priority_mu"]) == pytest.approx(12 * cell_area_mu(),
                                                                     rel=1e-3)


def test_solve_takes_a_township_table_directly(imported: Path, tmp_path: Path) -> None:
    csv = tmp_path / "乡镇.csv"
    pd.DataFrame({"实施单元": ["崔各庄乡"], "减量目标（亩）": ["150"]}).to_csv(
        csv, index=False, encoding="gbk")
    r = runner.invoke(app, ["solve", str(imported / "inst.gpkg"), "--townships", str(csv),
                            "--scenario", str(imported / "inst.scenario.toml"),
                            "--out", str(tmp_path / "plan")])  # the table overrides 80 mu
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "plan" / "summary.json").read_text(encoding="utf-8"))
    row = next(t for t in summary["targets"] if t["scope"] == "崔各庄乡")
    assert row["required"] == 150 and row["achieved"] >= 150 - 1e-6
