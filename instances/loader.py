"""Load an instance file (GeoPackage, or a directory of Shapefiles) into a validated Instance.

Every problem in the input raises InstanceError with one line naming file, layer, row and field.
Definitions the planner relies on:
- row numbers are 1-based feature numbers within the layer;
- Shapefile field names may be the schema names cut to 10 characters (dBase's limit), and any
  column name matches case-insensitively; a Shapefile directory's meta table is meta.dbf or
  meta.csv (columns key, value);
- zone layers in another CRS are reprojected to the plots' CRS; their null or empty features are
  dropped with a warning; Instance.zones also holds the townships layer when there is one;
- the study area is the union of the plots; "<zone>_mu", "priority_mu",
  "farmland_in_priority_mu" and "forest_in_plain_mu" are areas inside it;
- adjacency: boundary shared over more than 0.5 m (edges within about 1 mm count as shared);
- touches_farmland / touches_forest: more than 0.5 m of the plot's boundary lies on or inside the
  existing farmland / forest layer (sharing an edge, overlapping, or lying within: a farmland
  plot inside the farmland layer touches it), or the plot shares more than 0.5 m of boundary
  with a plot whose land_use is farmland / forest. Corner contacts do not count.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from glob import escape as glob_escape
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import scipy.sparse as sp
import shapely
from numpy.typing import NDArray
from pyproj import CRS

from instances import derived_cache, overlay
from instances.attributes import (
    SHAPEFILE_NAME_LEN,
    check_reference_areas,
    check_stored_types,
    flags,
    numbers,
)
from instances.errors import InstanceError
from instances.instance import Instance
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

Progress = Callable[[str, float], None]

MIN_SHARED_M = 0.5  # shared boundary up to this is a corner contact, not adjacency
OVERLAP_MIN_M2 = 1.0  # overlaps are errors above both limits: digitising slivers pass
OVERLAP_MIN_FRACTION = 0.001  # of the smaller plot
# Plot columns derived from the geometry, in the order they are added (cached by derived_cache).
DERIVED_COLUMNS = ("area_mu", *(f"share_{name}" for name in (*ZONE_LAYERS, "priority")),
                   "touches_farmland", "touches_forest")
SHAPEFILE_FALLBACK_ENCODING = "gb18030"  # superset of GBK, the usual Chinese GIS encoding
_POLYGONAL = (3, 6)  # shapely type ids of Polygon, MultiPolygon


def load_instance(path: str | Path, *, layers_dir_encoding: str | None = None,
                  progress: Progress | None = None) -> Instance:
    """Read, validate and derive an Instance from a .gpkg file or a directory of <layer>.shp.

    layers_dir_encoding: encoding of Shapefile attribute tables; by default each layer's .cpg
    decides, else UTF-8 if the table decodes as UTF-8, else GBK (GB18030). Unused for GeoPackage.
    progress(step, fraction): called as the load advances, fraction of the whole load in [0, 1].
    """
    report = progress or (lambda step, fraction: None)
    source = _Source(Path(path), layers_dir_encoding)
    report("read", 0.0)
    gdf = _geo_layer(source, PLOTS_LAYER, None)
    crs = gdf.crs
    if len(gdf) == 0:
        raise InstanceError(source.file(PLOTS_LAYER), "no plots (the layer is empty)",
                            layer=PLOTS_LAYER)
    plots = _plot_columns(gdf.drop(columns=gdf.geometry.name), source.file(PLOTS_LAYER))
    ids = plots["plot_id"].to_numpy()
    if PLOTS_LAYER in source.layers:
        check_stored_types(source.path, source.file(PLOTS_LAYER), PLOTS_LAYER, ids)
    geoms = _clean_polygons(gdf.geometry.to_numpy(), source.file(PLOTS_LAYER), PLOTS_LAYER,
                            ids, drop_empty=False)
    zones: dict[str, gpd.GeoDataFrame] = {}
    for name in ZONE_LAYERS:
        zones[name] = _zone_layer(source, name, crs)
    if TOWNSHIPS_LAYER in source.layers:
        zones[TOWNSHIPS_LAYER] = _zone_layer(source, TOWNSHIPS_LAYER, crs)
    meta = _meta(source) if META_LAYER in source.layers else {}

    # the derivation's own code is part of the key: a changed definition never reads old tables
    code = [Path(__file__), Path(overlay.__file__)]
    key = derived_cache.source_key(_source_files(source) + code,
                                   f"{layers_dir_encoding}|{MIN_SHARED_M}|{len(geoms)}")
    cached = derived_cache.read(key)
    if cached is not None and cached[0].shape[0] == len(geoms) \
            and set(cached[1]) == set(DERIVED_COLUMNS):
        adjacency, columns, stats = cached
        report("derived tables from the cache", 0.9)
        for name in DERIVED_COLUMNS:
            plots[name] = columns[name]
    else:
        adjacency, stats = _derive(source, plots, geoms, zones, ids, report)
        derived_cache.write(key, adjacency, {c: plots[c].to_numpy() for c in DERIVED_COLUMNS},
                            stats)
    plots["collective"] = plots["land_use"].isin(CANDIDATE_LAND_USES).to_numpy()
    report("done", 1.0)
    return Instance(
        name=source.path.stem, plots=plots, adjacency=adjacency, zones=zones, stats=stats,
        geometry=gpd.GeoSeries(geoms, crs=crs), meta=meta, source=str(source.path))


def _derive(source: _Source, plots: pd.DataFrame, geoms: NDArray[np.object_],
            zones: dict[str, gpd.GeoDataFrame], ids: np.ndarray, report: Progress
            ) -> tuple[sp.csr_matrix, dict[str, float]]:
    """Adjacency, zone shares, touches (added to `plots`) and zone areas from the geometry."""
    report("adjacency", 0.2)
    area_m2 = shapely.area(geoms)
    i, j, shared, overlap = overlay.plot_contacts(geoms, MIN_SHARED_M)
    _check_overlaps(source.file(PLOTS_LAYER), ids, area_m2, i, j, overlap)
    adjacency = overlay.adjacency_matrix(len(geoms), i, j, shared, MIN_SHARED_M)

    plots["area_mu"] = area_m2 / M2_PER_MU
    pieces: dict[str, NDArray[np.object_]] = {}
    stats: dict[str, float] = {}
    for k, name in enumerate((*ZONE_LAYERS, "priority")):
        report("zones", 0.4 + 0.4 * k / (len(ZONE_LAYERS) + 1))
        pieces[name] = overlay.zone_pieces(
            np.concatenate([pieces[p] for p in PRIORITY_LAYERS]) if name == "priority"
            else zones[name].geometry.to_numpy())
        inside = overlay.area_inside(geoms, area_m2, pieces[name])
        plots[f"share_{name}"] = np.clip(inside / area_m2, 0.0, 1.0)
        stats[f"{name}_mu"] = float(inside.sum() / M2_PER_MU)
    both = {"farmland_in_priority": ("farmland", "priority"),
            "forest_in_plain": ("forest", "plain_area")}
    for stat, (a, b) in both.items():
        inside = overlay.area_inside(geoms, area_m2, overlay.intersect_pieces(pieces[a], pieces[b]))
        stats[f"{stat}_mu"] = float(inside.sum() / M2_PER_MU)
    stats["study_area_mu"] = float(area_m2.sum() / M2_PER_MU)

    report("touches", 0.85)
    for use in ("farmland", "forest"):
        on_layer = overlay.boundary_in_zone(geoms, pieces[use], MIN_SHARED_M) > MIN_SHARED_M
        next_to_use = adjacency @ (plots["land_use"].to_numpy() == use).astype(float) > 0
        plots[f"touches_{use}"] = on_layer | next_to_use
    return adjacency, stats


def _source_files(source: _Source) -> list[Path]:
    """Every file whose bytes make the instance: the GeoPackage, or each layer's Shapefile
    parts (and the meta table)."""
    if not source.path.is_dir():
        return [source.path]
    files = []
    for layer in source.layers.values():
        files += [f for f in layer.parent.glob(glob_escape(layer.stem) + ".*") if f.is_file()]
    return sorted(set(files))


class _Source:
    """The layers of a GeoPackage, or of a directory holding <layer>.shp (and meta.dbf/.csv)."""

    def __init__(self, path: Path, encoding: str | None) -> None:
        if path.suffix.lower() == ".shp" and path.exists():
            path = path.parent  # one layer of a Shapefile directory was named: read them all
        self.path = path
        self.encoding = encoding
        self.layers: dict[str, Path] = {}
        if not path.exists():
            raise InstanceError(str(path), "no such file or directory")
        if path.is_dir():
            for file in sorted(path.iterdir()):
                if file.suffix.lower() == ".shp" or (
                        file.stem == META_LAYER and file.suffix.lower() in (".dbf", ".csv")):
                    self.layers.setdefault(file.stem, file)
            return
        try:
            names = pyogrio.list_layers(path)[:, 0]
        except Exception as exc:
            raise InstanceError(str(path), f"not a GeoPackage or a directory of Shapefiles "
                                           f"({exc})") from None
        self.layers = {str(name): path for name in names}

    def file(self, layer: str) -> str:
        if self.path.is_dir():
            return str(self.layers.get(layer, self.path / f"{layer}.shp"))
        return str(self.path)

    def read(self, layer: str) -> pd.DataFrame:
        if layer not in self.layers:
            found = ", ".join(sorted(self.layers)) or "none"
            raise InstanceError(self.file(layer), f"missing layer (layers found: {found})",
                                layer=layer)
        file = self.layers[layer]
        try:
            if file.suffix.lower() == ".csv":
                return _read_csv(file, self.encoding)
            if self.path.is_dir():
                return _read_shapefile(file, self.encoding)
            return pyogrio.read_dataframe(file, layer=layer)
        except Exception as exc:
            raise InstanceError(str(file), f"cannot read ({exc})", layer=layer) from None


def _read_shapefile(file: Path, encoding: str | None) -> pd.DataFrame:
    if encoding is None and not any(file.with_suffix(s).exists() for s in (".cpg", ".CPG")):
        try:
            return pyogrio.read_dataframe(file, encoding="utf-8")
        except UnicodeDecodeError:
            encoding = SHAPEFILE_FALLBACK_ENCODING
    return pyogrio.read_dataframe(file, encoding=encoding)


def _read_csv(file: Path, encoding: str | None) -> pd.DataFrame:
    if encoding is None:
        try:
            return pd.read_csv(file, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except UnicodeDecodeError:
            encoding = SHAPEFILE_FALLBACK_ENCODING
    return pd.read_csv(file, dtype=str, keep_default_na=False, encoding=encoding)


def _crs_name(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg} ({crs.name})" if epsg else crs.name


def _geo_layer(source: _Source, layer: str, target_crs: CRS | None) -> gpd.GeoDataFrame:
    """A polygon layer with a CRS: the plots' CRS must be projected in metres (target_crs None);
    other layers are reprojected to target_crs."""
    df = source.read(layer)
    file = source.file(layer)
    if not isinstance(df, gpd.GeoDataFrame):
        raise InstanceError(file, "no geometry column (a table, not a map layer)", layer=layer,
                            field="geometry")
    df = df.reset_index(drop=True)
    if df.crs is None:
        if target_crs is not None and len(df) == 0:
            return df.set_crs(target_crs)
        raise InstanceError(file, "no coordinate reference system (for a Shapefile: the .prj "
                                  "file is missing)", layer=layer, field="geometry")
    if target_crs is None:
        unit = df.crs.axis_info[0].unit_name if df.crs.axis_info else "unknown"
        if not df.crs.is_projected or unit not in ("metre", "meter"):
            kind = "geographic (degrees)" if df.crs.is_geographic else f"in {unit}"
            raise InstanceError(
                file, f"CRS {_crs_name(df.crs)} is {kind}; plots must be in a projected CRS in "
                      f"metres, e.g. EPSG:{CRS_EPSG} ({CRS.from_epsg(CRS_EPSG).name})",
                layer=layer, field="geometry")
        return df
    return df if df.crs == target_crs else df.to_crs(target_crs)


def _zone_layer(source: _Source, layer: str, crs: CRS) -> gpd.GeoDataFrame:
    """A zone layer in the plots' CRS with valid polygons; null and empty features are dropped
    (with a warning): a zone's extent is all that is used."""
    df = _geo_layer(source, layer, crs)
    geoms = _clean_polygons(df.geometry.to_numpy(), source.file(layer), layer, None,
                            drop_empty=True)
    keep = ~shapely.is_empty(geoms)
    df = df.loc[keep].reset_index(drop=True)
    return df.set_geometry(gpd.GeoSeries(geoms[keep], crs=crs), crs=crs)


def _clean_polygons(geoms: NDArray[np.object_], file: str, layer: str,
                    ids: NDArray[np.object_] | None, *, drop_empty: bool) -> NDArray[np.object_]:
    """2-D valid polygons; invalid ones repaired with a warning, unrepairable ones an error.
    Null or empty geometries: an error, or (drop_empty) empty polygons for the caller to drop."""

    def fail(row: int, problem: str) -> InstanceError:
        plot_id = None if ids is None else str(ids[row])
        return InstanceError(file, problem, layer=layer, row=row + 1, plot_id=plot_id,
                             field="geometry")

    geoms = np.asarray(geoms, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        if not drop_empty:
            raise fail(int(np.flatnonzero(missing)[0]), "empty or null geometry")
        rows = np.flatnonzero(missing)
        warnings.warn(f"{file}: layer '{layer}': ignoring {rows.size} empty or null geometries "
                      f"(rows {_first_rows(rows)})", stacklevel=3)
        geoms = np.where(missing, shapely.Polygon(), geoms)
    geoms = shapely.force_2d(geoms)
    wrong = ~np.isin(shapely.get_type_id(geoms), _POLYGONAL) & ~missing
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise fail(row, f"geometry is a {geoms[row].geom_type}, not a Polygon or MultiPolygon")
    invalid = ~shapely.is_valid(geoms) & ~missing
    if invalid.any():
        rows = np.flatnonzero(invalid)
        reasons = shapely.is_valid_reason(geoms[rows])
        fixed = shapely.make_valid(geoms[rows], method="structure", keep_collapsed=False)
        bad = ~np.isin(shapely.get_type_id(fixed), _POLYGONAL) | ~(shapely.area(fixed) > 0)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise fail(int(rows[k]), f"invalid geometry ({reasons[k]}) that does not repair "
                                     f"into a polygon")
        named = "; ".join(f"row {r + 1}{'' if ids is None else f' (plot_id {ids[r]!r})'}: {why}"
                          for r, why in zip(rows[:5], reasons[:5], strict=False))
        more = f"; and {rows.size - 5} more" if rows.size > 5 else ""
        warnings.warn(f"{file}: layer '{layer}': repaired {rows.size} invalid "
                      f"geometr{'y' if rows.size == 1 else 'ies'}: {named}{more}", stacklevel=3)
        geoms = geoms.copy()
        geoms[rows] = fixed
    return geoms


def _first_rows(rows: NDArray[np.intp], limit: int = 5) -> str:
    text = ", ".join(str(r + 1) for r in rows[:limit])
    return text + (f" and {rows.size - limit} more" if rows.size > limit else "")


def _match_columns(df: pd.DataFrame, file: str, layer: str) -> pd.DataFrame:
    """Rename columns to the schema names: case-insensitive, and accepting the 10-character
    names a Shapefile truncates them to."""
    by_lower = {str(c).lower(): c for c in df.columns}
    rename: dict[object, str] = {}
    missing = []
    for name in PLOT_COLUMNS:
        if name in df.columns:
            continue
        found = by_lower.get(name.lower(), by_lower.get(name[:SHAPEFILE_NAME_LEN].lower()))
        if found is None or found in rename:
            missing.append(name)
        else:
            rename[found] = name
    if missing:
        also = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise InstanceError(file, f"missing column{also}", layer=layer, field=missing[0])
    return df.rename(columns=rename)


def _plot_columns(df: pd.DataFrame, file: str) -> pd.DataFrame:
    """The plot attributes, typed and checked: schema columns first, extra columns kept after."""
    df = _match_columns(df.reset_index(drop=True), file, PLOTS_LAYER)
    ids = _plot_ids(df["plot_id"], file)

    def fail(row: int, field: str, problem: str) -> InstanceError:
        return InstanceError(file, problem, layer=PLOTS_LAYER, row=row + 1, plot_id=ids[row],
                             field=field)

    out = pd.DataFrame({"plot_id": ids})
    for name, (kind, _) in PLOT_COLUMNS.items():
        col = df[name]
        if name == "plot_id":
            continue
        if kind == "str":
            text = col.astype("string").str.strip()
            blank = (text.isna() | (text == "")).to_numpy()
            if blank.any():
                raise fail(int(np.flatnonzero(blank)[0]), name, "missing value")
            out[name] = text.astype(str).to_numpy()
        elif kind == "float":
            out[name] = numbers(col, lambda row, problem, n=name: fail(row, n, problem))
        else:
            out[name] = flags(col, lambda row, problem, n=name: fail(row, n, problem))
    unknown = ~out["land_use"].isin(LAND_USES).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise fail(row, "land_use", f"unknown land_use {out['land_use'][row]!r} "
                                    f"(valid: {', '.join(LAND_USES)})")
    extra = [c for c in df.columns if c not in PLOT_COLUMNS]
    return pd.concat([out, df[extra].reset_index(drop=True)], axis=1)


def _plot_ids(col: pd.Series, file: str) -> NDArray[np.object_]:
    """plot_id as strings (integral numbers without ".0"), non-empty and unique."""
    if pd.api.types.is_float_dtype(col) and np.all(np.isnan(col) | (col % 1 == 0)):
        col = col.astype("Int64")
    text = col.astype("string").str.strip()
    blank = (text.isna() | (text == "")).to_numpy()
    if blank.any():
        raise InstanceError(file, "missing value", layer=PLOTS_LAYER,
                            row=int(np.flatnonzero(blank)[0]) + 1, field="plot_id")
    ids = text.astype(str).to_numpy(dtype=object)
    repeated = pd.Series(ids).duplicated(keep="first").to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        first = int(np.flatnonzero(ids == ids[row])[0])
        raise InstanceError(file, f"duplicate plot_id, also at row {first + 1}",
                            layer=PLOTS_LAYER, row=row + 1, plot_id=ids[row], field="plot_id")
    return ids


def _check_overlaps(file: str, ids: NDArray[np.object_], area_m2: NDArray[np.float64],
                    i: NDArray[np.intp], j: NDArray[np.intp],
                    overlap: NDArray[np.float64]) -> None:
    smaller = np.minimum(area_m2[i], area_m2[j])
    bad = (overlap > OVERLAP_MIN_M2) & (overlap > OVERLAP_MIN_FRACTION * smaller)
    if not bad.any():
        return
    k = int(np.flatnonzero(bad)[0])
    a, b = sorted((int(i[k]), int(j[k])))
    raise InstanceError(
        file, f"overlaps row {b + 1} (plot_id {ids[b]!r}) by {overlap[k]:.1f} m² "
              f"({100 * overlap[k] / smaller[k]:.1f}% of the smaller plot)",
        layer=PLOTS_LAYER, row=a + 1, plot_id=ids[a], field="geometry")


def _meta(source: _Source) -> dict[str, str]:
    """The (key, value) table as a dict of strings; keys must be present and unique."""
    df = source.read(META_LAYER).reset_index(drop=True)
    file = source.file(META_LAYER)
    for field in ("key", "value"):
        if field not in df.columns:
            raise InstanceError(file, "missing column", layer=META_LAYER, field=field)
    keys = df["key"].astype("string").str.strip()
    values = df["value"].astype("string").fillna("")
    blank = (keys.isna() | (keys == "")).to_numpy()
    repeated = keys.duplicated(keep="first").to_numpy() & ~blank
    bad = blank | repeated
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        problem = "missing key" if blank[row] else f"duplicate key {keys[row]!r}"
        raise InstanceError(file, problem, layer=META_LAYER, row=row + 1, field="key")
    meta = dict(zip(keys.astype(str), values.astype(str), strict=True))
    check_reference_areas(meta, list(keys.astype(str)), file)
    return meta
