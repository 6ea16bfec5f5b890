"""`import_survey`: a planner's own parcels (any vector file or layer) + a mapping file -> a
validated instance GeoPackage in the format of `instances/schema.py`.

Every problem of the data is found in one pass and reported together (SurveyError.lines); the
decisions taken for the planner (reprojection, assumed values, absent zone layers) are returned as
notes and stored in the instance's `meta` table (`import_note_<k>`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from instances.generator import write_layers, zone_frame
from instances.schema import (
    CANDIDATE_LAND_USES,
    CRS_EPSG,
    LAND_USES,
    M2_PER_MU,
    META_LAYER,
    PLOT_COLUMNS,
    PLOTS_LAYER,
    PRIORITY_LAYERS,
    TOWNSHIPS_LAYER,
    ZONE_LAYERS,
)
from instances.survey.landclasses import class_lookup, is_collective, normalise_code
from instances.survey.mapping import FLAG_COLUMNS, NUMBER_COLUMNS, Mapping
from instances.survey.values import Problems, blank, fill_value, flags, numbers, texts

FALLBACK_ENCODING = "gb18030"  # superset of GBK, the usual encoding of Chinese Shapefiles
# Citywide reference areas (mu) for the district share of "auto" targets (seed figures):
# central city 1,378 km2, priority zones 1,220 km2, plain 6,338 km2, Beijing 16,410 km2.
CITY_REFERENCE_MU = {"central": 1378 * 1500.0, "priority": 1220 * 1500.0,
                     "plain": 6338 * 1500.0, "total": 16410 * 1500.0}
# What the tool assumes when a zone layer is absent.
ABSENT_ZONE = {
    "central_city": "no plot lies in the central city: the central-city targets do not apply",
    "plain_area": "no plot lies in the plain area: the plain-area targets do not apply",
    "green_belt_1": "no first green belt",
    "green_belt_2": "no second green belt",
    "green_wedges": "no green wedges",
    "water_source": "no water-source protection zone: no plot is barred from farmland by it",
    "river_channel": "no river channel: no plot is barred from farmland by it",
    "farmland_protection_space": "no farmland protection space: no plot is barred from "
                                 "forest by it",
}


class SurveyError(ValueError):
    """Problems in the planner's data: `lines` holds every one (row, field, value, expected)."""

    def __init__(self, file: str, layer: str | None, lines: list[str]) -> None:
        self.file, self.layer, self.lines = file, layer, lines
        where = f"{file}" + (f", layer '{layer}'" if layer else "")
        super().__init__(f"{where}: {len(lines)} problem(s): " + "; ".join(lines[:3])
                         + ("; ..." if len(lines) > 3 else ""))


@dataclass
class ImportResult:
    path: Path
    plots: int
    land_uses: dict[str, int]
    candidates: int
    townships: list[str]
    notes: list[str] = field(default_factory=list)


def read_vector(path: Path, layer: str | None, encoding: str | None) -> tuple[gpd.GeoDataFrame,
                                                                              str | None]:
    """Any vector file GDAL reads (Shapefile, GeoPackage, FileGDB, GeoJSON...) and its layer.
    A Shapefile without .cpg is read as UTF-8 if it decodes, else as GBK (GB18030)."""
    if not path.exists():
        raise SurveyError(str(path), layer, ["no such file"])
    try:
        layers = [str(x) for x in pyogrio.list_layers(path)[:, 0]]
    except Exception as exc:
        raise SurveyError(str(path), layer, [f"not a vector file GDAL can read ({exc})"]) from None
    if layer is None:
        if len(layers) > 1:
            raise SurveyError(str(path), None, [f"holds {len(layers)} layers "
                                                f"({', '.join(layers)}): name one (layer = ...)"])
        layer = layers[0]
    elif layer not in layers:
        close = difflib.get_close_matches(layer, layers, n=3, cutoff=0.3)
        raise SurveyError(str(path), layer, [f"no such layer (layers: {', '.join(layers)}"
                                             + (f"; did you mean {', '.join(close)}?)" if close
                                                else ")")])
    is_shp = path.suffix.lower() in (".shp", ".dbf")
    has_cpg = any(path.with_suffix(s).exists() for s in (".cpg", ".CPG"))
    try:
        if is_shp and encoding is None and not has_cpg:
            try:
                return pyogrio.read_dataframe(path, encoding="utf-8"), layer
            except UnicodeDecodeError:
                encoding = FALLBACK_ENCODING
        kwargs = {"encoding": encoding} if encoding else {}
        return pyogrio.read_dataframe(path, layer=layer, **kwargs), layer
    except Exception as exc:
        raise SurveyError(str(path), layer, [f"cannot read ({exc})"]) from None


def _to_metres(gdf: gpd.GeoDataFrame, what: str, notes: list[str]) -> gpd.GeoDataFrame | str:
    """Geographic CRSs (EPSG:4490, 4326...) are reprojected to EPSG:4548; a projected CRS in
    metres is kept; anything else is a problem (returned as a string)."""
    crs = gdf.crs
    if crs is None:
        return "no coordinate reference system (for a Shapefile: the .prj file is missing)"
    name = f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.name
    if crs.is_geographic:
        notes.append(f"{what}: reprojected from {name} ({crs.name}, degrees) to EPSG:{CRS_EPSG} "
                     f"({CRS.from_epsg(CRS_EPSG).name}, metres)")
        return gdf.to_crs(CRS_EPSG)
    unit = crs.axis_info[0].unit_name if crs.axis_info else "unknown"
    if unit not in ("metre", "meter"):
        return f"CRS {name} is in {unit}; use a projected CRS in metres, e.g. EPSG:{CRS_EPSG}"
    return gdf


def _source_column(gdf: pd.DataFrame, mapping: Mapping, col: str) -> tuple[pd.Series | None, str]:
    """The raw values of instance column `col` and the name to report: the mapped field, a
    constant, or a field with the schema's own name (case-insensitive)."""
    n = len(gdf)
    if col in mapping.fields:
        return gdf[mapping.fields[col]], mapping.fields[col]
    if col in mapping.constants:
        return pd.Series([mapping.constants[col]] * n, dtype=object), f"[constants] {col}"
    lower = {str(c).lower(): c for c in gdf.columns}
    if col.lower() in lower:
        return gdf[lower[col.lower()]], str(lower[col.lower()])
    return None, col


def _plot_table(gdf: gpd.GeoDataFrame, mapping: Mapping, problems: Problems,
                notes: list[str]) -> pd.DataFrame:
    n = len(gdf)
    out = pd.DataFrame(index=range(n))
    # plot_id
    raw, name = _source_column(gdf, mapping, "plot_id")
    if raw is None:
        out["plot_id"] = [str(i) for i in range(1, n + 1)]
        notes.append("plot_id: no field mapped, plots numbered by row (1, 2, ...)")
    else:
        ids = texts(raw)
        problems.add(name, blank(raw), raw, "a plot identifier (not empty)")
        dup = ids.duplicated(keep="first").to_numpy() & ~blank(raw)
        problems.add(name, dup, raw, "a unique plot identifier (repeats an earlier row)")
        out["plot_id"] = ids.fillna("").astype(str).to_numpy()
    # land use: this tool's words, or 三调 classes (+ ownership)
    if "land_use" in mapping.fields or "land_class" not in mapping.fields and \
            _source_column(gdf, mapping, "land_use")[0] is not None:
        raw, name = _source_column(gdf, mapping, "land_use")
        uses = texts(raw).str.lower()
        problems.add(name, ~uses.isin(LAND_USES).to_numpy(), raw,
                     f"one of {', '.join(LAND_USES)}")
        out["land_use"] = uses.fillna("").astype(str).to_numpy()
    else:
        out["land_use"] = _land_uses(gdf, mapping, problems, notes)
    candidate = out["land_use"].isin(CANDIDATE_LAND_USES).to_numpy()
    for col in ("district", "township"):
        raw, name = _source_column(gdf, mapping, col)
        if raw is None:
            problems.note(col, f"not mapped: name its field in [fields] or give one value in "
                               f"[constants] ({PLOT_COLUMNS[col][1]})")
            out[col] = ""
            continue
        problems.add(name, blank(raw), raw, f"a {col} name (not empty)")
        out[col] = texts(raw).fillna("").astype(str).to_numpy()
    for col in (*NUMBER_COLUMNS, *FLAG_COLUMNS):
        out[col] = _typed(gdf, mapping, col, candidate, problems, notes)
    return out


def _land_uses(gdf: gpd.GeoDataFrame, mapping: Mapping, problems: Problems,
               notes: list[str]) -> np.ndarray:
    raw, name = _source_column(gdf, mapping, "land_class")
    if raw is None:
        problems.note("land_class", "not mapped: map land_class (三调 地类编码 or 地类名称) or "
                                    "land_use in [fields]")
        return np.full(len(gdf), "", dtype=object)
    table = class_lookup(mapping.land_classes)
    keys = texts(raw).fillna("").map(normalise_code)
    if_collective = keys.map({k: v[0] for k, v in table.items()})
    otherwise = keys.map({k: v[1] for k, v in table.items()})
    examples = "e.g. 0702 农村宅基地, 0601 工业用地, 0103 旱地, 0301 乔木林地"
    problems.add(name, if_collective.isna().to_numpy(), raw,
                 f"a 三调 land class code or name ({examples}), or add it to the mapping's "
                 "[land_classes]")
    own, _ = _source_column(gdf, mapping, "ownership")
    if own is None:
        collective = np.ones(len(gdf), dtype=bool)
        notes.append("ownership: no 权属性质 field mapped, construction land of classes that "
                     "can be collective (工业用地, 采矿用地, 商业服务业设施用地, 物流仓储用地) is "
                     "taken as collective, i.e. a candidate")
    else:
        collective = texts(own).fillna("").map(is_collective).to_numpy(dtype=bool)
    return np.where(collective, if_collective.fillna("").to_numpy(dtype=object),
                    otherwise.fillna("").to_numpy(dtype=object))


def _typed(gdf: gpd.GeoDataFrame, mapping: Mapping, col: str, candidate: np.ndarray,
           problems: Problems, notes: list[str]) -> np.ndarray:
    """A number or yes/no column: parsed, with the empty-value rule applied."""
    kind = PLOT_COLUMNS[col][0]
    rule = mapping.empty.get(col, "error")
    fill = fill_value(rule, kind)
    raw, name = _source_column(gdf, mapping, col)
    n = len(gdf)
    if raw is None:
        if fill is not None:
            notes.append(f"{col}: no field mapped, every plot takes {fill!r} ([empty] rule)")
            return np.full(n, fill, dtype=float if kind == "float" else bool)
        if rule == "error" or candidate.any():
            problems.note(col, "not mapped: name its field in [fields], or set a value for "
                               "empty cells in [empty]")
        return np.zeros(n, dtype=float if kind == "float" else bool)
    empty = blank(raw)
    must = empty & (candidate if rule == "error_on_candidates" else rule == "error")
    what = "a number" if kind == "float" else "yes/no (是/否, Y/N, true/false, 1/0)"
    scope = " on collective construction land (a candidate plot)" \
        if rule == "error_on_candidates" else ""
    problems.add(name, must, raw, f"{what}{scope}; or set [empty] {col} = a value")
    default = fill if fill is not None else (0.0 if kind == "float" else False)
    if kind == "float":
        values = numbers(raw)
        problems.add(name, np.isnan(values) & ~empty, raw, "a number")
        problems.add(name, (values < 0) | np.isinf(values), raw, "a finite number >= 0")
        return np.where(empty | np.isnan(values), default, values)
    values, understood = flags(raw)
    problems.add(name, ~understood & ~empty, raw, what)
    return np.where(empty, bool(default), values)


def _geometries(gdf: gpd.GeoDataFrame, problems: Problems) -> np.ndarray:
    geoms = shapely.force_2d(gdf.geometry.to_numpy())
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    wkt = pd.Series(["" if g is None else g.geom_type for g in geoms], dtype=object)
    problems.add("geometry", missing, wkt, "a polygon (the geometry is empty or null)")
    wrong = ~np.isin(shapely.get_type_id(geoms), (3, 6)) & ~missing
    problems.add("geometry", wrong, wkt, "a Polygon or MultiPolygon")
    return geoms


def _extras(gdf: gpd.GeoDataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The planner's own attributes, kept after the schema columns; a name that clashes with an
    instance column (any case) gets the prefix `src_`."""
    taken = {c.lower() for c in table.columns} | {"area_mu", "collective", "geometry", "fid"}
    rename = {}
    for c in gdf.columns:
        if c == gdf.geometry.name:
            continue
        low = str(c).lower()
        clash = low in taken or low.startswith(("share_", "touches_"))
        rename[c] = f"src_{c}" if clash else str(c)
    extra = gdf.drop(columns=gdf.geometry.name).rename(columns=rename)
    return extra.reset_index(drop=True)


def _zone_layers(mapping: Mapping, plots: gpd.GeoDataFrame, problems: list[str],
                 notes: list[str]) -> dict[str, gpd.GeoDataFrame]:
    geoms = plots.geometry.to_numpy()
    layers: dict[str, gpd.GeoDataFrame] = {}
    for name in (*ZONE_LAYERS, TOWNSHIPS_LAYER):
        src = mapping.zones.get(name)
        if src is None:
            if name in ("farmland", "forest"):
                use = plots["land_use"].to_numpy() == name
                layers[name] = zone_frame(shapely.union_all(geoms[use]), name)
                notes.append(f"zone '{name}': no layer given, taken as the {use.sum()} plots "
                             f"whose land use is {name} (dissolved)")
            elif name != TOWNSHIPS_LAYER:
                layers[name] = zone_frame(shapely.Polygon(), name)
                notes.append(f"zone '{name}': no layer given, {ABSENT_ZONE[name]}")
            continue
        try:
            gdf, _ = read_vector(src.file, src.layer, src.encoding)
        except SurveyError as err:
            problems.append(f"zone '{name}': {err}")
            continue
        gdf = _to_metres(gdf, f"zone '{name}'", notes)
        if isinstance(gdf, str):
            problems.append(f"zone '{name}': {src.file}: {gdf}")
            continue
        gdf = gdf.to_crs(plots.crs)
        if name == TOWNSHIPS_LAYER:
            field_name = src.township_field or "township"
            if field_name not in gdf.columns:
                problems.append(f"zone 'townships': {src.file}: no field '{field_name}' "
                                f"(fields: {', '.join(map(str, gdf.columns))}); set "
                                "township_field")
                continue
            district = plots["district"].iloc[0] if len(plots) else ""
            layers[name] = gpd.GeoDataFrame(
                {"township": texts(gdf[field_name]).fillna("").astype(str).to_numpy(),
                 "district": district}, geometry=shapely.make_valid(gdf.geometry.to_numpy()),
                crs=plots.crs)
            continue
        valid = shapely.make_valid(gdf.geometry.to_numpy())
        layers[name] = zone_frame(shapely.union_all(valid), name)
    return layers


def _reference_meta(plots: gpd.GeoDataFrame, zones: dict[str, gpd.GeoDataFrame]
                    ) -> dict[str, str]:
    """The instance's share of the citywide figures: zone areas inside the study area (the union
    of the plots) against the citywide seed figures."""
    study = shapely.union_all(plots.geometry.to_numpy())
    local = {
        "central": zones["central_city"], "plain": zones["plain_area"],
        "priority": pd.concat([zones[z] for z in PRIORITY_LAYERS]),
    }
    meta = {"city_total_mu": f"{CITY_REFERENCE_MU['total']:.1f}",
            "district_total_mu": f"{study.area / M2_PER_MU:.1f}"}
    for k, frame in local.items():
        zone = shapely.union_all(frame.geometry.to_numpy())
        meta[f"city_{k}_mu"] = f"{CITY_REFERENCE_MU[k]:.1f}"
        meta[f"district_{k}_mu"] = f"{shapely.intersection(zone, study).area / M2_PER_MU:.1f}"
    return meta


def import_survey(mapping: Mapping, out: Path, file: Path | None = None,
                  layer: str | None = None) -> ImportResult:
    """Read the parcels named by `file` (or the mapping's `file`), validate everything, write the
    instance GeoPackage `out`. Raises SurveyError listing every problem; nothing is written then.
    """
    path = Path(file) if file is not None else mapping.file
    if path is None:
        raise SurveyError(str(mapping.source), None, ["no input file: give one on the command "
                                                      "line or as file = \"...\" in the mapping"])
    gdf, layer = read_vector(path, layer or mapping.layer, mapping.encoding)
    notes: list[str] = []
    problems = Problems()
    missing = [f for f in mapping.fields.values() if f not in gdf.columns]
    for f in missing:
        close = difflib.get_close_matches(f, [str(c) for c in gdf.columns], n=3, cutoff=0.3)
        problems.note(f, "a field of the layer, but there is none of that name"
                         + (f" (close: {', '.join(close)})" if close else "")
                         + f"; fields: {', '.join(map(str, gdf.columns[:-1]))}")
    if missing:
        raise SurveyError(str(path), layer, problems.lines())
    projected = _to_metres(gdf, "plots", notes)
    if isinstance(projected, str):
        problems.note("geometry", projected)
        projected = gdf
    gdf = projected.reset_index(drop=True)
    if len(gdf) == 0:
        problems.note("geometry", "at least one plot (the layer is empty)")
    table = _plot_table(gdf, mapping, problems, notes)
    geoms = _geometries(gdf, problems)
    plots = gpd.GeoDataFrame(pd.concat([table[list(PLOT_COLUMNS)], _extras(gdf, table)],
                                       axis=1), geometry=geoms, crs=gdf.crs)
    zone_problems: list[str] = []
    zones = _zone_layers(mapping, plots, zone_problems, notes) if not problems else {}
    if problems or zone_problems:
        raise SurveyError(str(path), layer, problems.lines() + zone_problems)
    meta = {"importer": "instances.survey", "source": str(path), "layer": str(layer),
            "mapping": str(mapping.source), "crs": str(plots.crs.to_string()),
            **_reference_meta(plots, zones),
            **{f"import_note_{i + 1}": note for i, note in enumerate(notes)}}
    layers: dict[str, pd.DataFrame] = {PLOTS_LAYER: plots, **zones,
                                       META_LAYER: pd.DataFrame({"key": list(meta),
                                                                 "value": list(meta.values())})}
    write_layers(layers, Path(out))
    counts = plots["land_use"].value_counts()
    return ImportResult(Path(out), len(plots), {k: int(v) for k, v in counts.items()},
                        int(plots["land_use"].isin(CANDIDATE_LAND_USES).sum()),
                        sorted(plots["township"].unique()), notes)
