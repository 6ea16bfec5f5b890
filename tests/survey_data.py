"""A planner's survey data as delivered: 三调图斑.shp in EPSG:4490 (CGCS2000 lon/lat), a GBK
attribute table without .cpg, Chinese field names, 是/否 and Y/N flags, empty cost fields on
non-construction land, 16-digit parcel codes, and an XLSX township table.

A 10 x 8 grid of 120 m cells near Sunhe (Chaoyang): columns 0-2 dry land / paddy (0103/0101),
3-5 collective rural homesteads and industry (0702/0601, ownership 30), column 6 state industry
(0601, ownership 10: urban, never a candidate), 7-8 arbor forest (0301), 9 river (1101).
Rows 0-3 are 孙河乡, rows 4-7 崔各庄乡.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import box

CELL_M = 120.0
ROWS, COLS = 8, 10
X0, Y0 = 460_000.0, 4_428_000.0  # EPSG:4548, north-east Chaoyang
TOWNSHIPS = ("孙河乡", "崔各庄乡")
CLASSES = {0: ("0103", "旱地"), 1: ("0101", "水田"), 2: ("0103", "旱地"),
           3: ("0702", "农村宅基地"), 4: ("0601", "工业用地"), 5: ("0702", "农村宅基地"),
           6: ("0601", "工业用地"), 7: ("0301", "乔木林地"), 8: ("0301", "乔木林地"),
           9: ("1101", "河流水面")}


def parcels() -> gpd.GeoDataFrame:
    """The parcels in EPSG:4490 with Chinese field names."""
    rows = []
    for r in range(ROWS):
        for c in range(COLS):
            code, name = CLASSES[c]
            construction = c in (3, 4, 5, 6)
            rows.append({
                "标识码": f"11010520240{r * COLS + c + 1:05d}",
                "地类编码": code,
                "地类名称": name,
                "权属性质": "10" if c == 6 else "30",
                "乡镇名称": TOWNSHIPS[r // 4],
                "年产值": f"{20 + 5 * r + c:.1f}" if construction else None,
                "拆除单价": f"{60 + 3 * r + c}" if construction else None,
                "复垦单价": "18" if construction else None,
                "造林单价": "12" if construction else None,
                "土壤适宜": "否" if (r, c) == (2, 5) else "是",
                "污染": "Y" if (r, c) == (6, 4) else "N",
                "违建": "是" if (r, c) == (1, 3) else "否",
                "保护": "是" if (r, c) == (7, 5) else "否",
                "图斑面积": round(CELL_M * CELL_M, 2),
                "geometry": box(X0 + c * CELL_M, Y0 - (r + 1) * CELL_M,
                                X0 + (c + 1) * CELL_M, Y0 - r * CELL_M),
            })
    return gpd.GeoDataFrame(rows, crs=4548).to_crs(4490)


def write_survey(folder: Path, gdf: gpd.GeoDataFrame | None = None) -> Path:
    """三调图斑.shp in GBK without .cpg; returns the .shp path."""
    folder.mkdir(parents=True, exist_ok=True)
    shp = folder / "三调图斑.shp"
    (gdf if gdf is not None else parcels()).to_file(shp, encoding="GBK", engine="pyogrio")
    for cpg in folder.glob("*.cpg"):
        cpg.unlink()
    assert not any(folder.glob("*.cpg"))
    return shp


def write_township_xlsx(path: Path, rows: list[tuple[str, float, float]] | None = None) -> Path:
    rows = rows or [("孙河乡", 100.0, 20_000.0), ("崔各庄乡", 80.0, 20_000.0)]
    pd.DataFrame(rows, columns=["乡镇名称", "减量任务（亩）", "预算（万元）"]).to_excel(
        path, index=False, engine="openpyxl")
    return path


def cell_area_mu() -> float:
    return float(np.round(CELL_M * CELL_M / (2000.0 / 3.0), 6))


def import_survey_instance(root: Path) -> tuple[Path, Path]:
    """The survey folder and township table written under `root`, imported with the shipped
    mapping (`greenbelt import ... --townships`): (instance GeoPackage, its scenario TOML)."""
    from typer.testing import CliRunner

    from optimizer.cli import app

    shp = write_survey(root / "data")
    xlsx = write_township_xlsx(root / "data" / "towns.xlsx")
    inst = root / "inst.gpkg"
    mapping = Path(__file__).resolve().parents[1] / "examples" / "survey_mapping.toml"
    r = CliRunner().invoke(app, ["import", str(shp), "--mapping", str(mapping), "--out",
                                 str(inst), "--townships", str(xlsx)])
    assert r.exit_code == 0, r.output
    return inst, root / "inst.scenario.toml"
