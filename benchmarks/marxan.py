"""Marxan as a peer on the same instances: export, run, read back, evaluate with our checker.

    python -m benchmarks.marxan INSTANCE.gpkg --marxan-src DIR [--seconds 60] [--blm 0.01]

Marxan (Ball, Possingham & Watts; C++ source, public) solves a min-set problem: choose planning
units to reach each feature's target at least cost plus a boundary penalty, by simulated
annealing and iterative improvement. It has no actions, so the mapping is the one a competent
user would write (documented in benchmarks/README.md):

- planning units: the scenario's candidate plots; illegal buildings locked in (status 2), plots
  with no allowed use locked out (3); cost: the cheaper allowed action's cost plus the lost
  output over the objective's years (万元), the same per-plot cost our objective uses;
- features: every reduction total (area), the priority share of each scope as "vacated area in
  the priority zones" with target share x the scope's reduction target, and the priority
  farmland target as priority area of farmland-suitable plots; the budget and the farmland >=
  forest balance have no Marxan form (left out; checked afterwards);
- boundary: shared boundary length (km) between candidates, weighted by BLM;
- back in our terms: a selected plot becomes farmland where farmland is allowed, else forest.

The plan is then evaluated as any plan is (targets from the geometry, block rule, objective of
our model), so the comparison is ratio against our best bound in the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.peers import evaluate
from instances.instance import Instance
from optimizer.model.build import PlanModel, build_model
from optimizer.model.kpi import FARMLAND, FOREST, KEEP
from optimizer.model.scenario import Scenario


def build_marxan(src: Path, cache: Path) -> Path:
    """Compile Marxan from its source folder once (its own Makefile; ~40 s on 2 cores)."""
    binary = cache / "bin" / "marxan"
    if binary.exists():
        return binary
    work = cache / "src"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(src, work)
    subprocess.run(["make", "-C", str(work)], check=True, capture_output=True)
    binary.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(work / "bin" / "marxan", binary)
    return binary


@dataclass
class MarxanInput:
    folder: Path
    candidates: np.ndarray  # plot row of each planning unit (pu id = position + 1)
    features: list[str]


def write_inputs(inst: Instance, s: Scenario, pm: PlanModel, folder: Path, blm: float,
                 iterations: int, reps: int, seed: int = 1) -> MarxanInput:
    cand, r = pm.candidates, pm.rules
    years = s.objective.output_years
    allowed_f = pm.model.col_upper[pm.f_cols] > 0
    allowed_g = pm.model.col_upper[pm.g_cols] > 0
    cost = np.minimum(np.where(allowed_f, r.cost_farmland[cand], np.inf),
                      np.where(allowed_g, r.cost_forest[cand], np.inf)) \
        * s.objective.cost_weight + years * r.lost_output[cand]
    status = np.where(r.must_vacate[cand], 2, np.where(allowed_f | allowed_g, 0, 3))
    cost = np.where(np.isfinite(cost), cost, 0.0)
    ids = np.arange(1, len(cand) + 1)
    (folder / "input").mkdir(parents=True, exist_ok=True)
    (folder / "output").mkdir(exist_ok=True)
    pd.DataFrame({"id": ids, "cost": cost.round(4), "status": status}).to_csv(
        folder / "input" / "pu.dat", index=False)

    area, pr = r.area[cand], r.priority[cand]
    amounts: list[np.ndarray] = []
    targets: list[float] = []
    names: list[str] = []
    reduction: dict[str, float] = {}
    for fam in pm.families:
        if fam.key in ("total_reduction", "central_reduction", "township_reduction"):
            W = fam.Wf[:, cand].toarray()
            for k, scope in enumerate(fam.scopes):
                amounts.append(W[k])
                targets.append(float(fam.rhs[k] - fam.offset))
                names.append(f"{fam.key}:{scope}")
            reduction[fam.key] = float(fam.rhs[0])
    for fam in pm.families:
        if fam.ratio_num is not None and fam.ratio_required is not None:
            scope_need = reduction.get("central_reduction" if fam.key.startswith("central")
                                       else "total_reduction", 0.0)
            amounts.append(fam.ratio_num[0][:, cand].toarray()[0])
            targets.append(fam.ratio_required * scope_need)
            names.append(f"{fam.key}:priority area")
        if fam.key == "priority_farmland":
            amounts.append(area * pr * allowed_f)
            targets.append(float(fam.rhs[0] - fam.offset))
            names.append("priority_farmland")
    spec = pd.DataFrame({"id": np.arange(1, len(names) + 1),
                         "target": np.maximum(np.array(targets), 0.0).round(4),
                         "spf": 1000.0, "name": [n.replace(" ", "_") for n in names]})
    spec.to_csv(folder / "input" / "spec.dat", index=False)
    rows = []
    for k, amount in enumerate(amounts):
        nz = np.flatnonzero(amount > 0)
        rows.append(pd.DataFrame({"species": k + 1, "pu": ids[nz], "amount": amount[nz].round(6)}))
    puvspr = pd.concat(rows).sort_values(["pu", "species"])
    puvspr.to_csv(folder / "input" / "puvspr.dat", index=False)

    adj = inst.adjacency[cand][:, cand].tocoo()
    upper = adj.row < adj.col
    pd.DataFrame({"id1": ids[adj.row[upper]], "id2": ids[adj.col[upper]],
                  "boundary": (adj.data[upper] / 1000.0).round(6)}).to_csv(
        folder / "input" / "bound.dat", index=False)
    params = {
        "BLM": blm, "PROP": 0.5, "RANDSEED": seed, "NUMREPS": reps, "NUMITNS": iterations,
        "STARTTEMP": -1, "COOLFAC": 6, "NUMTEMP": 10000, "COSTTHRESH": 0, "THRESHPEN1": 0,
        "THRESHPEN2": 0, "INPUTDIR": "input", "PUNAME": "pu.dat", "SPECNAME": "spec.dat",
        "PUVSPRNAME": "puvspr.dat", "BOUNDNAME": "bound.dat", "SCENNAME": "greenbelt",
        "SAVERUN": 0, "SAVEBEST": 3, "SAVESUMMARY": 0, "SAVESCEN": 0, "SAVETARGMET": 0,
        "SAVESUMSOLN": 0, "SAVELOG": 0, "OUTPUTDIR": "output", "RUNMODE": 1, "MISSLEVEL": 1,
        "ITIMPTYPE": 0, "HEURTYPE": -1, "CLUMPTYPE": 0, "VERBOSITY": 1,
    }
    (folder / "input.dat").write_text("".join(f"{k} {v}\n" for k, v in params.items()))
    return MarxanInput(folder, cand, names)


def run_marxan(binary: Path, mi: MarxanInput, timeout: float) -> float:
    start = time.perf_counter()
    subprocess.run([str(binary), "input.dat"], cwd=mi.folder, check=True, capture_output=True,
                   timeout=timeout, input=b"\n")
    return time.perf_counter() - start


def read_solution(inst: Instance, pm: PlanModel, mi: MarxanInput) -> np.ndarray:
    """Marxan's best solution as our actions (farmland where allowed, else forest)."""
    best = pd.read_csv(next((mi.folder / "output").glob("greenbelt_best*")))
    chosen = np.zeros(len(mi.candidates), bool)
    chosen[best.iloc[:, 0].to_numpy(int)[best.iloc[:, 1].to_numpy(int) > 0] - 1] = True
    act = np.full(inst.num_plots, KEEP, dtype=np.int8)
    allowed_f = pm.model.col_upper[pm.f_cols] > 0
    plots = mi.candidates[chosen]
    act[plots] = np.where(allowed_f[chosen], FARMLAND, FOREST)
    return act


def calibrate_iterations(binary: Path, inst: Instance, s: Scenario, pm: PlanModel, folder: Path,
                         blm: float, reps: int, seconds: float) -> int:
    """Iterations per repeat so that the whole run takes about `seconds` (from a short run)."""
    probe = 200_000
    mi = write_inputs(inst, s, pm, folder / "probe", blm, probe, 1)
    spent = run_marxan(binary, mi, timeout=10 * seconds)
    return max(10_000, int(probe * seconds / max(spent, 1e-3) / reps))


def main() -> None:
    from instances.loader import load_instance
    from optimizer.model.scenario import load_scenario

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", type=Path)
    ap.add_argument("--marxan-src", type=Path, required=True)
    ap.add_argument("--scenario", type=Path, default=None)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--blm", type=float, default=0.01)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/greenbelt-marxan"))
    args = ap.parse_args()
    binary = build_marxan(args.marxan_src, args.work)
    inst = load_instance(args.instance)
    s = load_scenario(args.scenario)
    pm = build_model(inst, s)
    iterations = calibrate_iterations(binary, inst, s, pm, args.work / "run", args.blm,
                                      args.reps, args.seconds)
    for _ in range(3):  # run time is not linear in iterations: rescale until near the budget
        mi = write_inputs(inst, s, pm, args.work / "run" / "main", args.blm, iterations, args.reps)
        wall = run_marxan(binary, mi, timeout=20 * args.seconds)
        if 0.7 * args.seconds <= wall <= 1.3 * args.seconds:
            break
        iterations = max(10_000, int(iterations * args.seconds / max(wall, 1e-3)))
    row = {"instance": args.instance.name, "candidates": len(pm.candidates), "blm": args.blm,
           "reps": args.reps, "iterations": iterations, "wall_s": round(wall, 1),
           **evaluate(inst, s, pm, read_solution(inst, pm, mi))}
    print(json.dumps(row))


if __name__ == "__main__":
    main()
