"""`greenbelt compare`: what changes between two plans of one instance.

Outputs: changed_plots.csv (every plot whose action differs, with from/to), kpi_deltas.csv (every
target's achieved value in A and B and the difference, then the totals) and difference_map.png.
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
OUTPUTS = ("changed_plots.csv", "kpi_deltas.csv", "difference_map.png")
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


def compare_actions(inst: Instance, s: Scenario, a: np.ndarray, b: np.ndarray) -> PlanComparison:
    rules = plot_rules(inst, s)
    families, _ = target_families(inst, s, rules)
    codes = change_codes(a, b)
    p = inst.plots
    moved = codes > 0
    names = np.asarray(ACTIONS)
    changed = pd.DataFrame({
        "plot_id": p["plot_id"].astype(str).to_numpy()[moved],
        "from": names[a[moved]],
        "to": names[b[moved]],
        "change": np.asarray(CHANGES)[codes[moved]],
        "area_mu": rules.area[moved].round(3),
        "district": p["district"].astype(str).to_numpy()[moved],
        "township": p["township"].astype(str).to_numpy()[moved],
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
    return PlanComparison(codes, changed, pd.DataFrame(rows), counts)


def draw_difference_map(inst: Instance, a: np.ndarray, codes: np.ndarray, path: Path,
                        title: str) -> None:
    colours = np.asarray(CHANGE_COLOURS, dtype=object)[codes]
    colours[(codes == 0) & (a != KEEP)] = UNCHANGED_VACATED
    fig, ax = plt.subplots(figsize=(9, 9), dpi=110)
    fill_plots(ax, inst.geometry.values, colours)
    handles = [Patch(color=CHANGE_COLOURS[k], label=f"{CHANGES[k]} ({(codes == k).sum():,} plots)")
               for k in range(1, len(CHANGES))]
    handles += [Patch(color=UNCHANGED_VACATED, label="vacated in both, same use"),
                Patch(color=CHANGE_COLOURS[0], label="unchanged")]
    handles += zone_outlines(ax, inst)
    finish_map(fig, ax, handles, title, path)


def compare_plan_files(inst: Instance, s: Scenario, plan_a: Path, plan_b: Path,
                       out: Path) -> tuple[PlanComparison, dict[str, Path]]:
    """Read both plans (validated against the instance), compare, write the three outputs."""
    ids = inst.plots["plot_id"]
    a = read_plan_actions(Path(plan_a), ids)
    b = read_plan_actions(Path(plan_b), ids)
    cmp = compare_actions(inst, s, a, b)
    prepare_output_folder(out, OUTPUTS)
    paths = dict(zip(("changed", "kpis", "map"), (out / name for name in OUTPUTS), strict=True))
    begin_set(out)  # the three files as one set, like a plan's (optimizer.plan.runset)
    try:
        write_csv(cmp.changed, paths["changed"])
        write_csv(cmp.kpis, paths["kpis"])
        with atomic_path(paths["map"]) as tmp:
            short = [f"{Path(p).parent.name}/{Path(p).name}" for p in (plan_a, plan_b)]
            draw_difference_map(inst, a, cmp.codes, tmp,
                                f"{inst.name}: A = {short[0]}, B = {short[1]}")
        finish_set(out, list(OUTPUTS))
    except OSError as err:
        raise OutputFolderError(f"{out}: cannot write the comparison ({err}); the folder is "
                                "marked incomplete") from None
    return cmp, paths
