"""Every per-year rule of a schedule, recomputed from the plan (action + year per plot) and the
geometry: milestones, annual budgets, township capacities (the `YearFamily` definitions the model
compiles), illegal buildings by their year, and the block rule at every year end. Used by
`solve` (the plan's KPIs) and `greenbelt check` (any plan file with a `year` column)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from instances.instance import Instance
from optimizer.blocks.rule import farmland_blocks
from optimizer.model.kpi import KEEP, RuleViolation, TargetCheck, evaluate_targets
from optimizer.model.phasing import year_families
from optimizer.model.scenario import Scenario
from optimizer.model.targets import instance_targets, plot_rules
from optimizer.plan.cells import restore_cells


class ScheduleFileError(ValueError):
    """A plan file whose `year` column cannot be read as a schedule (one line)."""


def read_plan_years(path: Path, plot_ids: pd.Series, actions: np.ndarray,
                    s: Scenario) -> np.ndarray:
    """Per plot (instance order): the calendar year it is vacated, 0 where kept."""
    table = pd.read_csv(path, encoding="utf-8-sig", dtype={"plot_id": str})
    if "year" not in table.columns:
        raise ScheduleFileError(f"{path}: missing column 'year' (the scenario has [phasing] "
                                "enabled)")
    table["plot_id"] = restore_cells(table["plot_id"])
    pos = pd.Index(plot_ids.astype(str)).get_indexer(table["plot_id"])
    raw = pd.to_numeric(table["year"], errors="coerce")
    vac = actions[pos] != KEEP
    years = s.phasing.years
    ok_year = raw.isin(years).to_numpy()
    bad = (vac & ~ok_year) | (~vac & raw.notna().to_numpy())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = (f"{table['year'].iloc[i]!r} is not a year of {years[0]}-{years[-1]}" if vac[i]
                else f"{table['year'].iloc[i]!r} given for a kept plot (leave it empty)")
        raise ScheduleFileError(f"{path}: row {i + 2} (plot_id '{table['plot_id'].iloc[i]}'), "
                                f"field 'year': {what}")
    out = np.zeros(len(plot_ids), dtype=np.int32)
    out[pos] = np.where(vac, raw.fillna(0).to_numpy(), 0).astype(np.int32)
    return out


def cumulative(actions: np.ndarray, years: np.ndarray, year: int) -> np.ndarray:
    """The plan as it stands at the end of `year`."""
    return np.where((years > 0) & (years <= year), actions, KEEP).astype(np.int8)


def schedule_checks(inst: Instance, s: Scenario, actions: np.ndarray, years: np.ndarray
                    ) -> tuple[list[TargetCheck], list[RuleViolation], list[str]]:
    """(per-year target checks, rule violations, block-rule notes), all from plan + geometry."""
    rules = plot_rules(inst, s)
    dt = instance_targets(inst, s, rules)
    ph = s.phasing
    checks: list[TargetCheck] = []
    for yf in year_families(inst, s, rules, dt):
        year = ph.years[yf.year_index]
        acts = (np.where(years == year, actions, KEEP).astype(np.int8) if yf.annual
                else cumulative(actions, years, year))
        checks += evaluate_targets([yf.family], acts)
    ids = inst.plots["plot_id"].astype(str).to_numpy()
    by = ph.years[ph.illegal_year_index()]
    late = rules.must_vacate & (rules.farmland_ok | rules.forest_ok) & (actions != KEEP) \
        & (years > by)
    violations = [RuleViolation(f"illegal building vacated after {by}", list(ids[late]))] \
        if late.any() else []
    notes = []
    if s.contiguity.enabled:
        for year in ph.years[:-1]:  # the last year is the plan itself, checked as before
            b = farmland_blocks(inst, cumulative(actions, years, year), s)
            if b.violating or b.forest_violating:
                notes.append(f"block rule at the end of {year}: {b.violating} farmland and "
                             f"{b.forest_violating} forest block(s) break it")
    return checks, violations, notes
