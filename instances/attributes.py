"""Typed values of an instance's tables: numbers and yes/no flags read with their declared type,
values that do not convert refused (row, field, value), and the meta table's reference areas.
Used by `instances.loader`; every error is one InstanceError line."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from instances.errors import InstanceError
from instances.schema import (
    MAX_PLOT_VALUE,
    META_AREA_KINDS,
    META_LAYER,
    PLOT_COLUMNS,
)

SHAPEFILE_NAME_LEN = 10  # dBase truncates field names: "demolition_wan_per_mu" -> "demolition"
_FLAG_WORDS = {"1": True, "0": False, "1.0": True, "0.0": False, "true": True, "false": False,
               "yes": True, "no": False}


def numbers(col: pd.Series, fail: Callable[[int, str], InstanceError]) -> NDArray[np.float64]:
    """Finite non-negative floats."""
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    nan = np.isnan(values)
    if nan.any():
        row = int(np.flatnonzero(nan)[0])
        raw = col.iloc[row]
        raise fail(row, "missing value (NaN)" if pd.isna(raw) else f"not a number {raw!r}")
    bad = np.isinf(values) | (values < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise fail(row, f"{'negative' if values[row] < 0 else 'infinite'} value {values[row]}")
    huge = values > MAX_PLOT_VALUE
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        raise fail(row, f"value {values[row]:g} is beyond {MAX_PLOT_VALUE:g}, not a cost or an "
                        "output in 万元")
    return values


def flags(col: pd.Series, fail: Callable[[int, str], InstanceError]) -> NDArray[np.bool_]:
    """Booleans from bool, 0/1, true/false, yes/no (case-insensitive)."""
    if pd.api.types.is_bool_dtype(col) and not col.isna().any():
        return col.to_numpy(dtype=bool)
    words = col.astype("string").str.strip().str.lower()
    values = words.map(_FLAG_WORDS)
    bad = values.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raw = col.iloc[row]
        raise fail(row, "missing value" if pd.isna(raw) else
                   f"not a yes/no value {raw!r} (use 0/1, true/false or yes/no)")
    return values.to_numpy(dtype=bool)



def check_stored_types(path: Path, file: str, layer: str, ids: NDArray[np.object_]) -> None:
    """GeoPackage: a number or yes/no column holding text. SQLite stores any value in any
    column and GDAL reads text in a REAL or BOOLEAN column as 0 / false without a word; here it
    is an error naming row, field and value. (Shapefiles type every dBase field: nothing to do.)"""
    if path.is_dir() or not path.exists():
        return
    typed = {name.lower() for name, (kind, _) in PLOT_COLUMNS.items() if kind != "str"}
    typed |= {name[:SHAPEFILE_NAME_LEN] for name in typed}
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return
    try:
        table = '"' + layer.replace('"', '""') + '"'
        columns = con.execute(f"PRAGMA table_info({table})").fetchall()
        for _, name, declared, *_ in columns:
            if name.lower() not in typed or not declared or "TEXT" in declared.upper():
                continue
            col = '"' + name.replace('"', '""') + '"'
            hit = con.execute(f"SELECT rowid, {col} FROM {table} WHERE typeof({col}) IN "
                              f"('text', 'blob') ORDER BY rowid LIMIT 1").fetchone()
            if hit is not None:
                row = con.execute(f"SELECT COUNT(*) FROM {table} WHERE rowid <= ?",
                                  (hit[0],)).fetchone()[0]
                kind = "yes/no value" if "BOOL" in declared.upper() else "number"
                raise InstanceError(file, f"not a {kind} {hit[1]!r} (text in a "
                                    f"{declared} column)", layer=layer, row=row,
                                    plot_id=str(ids[row - 1]) if row <= len(ids) else None,
                                    field=name)
    except sqlite3.Error:
        return  # not readable as SQLite: GDAL read it, its values stand
    finally:
        con.close()



def check_reference_areas(meta: dict[str, str], keys: list[str], file: str) -> None:
    """The meta table's reference areas, checked like plot values: numbers, finite, >= 0 (the
    citywide ones > 0); else the citywide targets would be divided silently wrong."""
    rows = {k: r for r, k in enumerate(keys)}
    for scope in ("city", "district"):
        for kind in META_AREA_KINDS:
            key = f"{scope}_{kind}_mu"
            if key not in meta:
                continue
            text = meta[key].strip()
            try:
                value = float(text)
            except ValueError:
                value = None
            problem = (f"{key} = {text!r} is not a number" if value is None else
                       f"{key} = {text} must be a finite number" if not np.isfinite(value) else
                       f"{key} = {text} is negative" if value < 0 else
                       f"{key} = {text}: a citywide reference area must be above 0"
                       if scope == "city" and value == 0 else None)
            if problem:
                raise InstanceError(file, f"{problem} (a reference area in mu that divides the "
                                    "citywide targets)", layer=META_LAYER, row=rows[key] + 1,
                                    field="value")
