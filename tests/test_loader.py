"""load_instance: round trips of valid files, and one test per kind of bad input."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from instances.errors import InstanceError
from instances.loader import load_instance
from instances.schema import CRS_EPSG, LAND_USES, M2_PER_MU, PLOT_COLUMNS, ZONE_LAYERS

X0, Y0 = 500_000.0, 4_400_000.0


def square(col: int, row: int, side: float = 100.0) -> shapely.Polygon:
    return shapely.box(X0 + side * col, Y0 + side * row, X0 + side * (col + 1),
                       Y0 + side * (row + 1))


def valid_layers() -> dict[str, gpd.GeoDataFrame]:
    """A 2 x 2 grid of 100 m squares (P0 P1 bottom, P2 P3 top); belt 1 covers the left column."""
    plots = gpd.GeoDataFrame(
        {"plot_id": ["P0", "P1", "P2", "P3"], "district": ["朝阳区", "朝阳区", "海淀区", "海淀区"],
         "township": ["十八里店乡", "十八里店乡", "四季青镇", "四季青镇"],
         "land_use": ["collective_industrial", "rural_settlement", "farmland", "urban"],
         "output_wan": [12.5, 3.0, 0.0, 40.0], "demolition_wan_per_mu": [50.0, 40.0, 0.0, 90.0],
         "reclaim_wan_per_mu": [2.0, 2.5, 0.0, 3.0], "afforest_wan_per_mu": [1.0, 1.0, 0.0, 1.5],
         "soil_suitable": [True, True, True, False], "polluted": [False, True, False, False],
         "illegal": [True, False, False, False], "protected": [False, False, False, True],
         "note": ["a", "b", "c", "d"]},
        geometry=[square(0, 0), square(1, 0), square(0, 1), square(1, 1)], crs=CRS_EPSG)
    layers = {"plots": plots}
    for name in ZONE_LAYERS:  # every zone layer present, all but two empty
        layers[name] = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=CRS_EPSG))
    layers["green_belt_1"] = gpd.GeoDataFrame({"name": ["一绿"]}, geometry=[shapely.box(
        X0, Y0, X0 + 100, Y0 + 200)], crs=CRS_EPSG)
    layers["farmland"] = gpd.GeoDataFrame(geometry=[square(0, 1)], crs=CRS_EPSG)
    layers["townships"] = gpd.GeoDataFrame(
        {"township": ["十八里店乡", "四季青镇"], "district": ["朝阳区", "海淀区"]},
        geometry=[shapely.box(X0, Y0, X0 + 200, Y0 + 100),
                  shapely.box(X0, Y0 + 100, X0 + 200, Y0 + 200)], crs=CRS_EPSG)
    return layers


META = pd.DataFrame({"key": ["city_plain_mu", "source"], "value": ["9.4e6", "测试"]})


def write_gpkg(path: Path, layers: dict[str, gpd.GeoDataFrame],
               meta: pd.DataFrame | None = META) -> Path:
    for name, layer in layers.items():
        layer.to_file(path, layer=name)
    if meta is not None:
        pyogrio.write_dataframe(meta, path, layer="meta")
    return path


def write_shapefiles(folder: Path, layers: dict[str, gpd.GeoDataFrame],
                     encoding: str) -> Path:
    folder.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # column names truncated to 10 characters: on purpose
        for name, layer in layers.items():
            layer.to_file(folder / f"{name}.shp", encoding=encoding, geometry_type="Polygon")
    return folder


def check_round_trip(inst, source: Path) -> None:
    plots = inst.plots
    assert inst.num_plots == 4 and isinstance(plots.index, pd.RangeIndex)
    assert plots["plot_id"].tolist() == ["P0", "P1", "P2", "P3"]
    assert all(isinstance(v, str) for v in plots["plot_id"])
    assert plots["district"].tolist() == ["朝阳区", "朝阳区", "海淀区", "海淀区"]
    assert plots["township"].tolist()[2] == "四季青镇"
    for name, (kind, _) in PLOT_COLUMNS.items():
        assert name in plots.columns
        if kind == "float":
            assert plots[name].dtype == np.float64
        if kind == "bool":
            assert plots[name].dtype == bool
    assert plots["output_wan"].tolist() == [12.5, 3.0, 0.0, 40.0]
    assert plots["polluted"].tolist() == [False, True, False, False]
    assert plots["protected"].tolist() == [False, False, False, True]
    assert plots["note"].tolist() == ["a", "b", "c", "d"]  # extra columns are kept
    np.testing.assert_allclose(plots["area_mu"], 10_000 / M2_PER_MU)
    np.testing.assert_allclose(plots["share_green_belt_1"], [1, 0, 1, 0])
    np.testing.assert_allclose(plots["share_priority"], [1, 0, 1, 0])
    assert plots["collective"].tolist() == [True, True, False, False]
    # P2 is farmland (layer and land use); P0 and P3 share an edge with it, P1 only a corner
    assert plots["touches_farmland"].tolist() == [True, False, True, True]
    assert not plots["touches_forest"].any()
    assert inst.adjacency.nnz == 8 and inst.adjacency.sum() == pytest.approx(800)
    assert inst.geometry.crs.to_epsg() == CRS_EPSG and len(inst.geometry) == 4
    assert set(ZONE_LAYERS) <= set(inst.zones) and len(inst.zones["central_city"]) == 0
    assert inst.zones["townships"]["township"].tolist() == ["十八里店乡", "四季青镇"]
    assert inst.stats["farmland_in_priority_mu"] == pytest.approx(15)
    assert inst.stats["study_area_mu"] == pytest.approx(60)
    assert inst.source == str(source)


def test_geopackage_round_trip(tmp_path: Path) -> None:
    path = write_gpkg(tmp_path / "inst.gpkg", valid_layers())
    steps: list[tuple[str, float]] = []
    inst = load_instance(path, progress=lambda step, fraction: steps.append((step, fraction)))
    check_round_trip(inst, path)
    assert inst.name == "inst"
    assert inst.meta == {"city_plain_mu": "9.4e6", "source": "测试"}
    fractions = [f for _, f in steps]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0


@pytest.mark.parametrize("cpg", ["kept", "deleted", "deleted, encoding given"])
def test_shapefile_directory_in_gbk(tmp_path: Path, cpg: str) -> None:
    folder = write_shapefiles(tmp_path / "layers", valid_layers(), encoding="GBK")
    raw = (folder / "plots.dbf").read_bytes()
    assert "朝阳区".encode("gbk") in raw and "朝阳区".encode() not in raw  # really GBK
    if cpg != "kept":
        for file in folder.glob("*.cpg"):
            file.unlink()
    encoding = "gbk" if cpg.endswith("given") else None
    inst = load_instance(folder, layers_dir_encoding=encoding)
    check_round_trip(inst, folder)
    assert load_instance(folder / "plots.shp").plots.equals(inst.plots)  # a layer names its folder
    assert inst.name == "layers" and inst.meta == {}


def test_shapefile_directory_in_utf8_without_cpg(tmp_path: Path) -> None:
    folder = write_shapefiles(tmp_path / "utf8", valid_layers(), encoding="UTF-8")
    for file in folder.glob("*.cpg"):
        file.unlink()
    META.to_csv(folder / "meta.csv", index=False, encoding="utf-8-sig")  # as Excel saves it
    inst = load_instance(folder)
    check_round_trip(inst, folder)
    assert inst.meta == {"city_plain_mu": "9.4e6", "source": "测试"}


def test_flag_spellings_and_column_case(tmp_path: Path) -> None:
    layers = valid_layers()
    plots = layers["plots"]
    plots["polluted"] = ["Yes", "no", "TRUE", "false"]
    plots["illegal"] = [1, 0, 0, 1]
    plots["protected"] = ["0", "1", "yEs", "No"]
    layers["plots"] = plots.rename(columns={"output_wan": "Output_Wan"})
    inst = load_instance(write_gpkg(tmp_path / "flags.gpkg", layers))
    assert inst.plots["polluted"].tolist() == [True, False, True, False]
    assert inst.plots["illegal"].tolist() == [True, False, False, True]
    assert inst.plots["protected"].tolist() == [False, True, True, False]
    assert inst.plots["output_wan"].tolist() == [12.5, 3.0, 0.0, 40.0]


def test_numeric_plot_ids_become_strings(tmp_path: Path) -> None:
    layers = valid_layers()
    layers["plots"]["plot_id"] = [101, 102, 103, 104]
    inst = load_instance(write_gpkg(tmp_path / "ids.gpkg", layers))
    assert inst.plots["plot_id"].tolist() == ["101", "102", "103", "104"]


def test_zone_layer_in_another_crs_is_reprojected(tmp_path: Path) -> None:
    layers = valid_layers()
    layers["green_belt_1"] = layers["green_belt_1"].to_crs(4326)
    inst = load_instance(write_gpkg(tmp_path / "wgs.gpkg", layers))
    np.testing.assert_allclose(inst.plots["share_green_belt_1"], [1, 0, 1, 0], atol=1e-6)
    assert inst.zones["green_belt_1"].crs.to_epsg() == CRS_EPSG


def test_invalid_geometry_is_repaired_with_a_warning(tmp_path: Path) -> None:
    layers = valid_layers()
    # P1 as a bow tie over its square: repaired into two triangles of 2,500 m² each
    x, y = X0 + 100, Y0
    layers["plots"].loc[1, "geometry"] = shapely.Polygon(
        [(x, y), (x + 100, y + 100), (x + 100, y), (x, y + 100)])
    with pytest.warns(UserWarning, match=r"row 2 \(plot_id 'P1'\).*Self-intersection"):
        inst = load_instance(write_gpkg(tmp_path / "bowtie.gpkg", layers))
    assert inst.plots["area_mu"][1] == pytest.approx(5_000 / M2_PER_MU)
    assert inst.geometry[1].is_valid


# ---------------------------------------------------------------- bad input: one line each


def load_error(path: Path, **kwargs: object) -> str:
    with pytest.raises(InstanceError) as info:
        load_instance(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(str(path))
    return message


def bad_plots(tmp_path: Path, change: Callable[[gpd.GeoDataFrame], object]) -> Path:
    layers = valid_layers()
    change(layers["plots"])
    return write_gpkg(tmp_path / "bad.gpkg", layers)


def set_cell(column: str, row: int, value: object) -> Callable[[gpd.GeoDataFrame], None]:
    def change(plots: gpd.GeoDataFrame) -> None:
        if column != "geometry":
            plots[column] = plots[column].astype(object)
        plots.loc[row, column] = value
    return change


@pytest.mark.parametrize(
    ("change", "where", "problem"),
    [
        (set_cell("output_wan", 2, -3.0), "row 3 (plot_id 'P2'), field 'output_wan'",
         "negative value -3.0"),
        (set_cell("reclaim_wan_per_mu", 1, np.nan),
         "row 2 (plot_id 'P1'), field 'reclaim_wan_per_mu'", "missing value (NaN)"),
        (set_cell("afforest_wan_per_mu", 0, "abc"),
         "row 1 (plot_id 'P0'), field 'afforest_wan_per_mu'", "not a number 'abc'"),
        (set_cell("land_use", 3, "factory"), "row 4 (plot_id 'P3'), field 'land_use'",
         "unknown land_use 'factory' (valid: " + ", ".join(LAND_USES) + ")"),
        (set_cell("polluted", 1, "maybe"), "row 2 (plot_id 'P1'), field 'polluted'",
         "not a yes/no value 'maybe'"),
        (set_cell("soil_suitable", 0, 2), "row 1 (plot_id 'P0'), field 'soil_suitable'",
         "not a yes/no value"),
        (set_cell("illegal", 2, None), "row 3 (plot_id 'P2'), field 'illegal'",
         "missing value"),
        (set_cell("township", 1, " "), "row 2 (plot_id 'P1'), field 'township'",
         "missing value"),
        (set_cell("plot_id", 3, "P1"), "row 4 (plot_id 'P1'), field 'plot_id'",
         "duplicate plot_id, also at row 2"),
        (set_cell("plot_id", 2, None), "row 3, field 'plot_id'", "missing value"),
        (set_cell("geometry", 1, None), "row 2 (plot_id 'P1'), field 'geometry'",
         "empty or null geometry"),
        (set_cell("geometry", 3, shapely.Polygon()), "row 4 (plot_id 'P3'), field 'geometry'",
         "empty or null geometry"),
        (set_cell("geometry", 0, shapely.Point(X0, Y0)), "row 1 (plot_id 'P0'), field "
         "'geometry'", "geometry is a Point, not a Polygon or MultiPolygon"),
        (set_cell("geometry", 2, shapely.Polygon([(X0, Y0), (X0 + 50, Y0), (X0 + 100, Y0)])),
         "row 3 (plot_id 'P2'), field 'geometry'", "does not repair into a polygon"),
        (set_cell("geometry", 3, square(0, 0).buffer(-10)),  # inside P0
         "row 1 (plot_id 'P0'), field 'geometry'",
         "overlaps row 4 (plot_id 'P3') by 6400.0 m² (100.0% of the smaller plot)"),
        (set_cell("land_use", 0, "bad\nvalue"), "row 1 (plot_id 'P0'), field 'land_use'",
         "unknown land_use 'bad\\nvalue'"),
    ],
)
def test_bad_plot_values(tmp_path: Path, change: Callable[[gpd.GeoDataFrame], None],
                         where: str, problem: str) -> None:
    path = bad_plots(tmp_path, change)
    message = load_error(path)
    assert message.startswith(f"{path}: layer 'plots', {where}: ")
    assert problem in message


def test_overlap_names_both_plots_and_slivers_pass(tmp_path: Path) -> None:
    shift = {"P1": -0.004, "P3": -30.0}  # P1: 0.4 m² sliver over P0 (passes); P3: 3,000 m²

    def change(plots: gpd.GeoDataFrame) -> None:
        for k in (1, 3):
            plots.loc[k, "geometry"] = shapely.affinity.translate(
                plots.geometry[k], xoff=shift[plots.loc[k, "plot_id"]])

    message = load_error(bad_plots(tmp_path, change))
    assert "row 3 (plot_id 'P2'), field 'geometry': overlaps row 4 (plot_id 'P3') by " \
           "3000.0 m² (30.0% of the smaller plot)" in message


def test_missing_file(tmp_path: Path) -> None:
    message = load_error(tmp_path / "nowhere.gpkg")
    assert "no such file or directory" in message


def test_not_a_geopackage(tmp_path: Path) -> None:
    path = tmp_path / "notes.gpkg"
    path.write_text("not a database")
    assert "not a GeoPackage or a directory of Shapefiles" in load_error(path)


def test_missing_zone_layer(tmp_path: Path) -> None:
    layers = valid_layers()
    del layers["forest"]
    path = write_gpkg(tmp_path / "noforest.gpkg", layers)
    message = load_error(path)
    assert message.startswith(f"{path}: layer 'forest': missing layer (layers found: ")


def test_missing_plots_shapefile(tmp_path: Path) -> None:
    layers = valid_layers()
    del layers["plots"]
    folder = write_shapefiles(tmp_path / "noplots", layers, encoding="UTF-8")
    message = load_error(folder)
    assert message.startswith(f"{folder / 'plots.shp'}: layer 'plots': missing layer")


def test_missing_column(tmp_path: Path) -> None:
    def change(plots: gpd.GeoDataFrame) -> None:
        del plots["polluted"], plots["illegal"]

    path = bad_plots(tmp_path, change)
    message = load_error(path)
    assert message == (f"{path}: layer 'plots', field 'polluted': missing column "
                       f"(also missing: illegal)")


def test_missing_crs(tmp_path: Path) -> None:
    folder = write_shapefiles(tmp_path / "noprj", valid_layers(), encoding="UTF-8")
    (folder / "plots.prj").unlink()
    message = load_error(folder)
    assert message.startswith(f"{folder / 'plots.shp'}: layer 'plots', field 'geometry': "
                              f"no coordinate reference system")


def test_missing_crs_on_a_zone_layer(tmp_path: Path) -> None:
    layers = valid_layers()
    layers["green_belt_1"] = layers["green_belt_1"].set_crs(None, allow_override=True)
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        path = write_gpkg(tmp_path / "zone.gpkg", layers)
    message = load_error(path)
    assert "layer 'green_belt_1', field 'geometry': no coordinate reference system" in message


@pytest.mark.parametrize(("epsg", "kind"), [(4326, "is geographic (degrees)"),
                                             (2263, "is in US survey foot")])
def test_crs_not_in_metres(tmp_path: Path, epsg: int, kind: str) -> None:
    layers = valid_layers()
    layers["plots"] = layers["plots"].to_crs(epsg)
    path = write_gpkg(tmp_path / f"crs{epsg}.gpkg", layers)
    message = load_error(path)
    assert message.startswith(f"{path}: layer 'plots', field 'geometry': CRS EPSG:{epsg} (")
    assert kind in message and "EPSG:4548" in message


def test_empty_plots_layer(tmp_path: Path) -> None:
    layers = valid_layers()
    layers["plots"] = layers["plots"].iloc[:0]
    path = write_gpkg(tmp_path / "empty.gpkg", layers)
    assert load_error(path) == f"{path}: layer 'plots': no plots (the layer is empty)"


def test_non_polygon_zone_geometry(tmp_path: Path) -> None:
    layers = valid_layers()
    layers["river_channel"] = gpd.GeoDataFrame(
        geometry=[shapely.LineString([(X0, Y0), (X0 + 50, Y0 + 50)])], crs=CRS_EPSG)
    message = load_error(write_gpkg(tmp_path / "river.gpkg", layers))
    assert "layer 'river_channel', row 1, field 'geometry': geometry is a LineString" in message


def test_duplicate_meta_key(tmp_path: Path) -> None:
    meta = pd.DataFrame({"key": ["a", "b", "a"], "value": ["1", "2", "3"]})
    path = write_gpkg(tmp_path / "meta.gpkg", valid_layers(), meta=meta)
    assert load_error(path) == f"{path}: layer 'meta', row 3, field 'key': duplicate key 'a'"
