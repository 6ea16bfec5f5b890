"""Township tables: a reduction target (mu) and a budget (万元) per township, from CSV (UTF-8,
with or without BOM, or GBK) or Excel (.xlsx), checked against the instance's townships.

Accepted column names (any case; the first that is present wins):
- township: 乡镇, 乡镇名称, 实施单元, 单元名称, township, name
- target:   减量任务, 减量目标, 减量面积, 目标, reduction_mu, target_mu, township_reduction_mu (亩)
- budget:   预算, 资金, 预算万元, budget_wan, township_wan (万元)
Units in brackets after a name are ignored (`减量任务（亩）`). A township name not in the
instance is an error naming the close matches; an empty cell sets no figure for that township.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from instances.survey.values import blank, numbers

TOWNSHIP_NAMES = ("乡镇", "乡镇名称", "实施单元", "单元名称", "township", "name")
TARGET_NAMES = ("减量任务", "减量目标", "减量面积", "目标", "reduction_mu", "target_mu",
                "township_reduction_mu")
BUDGET_NAMES = ("预算", "资金", "预算万元", "budget_wan", "township_wan")
FALLBACK_ENCODING = "gb18030"


class TownshipTableError(ValueError):
    """Problems in a township table: `lines` holds every one."""

    def __init__(self, file: Path, lines: list[str]) -> None:
        self.file, self.lines = file, lines
        super().__init__(f"{file}: " + "; ".join(lines))


@dataclass
class TownshipFigures:
    targets_mu: dict[str, float] = field(default_factory=dict)
    budgets_wan: dict[str, float] = field(default_factory=dict)
    source: str = ""


def read_table(path: Path, sheet: str | int = 0) -> pd.DataFrame:
    """Every cell as text (no lost leading zeros, no float ids)."""
    if not path.exists():
        raise TownshipTableError(path, ["no such file"])
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            return pd.read_excel(path, sheet_name=sheet, dtype=str, engine="openpyxl")
        if suffix != ".csv":
            raise TownshipTableError(path, ["not a .csv or .xlsx file"])
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except UnicodeDecodeError:
            return pd.read_csv(path, dtype=str, keep_default_na=False,
                               encoding=FALLBACK_ENCODING)
    except TownshipTableError:
        raise
    except Exception as exc:
        raise TownshipTableError(path, [f"cannot read ({exc})"]) from None


def _bare(header: object) -> str:
    """'减量任务（亩）' -> '减量任务', 'Budget (万元)' -> 'budget': units in brackets dropped."""
    return re.sub(r"[(（\[【].*?[)）\]】]", "", str(header)).strip().lower()


def _column(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lower = {_bare(c): c for c in df.columns}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def read_township_figures(path: str | Path, known: list[str]) -> TownshipFigures:
    """Targets and budgets by township, every problem reported at once (TownshipTableError)."""
    path = Path(path)
    df = read_table(path).reset_index(drop=True)
    lines: list[str] = []
    town_col = _column(df, TOWNSHIP_NAMES)
    target_col, budget_col = _column(df, TARGET_NAMES), _column(df, BUDGET_NAMES)
    if town_col is None:
        lines.append(f"no township column (one of {', '.join(TOWNSHIP_NAMES)}; columns: "
                     f"{', '.join(map(str, df.columns))})")
    if target_col is None and budget_col is None:
        lines.append(f"neither a target column ({', '.join(TARGET_NAMES)}) nor a budget column "
                     f"({', '.join(BUDGET_NAMES)})")
    if lines:
        raise TownshipTableError(path, lines)
    names = df[town_col].astype("string").str.strip()
    known_set = set(known)
    figures = TownshipFigures(source=str(path))
    for r in range(len(df)):  # a table of tens of townships, not a hot path
        row = r + 2  # as Excel numbers it: the header is row 1
        name = names.iloc[r]
        if pd.isna(name) or name == "":
            if not all(blank(df.iloc[[r]].T.iloc[:, 0])):
                lines.append(f"row {row}, field '{town_col}': empty township name")
            continue
        if name not in known_set:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            lines.append(f"row {row}, field '{town_col}': township {name!r} is not in the "
                         "instance" + (f"; did you mean {', '.join(close)}?" if close else
                                       f" (it has {len(known)}: {', '.join(known[:8])}"
                                       + (", ..." if len(known) > 8 else "") + ")"))
            continue
        if name in figures.targets_mu or name in figures.budgets_wan:
            lines.append(f"row {row}, field '{town_col}': township {name!r} appears twice")
            continue
        for col, into, unit in ((target_col, figures.targets_mu, "mu"),
                                (budget_col, figures.budgets_wan, "万元")):
            if col is None:
                continue
            cell = df[col].iloc[[r]]
            if blank(cell)[0]:
                continue
            value = float(numbers(cell)[0])
            if np.isnan(value) or value < 0:
                lines.append(f"row {row}, field '{col}': value {cell.iloc[0]!r}; expected a "
                             f"number >= 0 ({unit})")
                continue
            into[name] = value
    if lines:
        raise TownshipTableError(path, lines)
    return figures


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scenario_toml(figures: TownshipFigures, name: str) -> str:
    """A scenario file setting the township targets and budgets. The instance's total reduction
    target is the sum of the township targets and its total budget the sum of the township
    budgets (when the table gives them); every other key keeps its default."""
    def table(values: dict[str, float]) -> str:
        return "{ " + ", ".join(f"{_toml_string(k)} = {v:g}" for k, v in values.items()) + " }"

    lines = [f"# written by `greenbelt import` from {figures.source}",
             f"name = {_toml_string(name)}", "", "[targets]"]
    if figures.targets_mu:
        lines += [f"total_reduction_mu = {sum(figures.targets_mu.values()):g}",
                  f"township_reduction_mu = {table(figures.targets_mu)}"]
    lines += ["", "[budget]"]
    if figures.budgets_wan:
        lines += [f"total_wan = {sum(figures.budgets_wan.values()):g}",
                  f"township_wan = {table(figures.budgets_wan)}"]
    return "\n".join(lines) + "\n"
