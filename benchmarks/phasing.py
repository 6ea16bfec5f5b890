"""The five-year schedule against the single-period solve of the same instance (issue 11).

    python -m benchmarks.phasing INSTANCE.gpkg --out benchmarks/results/phasing.csv \
        [--single-limit 120] [--phased-limit 300] [--backends highs scip]

Cases, each with the farmland-block rule (100 mu) and the seed targets: the single-period model;
the time-expanded model (`examples/phased.toml`: 2021-2025, even budgets with carry-over, the
auto milestones) solved monolithically (two-stage start, block rule at every year end); and the
two-stage method alone (set, then schedule; bound = LP relaxation of the monolithic model).
Each row: sizes, time, objective, bound, gap, status, and whether `check` (recomputed from the
plan, the years and the geometry) passes every target and per-year rule.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import pandas as pd

from instances.loader import load_instance
from optimizer.model.build import build_model
from optimizer.model.phasing import build_phased
from optimizer.model.scenario import load_scenario
from optimizer.plan.check import check_actions
from optimizer.plan.solve import solve_plan

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "phased.toml"


def run_case(inst, s, backend: str, limit: float, label: str) -> dict:
    pm = build_phased(inst, s) if s.phasing.enabled else build_model(inst, s)
    t = time.perf_counter()
    plan = solve_plan(inst, s, backend=backend, time_limit=limit, elastic=False)
    wall = time.perf_counter() - t
    r = plan.result
    ok = None
    if r is not None and r.has_solution:
        ok = not check_actions(inst, s, plan.actions, years=plan.years).problems()
    return {"instance": inst.name, "case": label, "backend": backend, "method": plan.method,
            "candidates": len(pm.candidates), "columns": pm.model.num_cols,
            "rows": pm.model.num_rows, "limit_s": limit, "wall_s": round(wall, 1),
            "objective": r.objective if r else None, "bound": r.bound if r else None,
            "gap": r.gap if r else None, "termination": r.termination.value if r else None,
            "all_met": plan.all_met, "check_passes": ok}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("instance", type=Path)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/phasing.csv"))
    ap.add_argument("--single-limit", type=float, default=120.0)
    ap.add_argument("--phased-limit", type=float, default=300.0)
    ap.add_argument("--backends", nargs="+", default=["highs", "scip"])
    args = ap.parse_args()
    inst = load_instance(args.instance)
    phased = load_scenario(EXAMPLE)
    single = copy.deepcopy(phased)
    single.phasing.enabled = False
    two = copy.deepcopy(phased)
    two.phasing.method = "two_stage"
    rows = []
    for backend in args.backends:
        for label, s, limit in (("single-period", single, args.single_limit),
                                ("5-year monolithic", phased, args.phased_limit),
                                ("5-year two-stage", two, args.phased_limit)):
            if label == "5-year two-stage" and backend != args.backends[0]:
                continue  # stage 2 and the LP bound are HiGHS whatever the back-end
            rows.append(run_case(inst, s, backend, limit, label))
            print(json.dumps(rows[-1]), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(args.out, index=False)
    machine = {"python": platform.python_version(), "machine": platform.machine(),
               "processor": platform.processor(), "instance": str(args.instance)}
    args.out.with_suffix(".json").write_text(json.dumps(machine, indent=2))


if __name__ == "__main__":
    main()
