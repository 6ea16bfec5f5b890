"""Marxan as a peer on the same instances: export, run, read back, evaluate with our checker.

    python -m benchmarks.marxan INSTANCE.gpkg --marxan-src DIR [--seconds 60] [--blm 1e-5]

Marxan (Ball, Possingham & Watts; C++ source, public) solves a min-set problem: choose planning
units to reach each feature's target at least cost plus a boundary penalty, by simulated
annealing and iterative improvement. The instance goes to Marxan through the product's own
export (`greenbelt marxan export`, `optimizer/reporting/marxan.py`: planning units = plots, the
non-share ">=" targets as features, shared boundary in metres) and comes back through its
reader; this script adds only the build, the annealing settings (BLM, iterations calibrated to
about `--seconds`, repeats) and the evaluation: targets from the geometry, the block rule, the
objective of our model, as for any plan.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from benchmarks.peers import evaluate
from instances.instance import Instance
from optimizer.model.build import build_model
from optimizer.model.scenario import Scenario
from optimizer.reporting.marxan import export_marxan, read_marxan_solution


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


def write_inputs(inst: Instance, s: Scenario, folder: Path, blm: float, iterations: int,
                 reps: int, seed: int = 1) -> Path:
    """The product's export (`greenbelt marxan export`), with this run's annealing settings:
    BLM per metre of shared boundary, iterations and repeats, the best solution saved as CSV."""
    export_marxan(inst, s, folder)
    settings = {"BLM": blm, "NUMREPS": reps, "NUMITNS": iterations, "RANDSEED": seed,
                "SAVERUN": 0, "SAVESUMMARY": 0, "SAVESCEN": 0, "SAVETARGMET": 0,
                "SAVESUMSOLN": 0, "SAVELOG": 0, "SAVEBEST": 3, "VERBOSITY": 0}
    lines = (folder / "input.dat").read_text(encoding="utf-8").splitlines()
    kept = [ln for ln in lines if ln.split(" ")[0] not in settings]
    (folder / "input.dat").write_text("\n".join(kept + [f"{k} {v}" for k, v in settings.items()])
                                      + "\n", encoding="utf-8")
    return folder


def run_marxan(binary: Path, folder: Path, timeout: float) -> float:
    start = time.perf_counter()
    subprocess.run([str(binary), "input.dat"], cwd=folder, check=True, capture_output=True,
                   timeout=timeout, input=b"\n")
    return time.perf_counter() - start


def read_solution(inst: Instance, s: Scenario, folder: Path) -> np.ndarray:
    """Marxan's best solution as our actions (the product's reader)."""
    return read_marxan_solution(inst, s, next((folder / "output").glob("output_best*")))


def calibrate_iterations(binary: Path, inst: Instance, s: Scenario, folder: Path,
                         blm: float, reps: int, seconds: float) -> int:
    """Iterations per repeat so that the whole run takes about `seconds` (from a short run)."""
    probe = 200_000
    mi = write_inputs(inst, s, folder / "probe", blm, probe, 1)
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
    ap.add_argument("--blm", type=float, default=1e-5, help="per metre of shared boundary")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/greenbelt-marxan"))
    args = ap.parse_args()
    binary = build_marxan(args.marxan_src, args.work)
    inst = load_instance(args.instance)
    s = load_scenario(args.scenario)
    pm = build_model(inst, s)
    iterations = calibrate_iterations(binary, inst, s, args.work / "run", args.blm,
                                      args.reps, args.seconds)
    for _ in range(3):  # run time is not linear in iterations: rescale until near the budget
        mi = write_inputs(inst, s, args.work / "run" / "main", args.blm, iterations, args.reps)
        wall = run_marxan(binary, mi, timeout=20 * args.seconds)
        if 0.7 * args.seconds <= wall <= 1.3 * args.seconds:
            break
        iterations = max(10_000, int(iterations * args.seconds / max(wall, 1e-3)))
    row = {"instance": args.instance.name, "candidates": len(pm.candidates), "blm": args.blm,
           "reps": args.reps, "iterations": iterations, "wall_s": round(wall, 1),
           **evaluate(inst, s, pm, read_solution(inst, s, mi))}
    print(json.dumps(row))


if __name__ == "__main__":
    main()
