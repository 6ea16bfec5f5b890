"""Spreadsheet cells of the CSV files we write, neutralised against formula injection.

Excel, LibreOffice and WPS run a cell that starts with = + - @ (or a tab / carriage return
before one) as a formula: a plot id `=HYPERLINK(...)` written raw into plan.csv would run when a
planner opens the file. Every CSV writer passes its table through `neutralise_table`, and every
reader of our CSVs undoes it with `restore_cells`, so a plan round-trips exactly.

Rule (OWASP "CSV injection"): a text cell that starts with one of TRIGGERS, or with the quote
itself, gets one leading single quote. Spreadsheets show the cell as text without the quote;
`restore_cells` removes exactly one leading quote from such a cell. Numbers are never touched.
"""

from __future__ import annotations

import pandas as pd

QUOTE = "'"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", QUOTE)


def neutralise(value: object) -> object:
    """One cell: a text that a spreadsheet would run as a formula, quoted; anything else as is."""
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return QUOTE + value
    return value


def restore(value: object) -> object:
    """Undo `neutralise` on one cell read back as text."""
    if isinstance(value, str) and value.startswith(QUOTE) and value[1:].startswith(TRIGGERS):
        return value[1:]
    return value


def neutralise_table(table: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell (and text column name) neutralised; numeric columns as is."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise)
    out.columns = [neutralise(c) for c in out.columns]
    return out


def restore_cells(series: pd.Series) -> pd.Series:
    """A text column read from one of our CSV files, as it was before `neutralise_table`."""
    return series.map(restore)
