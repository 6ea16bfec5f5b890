"""Outputs planners use, on imported survey data (16-digit parcel codes, Chinese names):
plan.xlsx (ids as text, never formulas, zh/en), the CSV re-saved by Excel (GBK or UTF-8, BOM or
not, scientific-notation ids explained), plan.gpkg with own attributes, zones, blocks and QGIS
styles, map.png in a packaged CJK font."""

from __future__ import annotations

import sqlite3
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import openpyxl
import pandas as pd
import pyogrio
import pytest
from survey_data import import_survey_instance, parcels
from typer.testing import CliRunner

from optimizer.cli import app
from optimizer.reporting.excel import write_xlsx

runner = CliRunner()


@pytest.fixture(scope="module")
def solved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("outputs")
    inst, scenario = import_survey_instance(root)
    r = runner.invoke(app, ["solve", str(inst), "--scenario", str(scenario), "--out",
                            str(root / "plan")])
    assert r.exit_code == 0, r.output
    return inst, scenario, root / "plan"


def test_plan_xlsx_has_four_sheets_and_ids_as_text(solved: tuple[Path, Path, Path]) -> None:
    _, _, out = solved
    wb = openpyxl.load_workbook(out / "plan.xlsx")
    assert wb.sheetnames == ["地块方案 plan", "指标 targets", "耕地连片 blocks", "乡镇 townships"]
    ws = wb["地块方案 plan"]
    header = [c.value for c in ws[1]]
    assert header[:2] == ["地块编号 plot_id", "处置方式 action"]
    ids = [c for (c,) in ws.iter_rows(min_row=2, max_col=1)]
    assert all(c.data_type == "s" for c in ids)
    assert [c.value for c in ids] == list(parcels()["标识码"])  # every digit kept
    actions = {c.value for (c,) in ws.iter_rows(min_row=2, min_col=2, max_col=2)}
    assert actions <= {"保留 keep", "复垦为耕地 farmland", "造林 forest"}
    towns = pd.read_excel(out / "plan.xlsx", sheet_name="乡镇 townships")
    assert set(towns["乡镇 township"]) == {"孙河乡", "崔各庄乡"}
    assert (towns["腾退面积（亩） vacated_mu"] >= towns["减量任务（亩） target_mu"] - 1e-6).all()


def test_xlsx_text_is_never_a_formula(tmp_path: Path) -> None:
    df = pd.DataFrame({"plot_id": ["=1+1", "0012", "1101052024000001"], "action": "keep",
                       "area_mu": [1.5, 2.0, 3.0]})
    for lang, action in (("en", "keep"), ("zh", "保留")):
        write_xlsx({"plan": df}, tmp_path / f"{lang}.xlsx", lang)
        ws = openpyxl.load_workbook(tmp_path / f"{lang}.xlsx").worksheets[0]
        cells = [ws.cell(row=r, column=1) for r in (2, 3, 4)]
        assert [c.value for c in cells] == ["=1+1", "0012", "1101052024000001"]
        assert all(c.data_type == "s" for c in cells)
        assert ws.cell(row=2, column=2).value == action
        assert ws.cell(row=2, column=3).data_type == "n"


@pytest.mark.parametrize("encoding", ["gbk", "utf-8", "utf-8-sig"])
def test_check_reads_the_csv_as_excel_saves_it(solved: tuple[Path, Path, Path], tmp_path: Path,
                                               encoding: str) -> None:
    inst, scenario, out = solved
    table = pd.read_csv(out / "plan.csv", dtype={"plot_id": str})
    resaved = tmp_path / "plan.csv"
    table.to_csv(resaved, index=False, encoding=encoding, lineterminator="\r\n")
    r = runner.invoke(app, ["check", str(inst), str(resaved), "--scenario", str(scenario)])
    assert r.exit_code == 0, r.output


def test_scientific_notation_ids_are_explained(solved: tuple[Path, Path, Path],
                                               tmp_path: Path) -> None:
    inst, scenario, out = solved
    table = pd.read_csv(out / "plan.csv", dtype={"plot_id": str})
    table["plot_id"] = table["plot_id"].map(lambda s: f"{float(s):.5E}")  # as Excel shows them
    table.loc[0, "plot_id"] = "1.10105E+15"
    bad = tmp_path / "plan.csv"
    table.to_csv(bad, index=False, encoding="gbk")
    r = runner.invoke(app, ["check", str(inst), str(bad), "--scenario", str(scenario)])
    assert r.exit_code == 1
    text = " ".join(r.output.split())
    assert "'1.10105E+15'" in text and "scientific notation" in text and "plan.xlsx" in text


def test_plan_gpkg_keeps_own_attributes_and_styles(solved: tuple[Path, Path, Path]) -> None:
    _, _, out = solved
    gpkg = out / "plan.gpkg"
    layers = dict(pyogrio.list_layers(gpkg))
    assert {"plan", "zones", "blocks", "layer_styles"} <= set(layers)
    plan = pyogrio.read_dataframe(gpkg, layer="plan")
    src = parcels()
    assert list(plan["地类名称"]) == list(src["地类名称"])
    assert list(plan["plot_id"]) == list(src["标识码"])
    blocks = pyogrio.read_dataframe(gpkg, layer="blocks")
    farmland = plan.loc[plan["action"] == "farmland"]
    assert blocks["area_mu"].sum() == pytest.approx(farmland["area_mu"].sum())
    assert set(pyogrio.read_dataframe(gpkg, layer="zones")["zone"]) == {"farmland", "forest"}
    with sqlite3.connect(gpkg) as db:
        geom_cols = dict(db.execute("select table_name, column_name from gpkg_geometry_columns"))
        styles = db.execute("select f_table_name, f_geometry_column, styleQML, useAsDefault "
                            "from layer_styles").fetchall()
    assert {s[0] for s in styles} == {"plan", "zones", "blocks"}
    for name, column, qml, default in styles:
        assert column == geom_cols[name] and default
        root = ET.fromstring(qml.split("'SYSTEM'>", 1)[1])
        assert root.find("renderer-v2") is not None
    plan_qml = next(s[2] for s in styles if s[0] == "plan")
    values = {c.get("value") for c in
              ET.fromstring(plan_qml.split("'SYSTEM'>", 1)[1]).iter("category")}
    assert values == {"keep", "farmland", "forest"}


def test_map_draws_chinese_with_the_packaged_font(solved: tuple[Path, Path, Path],
                                                  tmp_path: Path) -> None:
    from instances.loader import load_instance
    from optimizer.model.scenario import load_scenario
    from optimizer.plan.solve import solve_plan
    from optimizer.reporting.maps import cjk_font, draw_plan_map

    assert cjk_font() == "Noto Sans CJK SC"
    inst_path, scenario, _ = solved
    inst = load_instance(inst_path)
    plan = solve_plan(inst, load_scenario(scenario))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw_plan_map(inst, plan, tmp_path / "map.png", title="孙河乡 方案", lang="zh")
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, missing
    assert (tmp_path / "map.png").stat().st_size > 10_000


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_html_is_self_contained(solved: tuple[Path, Path, Path]) -> None:
    import re

    page = (solved[2] / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no CDN, no web
    assert "<svg" in page and page.count("<path ") == len(parcels())
    assert "孙河乡" in page and "optimal" in page
    assert "@font-face{font-family:GreenbeltCJK;src:url(data:font/woff;base64," in page


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (CI installs it)")
def test_report_html_loads_in_headless_chromium(solved: tuple[Path, Path, Path],
                                               tmp_path: Path) -> None:
    import subprocess

    import matplotlib.image as mpimg
    import numpy as np

    report = solved[2] / "report.html"
    plot_id = parcels()["标识码"].iloc[3]
    url = f"{report.resolve().as_uri()}#plot={plot_id}"
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--virtual-time-budget=3000", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert 'data-errors=""' in dom, dom[:300]  # no script error, no console.error
    assert 'data-ready="1"' in dom
    assert f"<td>{plot_id}</td>" in dom  # the plot's row is shown (the click handler's path)
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, "--window-size=1200,900", f"--screenshot={shot}", url],
                   capture_output=True, timeout=120, check=True)
    rgb = (mpimg.imread(shot)[..., :3] * 255).round()
    farmland = np.all(np.abs(rgb - [242, 183, 1]) <= 3, axis=-1)
    forest = np.all(np.abs(rgb - [27, 120, 55]) <= 3, axis=-1)
    assert farmland.sum() > 2000 and forest.sum() > 2000  # the map is drawn with the plan
