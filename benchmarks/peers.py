"""Peers on the same instances, evaluated the way every plan is: a PuLP + CBC model as a competent
user would write it (one PuLP variable per column, the targets, and the compact flow formulation
of the block rule, solved by PuLP's CBC with a time limit), and Marxan (`benchmarks.marxan`).

    python -m benchmarks.peers INSTANCE.gpkg [--seconds 60] [--scenario s.toml]

Prints one JSON row: wall time (build + solve), CBC's status, and the plan evaluated from the
geometry (targets met, blocks breaking the rule, objective of our model).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pulp

from benchmarks.pulp_baseline import build_pulp
from instances.instance import Instance
from optimizer.blocks.flow import add_flow_formulation
from optimizer.blocks.rule import farmland_blocks, farmland_rule
from optimizer.model.build import PlanModel, build_model
from optimizer.model.kpi import KEEP, evaluate_targets
from optimizer.model.scenario import Scenario


def evaluate(inst: Instance, s: Scenario, pm: PlanModel, act: np.ndarray) -> dict:
    """A plan in our terms: objective of our model, targets from the geometry, the block rule."""
    checks = evaluate_targets(pm.families, act)
    blocks = farmland_blocks(inst, act, s)
    return {
        "objective": float(pm.model.objective_value(pm.vector(act))),
        "targets_met": sum(c.met for c in checks), "targets": len(checks),
        "missed": [c.key for c in checks if not c.met],
        "blocks_breaking_rule": int(blocks.violating),
        "vacated_plots": int((act != KEEP).sum()),
    }


def pulp_flow(inst: Instance, s: Scenario, seconds: float, threads: int = 2) -> dict:
    """Build with PuLP objects (targets + flow block rule), solve with CBC, evaluate."""
    start = time.perf_counter()
    pm = build_model(inst, s)
    model = pm.model
    for part in farmland_rule(inst, pm, s).parts:
        model = add_flow_formulation(model, part.graph, part.cols, prefix=f"flow_{part.name}")
    prob, built = build_pulp(model)
    left = max(1.0, seconds - (time.perf_counter() - start))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve(pulp.PULP_CBC_CMD(timeLimit=left, threads=threads, msg=False))
    wall = time.perf_counter() - start
    row: dict = {"peer": "pulp+cbc flow", "candidates": len(pm.candidates),
                 "pulp_build_s": round(built.build_s, 1), "wall_s": round(wall, 1),
                 "status": pulp.LpStatus[prob.status]}
    values = [v.varValue for v in sorted(prob.variables(), key=lambda v: int(v.name[1:]))]
    if prob.sol_status not in (pulp.LpSolutionIntegerFeasible, pulp.LpSolutionOptimal) \
            or any(v is None for v in values):
        return {**row, "plan": False}
    x = model.round_integers(np.array(values, dtype=float))
    return {**row, "plan": True, **evaluate(inst, s, pm, pm.actions(x, inst.num_plots))}


def main() -> None:
    from instances.loader import load_instance
    from optimizer.model.scenario import load_scenario

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", type=Path)
    ap.add_argument("--scenario", type=Path, default=None)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    inst = load_instance(args.instance)
    row = pulp_flow(inst, load_scenario(args.scenario), args.seconds)
    print(json.dumps({"instance": args.instance.name, **row}))


if __name__ == "__main__":
    main()
