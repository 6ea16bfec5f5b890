"""`greenbelt compare`: what changes between two plans of one instance.

Outputs: changed_plots.csv (every plot whose action differs, with from/to), kpi_deltas.csv (every
target's achieved value in A and B and the difference, then the totals), difference_map.png and
report.html (the KPI deltas and the difference map as one offline page).
KPIs are recomputed from the two plans' actions and the instance, as `greenbelt check` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from instances.instance import Instance  # noqa: E402
from optimizer.model.kpi import (  # noqa: E402
    ACTIONS,
    FARMLAND,
    FOREST,
    KEEP,
    evaluate_targets,
    plan_totals,
    rule_violations,
)
from optimizer.model.scenario import Scenario  # noqa: E402
from optimizer.model.targets import plot_rules, target_families  # noqa: E402
from optimizer.plan.cells import restore_cells  # noqa: E402
from optimizer.plan.check import read_plan_actions  # noqa: E402
from optimizer.plan.runset import (  # noqa: E402
    OutputFolderError,
    begin_set,
    finish_set,
    prepare_output_folder,
)
from optimizer.reporting.export import atomic_path, write_csv  # noqa: E402
from optimizer.reporting.maps import COLOURS, fill_plots, finish_map, zone_outlines  # noqa: E402

# Change kinds, in code order (codes index this tuple).
CHANGES = ("unchanged", "kept->vacated", "vacated->kept", "farmland->forest", "forest->farmland")
CHANGE_COLOURS = ("#e6e6e6", "#2166ac", "#d6604d", COLOURS["forest"], COLOURS["farmland"])
UNCHANGED_VACATED = "#969696"
OUTPUTS = ("changed_plots.csv", "kpi_deltas.csv", "difference_map.png", "report.html")
# [phasing]: a plot vacated to the same use in both plans but in another year is a change too
YEAR_MOVES = ("moved to an earlier year", "moved to a later year")
YEAR_MOVE_COLOURS = ("#fdae61", "#762a83")
TOTALS = (("vacated_mu", "vacated area", "mu"), ("vacated_plots", "vacated plots", "plots"),
          ("farmland_mu", "to farmland", "mu"), ("forest_mu", "to forest", "mu"),
          ("cost_wan", "cost", "万元"), ("lost_output_wan", "lost output", "万元/year"),
          ("new_priority_farmland_mu", "new farmland in priority zones", "mu"))


def change_codes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per plot: index into CHANGES of how its action goes from plan A to plan B."""
    code = np.zeros(len(a), dtype=np.int8)
    code[(a == KEEP) & (b != KEEP)] = 1
    code[(a != KEEP) & (b == KEEP)] = 2
    code[(a == FARMLAND) & (b == FOREST)] = 3
    code[(a == FOREST) & (b == FARMLAND)] = 4
    return code


@dataclass
class PlanComparison:
    codes: np.ndarray  # per plot, index into CHANGES
    changed: pd.DataFrame  # plot_id, from, to, change, area_mu, district, township
    kpis: pd.DataFrame  # kpi, key, scope, unit, required, a, b, delta, met_a, met_b
    counts: dict[str, int]  # plots per change kind
    moves: np.ndarray | None = None  # [phasing]: 0 same year, 1 earlier, 2 later in B


def year_moves(a: np.ndarray, b: np.ndarray, ya: np.ndarray, yb: np.ndarray) -> np.ndarray:
    """Per plot: 1 when B vacates it to the same use in an earlier year than A, 2 later."""
    same = (a == b) & (a != KEEP)
    return np.select([same & (yb < ya), same & (yb > ya)], [1, 2], 0).astype(np.int8)


def read_years(path: Path, plot_ids: pd.Series) -> np.ndarray | None:
    """The `year` column of a plan file in instance order (0 where empty); None without one."""
    table = pd.read_csv(path, encoding="utf-8-sig", dtype={"plot_id": str})
    if "year" not in table.columns:
        return None
    table["plot_id"] = restore_cells(table["plot_id"])
    pos = pd.Index(plot_ids.astype(str)).get_indexer(table["plot_id"])
    out = np.zeros(len(plot_ids), dtype=np.int32)
    out[pos] = pd.to_numeric(table["year"], errors="coerce").fillna(0).to_numpy(np.int32)
    return out


def compare_actions(inst: Instance, s: Scenario, a: np.ndarray, b: np.ndarray,
                    years: tuple[np.ndarray, np.ndarray] | None = None) -> PlanComparison:
    """years: the two plans' vacating years ([phasing]); a plot moved by a year is a change."""
    rules = plot_rules(inst, s)
    families, _ = target_families(inst, s, rules)
    codes = change_codes(a, b)
    p = inst.plots
    mv = year_moves(a, b, *years) if years is not None else np.zeros(len(a), dtype=np.int8)
    moved = (codes > 0) | (mv > 0)
    names = np.asarray(ACTIONS)
    kinds = np.asarray(CHANGES + YEAR_MOVES)[np.where(mv > 0, len(CHANGES) - 1 + mv, codes)]
    changed = pd.DataFrame({
        "plot_id": p["plot_id"].astype(str).to_numpy()[moved],
        "from": names[a[moved]],
        "to": names[b[moved]],
        "change": kinds[moved],
        "area_mu": rules.area[moved].round(3),
        "district": p["district"].astype(str).to_numpy()[moved],
        "township": p["township"].astype(str).to_numpy()[moved],
        **({} if years is None else {
            "from_year": pd.Series(years[0][moved], dtype="Int64").where(a[moved] != KEEP),
            "to_year": pd.Series(years[1][moved], dtype="Int64").where(b[moved] != KEEP)}),
    })
    rows = []
    for ca, cb in zip(evaluate_targets(families, a), evaluate_targets(families, b), strict=True):
        share = ca.share_required is not None
        va = ca.share_achieved if share else ca.achieved
        vb = cb.share_achieved if share else cb.achieved
        delta = None if va is None or vb is None else vb - va
        rows.append({"kpi": ca.label, "key": ca.key, "scope": ca.scope,
                     "unit": "share" if share else ca.unit,
                     "required": ca.share_required if share else ca.required,
                     "a": va, "b": vb, "delta": delta, "met_a": ca.met, "met_b": cb.met})
    ta, tb = plan_totals(rules, a), plan_totals(rules, b)
    for key, label, unit in TOTALS:
        va, vb = float(getattr(ta, key)), float(getattr(tb, key))
        rows.append({"kpi": label, "key": key, "scope": "all", "unit": unit, "required": None,
                     "a": va, "b": vb, "delta": vb - va, "met_a": None, "met_b": None})
    ids = p["plot_id"].to_numpy()
    va, vb = (sum(len(v.plot_ids) for v in rule_violations(rules, x, ids)) for x in (a, b))
    rows.append({"kpi": "plots breaking a rule", "key": "rule_violations", "scope": "all",
                 "unit": "plots", "required": 0, "a": va, "b": vb, "delta": vb - va,
                 "met_a": va == 0, "met_b": vb == 0})
    counts = {name: int((codes == k).sum()) for k, name in enumerate(CHANGES)}
    if years is not None:
        counts["unchanged"] -= int((mv > 0).sum())
        counts.update({name: int((mv == k + 1).sum()) for k, name in enumerate(YEAR_MOVES)})
        rows += _year_rows(rules.area, a, b, *years)
    return PlanComparison(codes, changed, pd.DataFrame(rows), counts,
                          mv if years is not None else None)


def _year_rows(area: np.ndarray, a: np.ndarray, b: np.ndarray, ya: np.ndarray,
               yb: np.ndarray) -> list[dict]:
    """Cumulative vacated area at the end of each year of either plan."""
    out = []
    for year in sorted(set(ya[a != KEEP]) | set(yb[b != KEEP])):
        va = float(area[(a != KEEP) & (ya > 0) & (ya <= year)].sum())
        vb = float(area[(b != KEEP) & (yb > 0) & (yb <= year)].sum())
        out.append({"kpi": "vacated by the end of the year", "key": "cumulative_vacated_mu",
                    "scope": str(year), "unit": "mu", "required": None, "a": va, "b": vb,
                    "delta": vb - va, "met_a": None, "met_b": None})
    return out


def difference_colours(a: np.ndarray, codes: np.ndarray, moves: np.ndarray | None = None,
                       ) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Per plot the difference map's colour, and the legend (colour, label with counts)."""
    colours = np.asarray(CHANGE_COLOURS, dtype=object)[codes]
    colours[(codes == 0) & (a != KEEP)] = UNCHANGED_VACATED
    legend = [(CHANGE_COLOURS[k], f"{CHANGES[k]} ({(codes == k).sum():,} plots)")
              for k in range(1, len(CHANGES))]
    if moves is not None:
        for k, colour in enumerate(YEAR_MOVE_COLOURS):
            colours[moves == k + 1] = colour
        legend += [(YEAR_MOVE_COLOURS[k], f"{YEAR_MOVES[k]} ({(moves == k + 1).sum():,} plots)")
                   for k in range(2)]
    legend += [(UNCHANGED_VACATED, "vacated in both, same use"),
               (CHANGE_COLOURS[0], "unchanged")]
    return colours, legend


def write_difference_page(inst: Instance, a: np.ndarray, cmp: PlanComparison, path: Path,
                          title: str) -> Path:
    from optimizer.reporting.pages import write_compare_report

    colours, legend = difference_colours(a, cmp.codes, cmp.moves)
    return write_compare_report(inst, cmp.kpis, cmp.changed, colours, legend, path, title)


def draw_difference_map(inst: Instance, a: np.ndarray, codes: np.ndarray, path: Path,
                        title: str, moves: np.ndarray | None = None) -> None:
    colours, legend = difference_colours(a, codes, moves)  # the same colours as report.html
    fig, ax = plt.subplots(figsize=(9, 9), dpi=110)
    fill_plots(ax, inst.geometry.values, colours)
    handles = [Patch(color=c, label=label) for c, label in legend]
    handles += zone_outlines(ax, inst)
    finish_map(fig, ax, handles, title, path)


def compare_plan_files(inst: Instance, s: Scenario, plan_a: Path, plan_b: Path,
                       out: Path) -> tuple[PlanComparison, dict[str, Path]]:
    """Read both plans (validated against the instance), compare, write the three outputs."""
    ids = inst.plots["plot_id"]
    a = read_plan_actions(Path(plan_a), ids)
    b = read_plan_actions(Path(plan_b), ids)
    ya, yb = read_years(Path(plan_a), ids), read_years(Path(plan_b), ids)
    cmp = compare_actions(inst, s, a, b, None if ya is None or yb is None else (ya, yb))
    prepare_output_folder(out, OUTPUTS)
    paths = dict(zip(("changed", "kpis", "map", "report"), (out / name for name in OUTPUTS),
                     strict=True))
    begin_set(out)  # the three files as one set, like a plan's (optimizer.plan.runset)
    try:
        write_csv(cmp.changed, paths["changed"])
        write_csv(cmp.kpis, paths["kpis"])
        with atomic_path(paths["map"]) as tmp:
            short = [f"{Path(p).parent.name}/{Path(p).name}" for p in (plan_a, plan_b)]
            draw_difference_map(inst, a, cmp.codes, tmp,
                                f"{inst.name}: A = {short[0]}, B = {short[1]}", cmp.moves)
        write_difference_page(inst, a, cmp, paths["report"],
                              f"{inst.name}: A = {short[0]}, B = {short[1]}")
        finish_set(out, list(OUTPUTS))
    except OSError as err:
        raise OutputFolderError(f"{out}: cannot write the comparison ({err}); the folder is "
                                "marked incomplete") from None
    return cmp, paths
