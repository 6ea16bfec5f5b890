"""plan.xlsx: a sheet per table (plan, targets, blocks, townships), headers and action words in
Chinese, English or both. Text cells are typed as text: ids keep every digit and leading zero,
and nothing is ever a formula (a value starting with '=' stays a string)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from optimizer.reporting.tables import SHEET_ZH, translate

LANGS = ("both", "zh", "en")


def _sheet_rows(ws: WriteOnlyWorksheet, df: pd.DataFrame) -> None:
    ws.append([str(c) for c in df.columns])
    text = [not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
            for c in df.columns]
    columns = [df[c].astype(object).where(df[c].notna(), None).to_numpy() if t
               else df[c].to_numpy() for c, t in zip(df.columns, text, strict=True)]
    for row in zip(*columns, strict=True):
        ws.append([_cell(ws, v) if t and v is not None else _number(v)
                   for v, t in zip(row, text, strict=True)])


def _cell(ws: WriteOnlyWorksheet, value: object) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=str(value))
    cell.data_type = "s"  # text, even '=1+1' or '0012'
    cell.number_format = "@"
    return cell


def _number(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_xlsx(tables: dict[str, pd.DataFrame], path: Path, lang: str = "both") -> None:
    """Write the tables (sheet name -> table, English keys) to `path` in `lang`."""
    if lang not in LANGS:
        raise ValueError(f"--lang {lang!r}: use one of {', '.join(LANGS)}")
    wb = Workbook(write_only=True)
    for name, df in tables.items():
        title = name if lang == "en" else SHEET_ZH.get(name, name) if lang == "zh" \
            else f"{SHEET_ZH.get(name, name)} {name}"
        ws = wb.create_sheet(title[:31])
        _sheet_rows(ws, translate(df, lang))
    wb.save(path)
