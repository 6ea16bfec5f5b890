"""Reading survey values in one pass: yes/no words in Chinese and English, numbers written by
hand, empty values by rule; every problem collected (row, field, value, what is expected)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

# Yes/no words, compared after stripping and lower-casing.
YES_WORDS = ("是", "有", "y", "yes", "true", "t", "1", "1.0", "√", "✓")
NO_WORDS = ("否", "无", "没有", "n", "no", "false", "f", "0", "0.0", "×", "✗")
_FLAG = {**dict.fromkeys(YES_WORDS, True), **dict.fromkeys(NO_WORDS, False)}
_FULL_WIDTH = str.maketrans("０１２３４５６７８９．－，", "0123456789.-,")
MAX_ROWS_SHOWN = 10  # rows listed per (field, problem); the rest are counted


@dataclass
class Problem:
    """One kind of problem in one field: the rows (1-based) and values that show it."""

    field: str
    expected: str
    rows: list[int] = field(default_factory=list)
    values: list[object] = field(default_factory=list)
    count: int = 0

    def lines(self) -> list[str]:
        if not self.rows:
            return [f"field '{self.field}': {self.expected}"]
        out = [f"row {r}, field '{self.field}': value {v!r}; expected {self.expected}"
               for r, v in zip(self.rows, self.values, strict=True)]
        if self.count > len(self.rows):
            out.append(f"... and {self.count - len(self.rows)} more row(s) of field "
                       f"'{self.field}' with the same problem")
        return out


class Problems:
    """Collects problems for one layer; `add` takes a mask over all rows (vectorised)."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, name: str, mask: NDArray[np.bool_], values: pd.Series, expected: str) -> None:
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return
        shown = rows[:MAX_ROWS_SHOWN]
        self.items.append(Problem(name, expected, [int(r) + 1 for r in shown],
                                  [_plain(values.iloc[r]) for r in shown], int(rows.size)))

    def note(self, name: str, expected: str) -> None:
        self.items.append(Problem(name, expected))

    def lines(self) -> list[str]:
        return [line for p in self.items for line in p.lines()]

    def __bool__(self) -> bool:
        return bool(self.items)


def _plain(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return value.item() if isinstance(value, np.generic) else value


def blank(col: pd.Series) -> NDArray[np.bool_]:
    """Null, NaN or only white space."""
    text = col.astype("string").str.strip()
    return (text.isna() | (text == "")).to_numpy(dtype=bool)


def texts(col: pd.Series) -> pd.Series:
    """Strings as a planner would read them: integral floats without '.0', stripped."""
    if pd.api.types.is_float_dtype(col):
        whole = col.notna() & (col % 1 == 0)
        if whole[col.notna()].all():
            col = col.astype("Int64")
    return col.astype("string").str.strip()


def numbers(col: pd.Series) -> NDArray[np.float64]:
    """Floats from numbers or text ('1,234.5', full-width digits); NaN where not a number."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=float, na_value=np.nan)
    text = col.astype("string").str.strip().str.translate(_FULL_WIDTH).str.replace(",", "")
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def flags(col: pd.Series) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(values, understood): yes/no words; `understood` is False where the word is unknown."""
    if pd.api.types.is_bool_dtype(col) and not col.isna().any():
        v = col.to_numpy(dtype=bool)
        return v, np.ones(len(v), dtype=bool)
    mapped = texts(col).str.lower().map(_FLAG)
    understood = mapped.notna().to_numpy(dtype=bool)
    return mapped.fillna(False).to_numpy(dtype=bool), understood


def yes_no(word: str) -> bool | None:
    """True / False for a yes/no word, None if it is none."""
    return _FLAG.get(word.strip().lower())


def fill_value(rule: object, kind: str) -> float | bool | None:
    """The value an empty cell takes under `rule` (None: the rule is an error rule)."""
    if isinstance(rule, str):
        if rule in ("error", "error_on_candidates"):
            return None
        return yes_no(rule) if kind == "bool" else None
    if kind == "bool":
        return bool(rule)
    return float(rule)  # type: ignore[arg-type]
