"""`greenbelt check`: verify a plan file against an instance and a scenario.

Only the plan's `plot_id` and `action` columns are trusted; areas, shares and costs are recomputed
from the instance geometry and attributes. Other columns are cross-checked against that truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from instances.instance import Instance
from optimizer.blocks.rule import farmland_blocks
from optimizer.model.kpi import (
    ACTIONS,
    RuleViolation,
    TargetCheck,
    evaluate_targets,
    rule_violations,
)
from optimizer.model.scenario import Scenario
from optimizer.model.targets import plot_rules, target_families
from optimizer.plan.cells import restore_cells
from optimizer.plan.runset import OutputFolderError, refuse_incomplete


class PlanFileError(ValueError):
    """A plan file that cannot be read as a plan for this instance."""


@dataclass
class CheckResult:
    checks: list[TargetCheck]
    violations: list[RuleViolation]
    notes: list[str] = field(default_factory=list)  # e.g. contiguity, column mismatches

    def problems(self) -> list[str]:
        out = [f"{c.label} ({c.scope}): required {'≥' if c.sense == '>=' else '≤'} "
               f"{c.required:,.2f} {c.unit}, achieved {c.achieved:,.2f}"
               for c in self.checks if not c.met]
        out += [v.describe() for v in self.violations]
        return out + self.notes


# An id Excel turned into a number: 1.10115E+15, 1.10115e15 (digits lost for good).
_SCIENTIFIC = r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$"


def read_plan_csv(path: Path) -> pd.DataFrame:
    """A plan CSV as written, or re-saved by Excel: UTF-8 with or without BOM, or GBK (GB18030);
    ids kept as text. Ids that Excel turned into scientific notation are one clear error."""
    if not path.exists():
        raise PlanFileError(f"{path}: plan file not found")
    if path.is_dir():
        raise PlanFileError(f"{path}: is a folder, not a plan file (give its plan.csv)")
    try:
        refuse_incomplete(path)  # a run killed while writing: the set may be mixed
    except OutputFolderError as err:
        raise PlanFileError(str(err)) from None
    table = None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            table = pd.read_csv(path, encoding=encoding, dtype={"plot_id": str})
            break
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise PlanFileError(f"{path}: not a readable CSV file: {err}") from None
        except OSError as err:
            raise PlanFileError(f"{path}: cannot read ({err.strerror or err})") from None
    if table is None:
        raise PlanFileError(f"{path}: not a readable CSV file: neither UTF-8 nor GBK text")
    table.columns = [str(c).strip() for c in table.columns]
    for col in ("plot_id", "action"):
        if col not in table.columns:
            raise PlanFileError(f"{path}: missing column '{col}'")
        table[col] = restore_cells(table[col])  # undo the writer's formula-injection quote
    table["plot_id"] = table["plot_id"].astype(str)  # exact: ids round-trip, tabs included
    sci = table["plot_id"].str.match(_SCIENTIFIC).to_numpy()
    if sci.any():
        i = int(np.flatnonzero(sci)[0])
        raise PlanFileError(
            f"{path}: row {i + 2}, field 'plot_id': {table['plot_id'].iloc[i]!r} and "
            f"{int(sci.sum()) - 1} other id(s) are in scientific notation: Excel turned long "
            "codes into numbers and lost digits when the file was saved; open plan.xlsx "
            "instead, or import the CSV in Excel with the plot_id column as Text")
    return table


def read_plan_actions(path: Path, plot_ids: pd.Series) -> np.ndarray:
    """Per-plot action codes in the instance's row order; one-line errors for bad files."""
    table = read_plan_csv(path)
    action = table["action"].astype(str).str.strip().str.lower()
    bad = ~action.isin(ACTIONS)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise PlanFileError(f"{path}: row {i + 2} (plot_id '{table['plot_id'].iloc[i]}'), field "
                            f"'action': {table['action'].iloc[i]!r} is not one of "
                            f"{', '.join(ACTIONS)}")
    dup = table["plot_id"].duplicated(keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())[:2] + 2
        raise PlanFileError(f"{path}: rows {rows[0]} and {rows[1]}, field 'plot_id': duplicate "
                            f"plot_id '{table['plot_id'].iloc[rows[0] - 2]}'")
    pos = pd.Index(plot_ids.astype(str)).get_indexer(table["plot_id"])
    if (pos < 0).any():
        i = int(np.flatnonzero(pos < 0)[0])
        raise PlanFileError(f"{path}: row {i + 2}, field 'plot_id': '{table['plot_id'].iloc[i]}' "
                            "is not a plot of the instance")
    if len(table) != len(plot_ids):
        missing = np.setdiff1d(np.arange(len(plot_ids)), pos)
        raise PlanFileError(f"{path}: {len(missing)} plot(s) of the instance have no row, "
                            f"e.g. plot_id '{plot_ids.iloc[missing[0]]}'")
    codes = np.zeros(len(plot_ids), dtype=np.int8)
    codes[pos] = pd.Categorical(action, categories=list(ACTIONS)).codes
    return codes


def check_plan_file(inst: Instance, s: Scenario, path: Path) -> CheckResult:
    actions = read_plan_actions(Path(path), inst.plots["plot_id"])
    return check_actions(inst, s, actions, Path(path))


def check_actions(
    inst: Instance, s: Scenario, actions: np.ndarray, path: Path | None = None
) -> CheckResult:
    rules = plot_rules(inst, s)
    families, _ = target_families(inst, s, rules)
    result = CheckResult(evaluate_targets(families, actions),
                         rule_violations(rules, actions, inst.plots["plot_id"].to_numpy()))
    if s.contiguity.enabled:
        blocks = farmland_blocks(inst, actions, s)
        tier = (f" ({s.contiguity.priority_block_mu:g} mu in the priority zones)"
                if s.contiguity.priority_block_mu else "")
        if blocks.violating:
            result.notes.append(f"farmland blocks: {blocks.violating} block(s) of new farmland "
                                f"neither touch existing farmland nor reach "
                                f"{s.contiguity.min_block_mu:g} mu{tier}")
        if blocks.forest_violating:
            result.notes.append(f"forest blocks: {blocks.forest_violating} block(s) of new "
                                "forest touch neither existing forest nor a green wedge")
    if path is not None:
        result.notes += _cross_check_columns(inst, path)
    return result


def _cross_check_columns(inst: Instance, path: Path) -> list[str]:
    """Areas written in the plan must agree with the geometry (a stale or edited plan)."""
    table = read_plan_csv(path)
    if "area_mu" not in table.columns:
        return []
    table["plot_id"] = restore_cells(table["plot_id"])
    truth = pd.Series(inst.plots["area_mu"].to_numpy(), index=inst.plots["plot_id"].astype(str))
    stated = pd.to_numeric(table["area_mu"], errors="coerce").to_numpy()
    true_area = truth.reindex(table["plot_id"]).to_numpy()
    diff = np.abs(stated - true_area)
    off = ~(diff <= 1e-2 + 1e-4 * np.abs(stated))
    if off.any():
        i = int(np.flatnonzero(off)[0])
        return [f"area_mu in the plan differs from the geometry for {off.sum()} plot(s), e.g. "
                f"plot_id '{table['plot_id'].iloc[i]}': {stated[i]} vs {true_area[i]:.3f}"]
    return []
