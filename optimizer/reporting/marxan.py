"""Marxan interoperability: an instance and a scenario as Marxan input files, and a Marxan
solution read back as a plan file that `greenbelt check` evaluates like any other.

Marxan chooses planning units (here: plots to vacate) at least cost to meet feature targets.
The translation (documented in README "Marxan"):
- planning units = every plot, id = row number (1-based; `pu_plot_ids.csv` maps it to plot_id);
  status 3 (locked out) for plots that cannot be vacated (not a candidate, protected, or neither
  farmland nor forest allowed), 2 (locked in) for illegal buildings, else 0;
- a vacated plot becomes farmland where farmland is allowed, else forest (Marxan has one
  decision per unit); cost = cost_weight x (demolition + that restoration) + output_years x
  annual output, 万元, as in this tool's objective;
- features = every ">=" target row of the scenario that is not a share (reductions: whole
  instance, central city, townships; priority farmland), amount = the unit's contribution under
  that assignment, target = required minus the existing part; rows already met are left out;
- share targets (priority shares), the budget, conversion balance and the farmland-block rule
  have no Marxan form: they are not passed, and `check` reports them on the plan read back;
- bound.dat = shared boundary lengths (m) between plots; BLM 0 (set it in input.dat).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from instances.instance import Instance
from optimizer.model.kpi import ACTIONS, FARMLAND, FOREST, KEEP
from optimizer.model.scenario import Scenario
from optimizer.model.targets import plot_rules, target_families
from optimizer.reporting.export import atomic_path, write_csv

SPF = 1000.0  # species penalty factor: shortfalls cost far more than any plot
INPUT_DAT = """Input file for Marxan, written by greenbelt ({name})
BLM 0
PROP 0
RANDSEED -1
NUMREPS 10
NUMITNS 1000000
STARTTEMP -1
NUMTEMP 10000
COOLFAC 0
COSTTHRESH 0
THRESHPEN1 0
THRESHPEN2 0
INPUTDIR .
PUNAME pu.dat
SPECNAME spec.dat
PUVSPRNAME puvspr.dat
BOUNDNAME bound.dat
SCENNAME output
SAVERUN 3
SAVEBEST 3
SAVESUMMARY 3
SAVESCEN 3
SAVETARGMET 3
SAVESUMSOLN 3
SAVELOG 3
OUTPUTDIR output
RUNMODE 1
MISSLEVEL 1
ITIMPTYPE 0
HEURTYPE -1
CLUMPTYPE 0
VERBOSITY 2
"""


@dataclass
class MarxanExport:
    folder: Path
    units: int
    features: list[str]
    left_out: list[str] = field(default_factory=list)


def assigned_actions(inst: Instance, s: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """(use if vacated: FARMLAND / FOREST / KEEP where it cannot be vacated, status per plot)."""
    r = plot_rules(inst, s)
    use = np.where(r.farmland_ok, FARMLAND, np.where(r.forest_ok, FOREST, KEEP))
    can = r.candidate & (use != KEEP)
    status = np.where(can, np.where(r.must_vacate, 2, 0), 3)
    return use, status


def export_marxan(inst: Instance, s: Scenario, out: Path) -> MarxanExport:
    rules = plot_rules(inst, s)
    families, _ = target_families(inst, s, rules)
    use, status = assigned_actions(inst, s)
    n = inst.num_plots
    ids = np.arange(1, n + 1)
    w_out, w_cost = s.objective.output_years, s.objective.cost_weight
    cost = np.where(use == FOREST, rules.cost_forest, rules.cost_farmland) * w_cost \
        + w_out * rules.lost_output
    out.mkdir(parents=True, exist_ok=True)
    (out / "output").mkdir(exist_ok=True)
    specs, amounts, left_out = [], [], []
    farm = (use == FARMLAND).astype(float)
    forest = (use == FOREST).astype(float)
    for fam in families:
        if fam.sense != ">=" or fam.ratio_required is not None:
            left_out.append(f"{fam.key} ({fam.label}): no Marxan form")
            continue
        W = fam.Wf.multiply(farm[None, :]) + fam.Wg.multiply(forest[None, :])
        W = sp.csr_matrix(W)
        for k, scope in enumerate(fam.scopes):
            target = float(fam.rhs[k] - fam.offset)
            if target <= 0:
                left_out.append(f"{fam.key} [{scope}]: already met (target {target:g})")
                continue
            fid = len(specs) + 1
            specs.append({"id": fid, "target": round(target, 6), "spf": SPF,
                          "name": f"{fam.key}[{scope}]"})
            row = W.getrow(k).tocoo()
            keep = (row.data > 0) & (status[row.col] != 3)  # only units Marxan may select
            amounts.append(pd.DataFrame({"species": fid, "pu": ids[row.col[keep]],
                                         "amount": row.data[keep].round(6)}))
    pu = pd.DataFrame({"id": ids, "cost": cost.round(4), "status": status})
    puvspr = (pd.concat(amounts, ignore_index=True) if amounts
              else pd.DataFrame(columns=["species", "pu", "amount"]))
    puvspr = puvspr.sort_values(["pu", "species"], kind="stable")
    adj = sp.triu(inst.adjacency, k=1).tocoo()
    bound = pd.DataFrame({"id1": ids[adj.row], "id2": ids[adj.col],
                          "boundary": np.round(adj.data, 3)})
    tables = {"pu.dat": pu, "spec.dat": pd.DataFrame(specs, columns=["id", "target", "spf",
                                                                       "name"]),
              "puvspr.dat": puvspr, "bound.dat": bound,
              "pu_plot_ids.csv": pd.DataFrame({"id": ids,
                                               "plot_id": inst.plots["plot_id"].astype(str)})}
    for name, df in tables.items():
        with atomic_path(out / name) as tmp:
            df.to_csv(tmp, index=False, encoding="utf-8")
    with atomic_path(out / "input.dat") as tmp:
        tmp.write_text(INPUT_DAT.format(name=s.name), encoding="utf-8")
    return MarxanExport(out, n, [x["name"] for x in specs], left_out)


def read_marxan_solution(inst: Instance, s: Scenario, path: Path) -> np.ndarray:
    """Per-plot actions from a Marxan solution file (output_best / output_rNNNNN, .csv or .txt:
    columns PUID or planning_unit, and SOLUTION or solution; 1 = selected)."""
    if not path.exists():
        raise ValueError(f"{path}: solution file not found")
    df = pd.read_csv(path, sep=None, engine="python")
    cols = {str(c).strip().lower(): c for c in df.columns}
    pid = cols.get("puid", cols.get("planning_unit", cols.get("pu")))
    sol = cols.get("solution", cols.get("sol"))
    if pid is None or sol is None:
        raise ValueError(f"{path}: expected columns PUID (or planning_unit) and SOLUTION; "
                         f"found {', '.join(map(str, df.columns))}")
    ids = pd.to_numeric(df[pid], errors="coerce").to_numpy()
    bad = np.isnan(ids) | (ids < 1) | (ids > inst.num_plots) | (ids % 1 != 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}: row {i + 2}: planning unit {df[pid].iloc[i]!r} is not "
                         f"1..{inst.num_plots}")
    selected = np.zeros(inst.num_plots, dtype=bool)
    selected[ids.astype(int)[df[sol].to_numpy(dtype=float) > 0] - 1] = True
    use, status = assigned_actions(inst, s)
    locked = selected & (status == 3)
    if locked.any():
        i = int(np.flatnonzero(locked)[0])
        raise ValueError(f"{path}: {int(locked.sum())} selected planning unit(s) are locked out "
                         f"in this export (e.g. unit {i + 1}, plot_id "
                         f"{inst.plots['plot_id'].iloc[i]!r}): the solution is not from this "
                         "instance and scenario")
    return np.where(selected, use, KEEP).astype(np.int8)


def write_marxan_plan(inst: Instance, s: Scenario, solution: Path, out: Path) -> Path:
    """The solution as a plan.csv (plot_id, action, area_mu) for `greenbelt check`/`compare`."""
    actions = read_marxan_solution(inst, s, solution)
    table = pd.DataFrame({"plot_id": inst.plots["plot_id"].astype(str),
                          "action": np.asarray(ACTIONS)[actions],
                          "area_mu": inst.plots["area_mu"].to_numpy(float).round(3)})
    write_csv(table, out)
    return out
