"""The cluster decomposition on one instance: the decomposed first plan against the whole-model
construction (seconds, objective against the LP bound), and the Lagrangian bound against the
LP-with-cuts bound within a time budget. One JSON line per instance.

    PYTHONPATH=. python benchmarks/decomposition.py FILE.gpkg [FILE ...] --lp-rounds 8 \
        --bound-seconds 30 --construct-seconds 120 [--no-construct] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np

from instances.loader import load_instance
from optimizer.blocks.construct import construct
from optimizer.blocks.decompose import lp_bound
from optimizer.blocks.master.bound import decomposition_bound
from optimizer.blocks.master.partition import partition
from optimizer.blocks.master.restricted import first_plan
from optimizer.blocks.neighbourhood import Runner
from optimizer.blocks.rule import farmland_rule, with_presolve
from optimizer.model.build import build_model
from optimizer.model.scenario import Scenario
from solvers.base import SolveOptions


def gap(objective: float | None, bound: float) -> float | None:
    return None if objective is None else round(100 * (objective - bound) / abs(objective), 3)


def one(path: str, a: argparse.Namespace) -> dict:
    inst = load_instance(path)
    s = Scenario()
    pm = build_model(inst, s)
    rule = farmland_rule(inst, pm, s)
    nc = len(pm.candidates)
    t0 = time.perf_counter()
    model = with_presolve(pm.model, rule, pm)
    duals: list[np.ndarray] = []
    opts = SolveOptions(time_limit=600, threads=1)
    cut, bound1, x_lp, _ = lp_bound(model, rule, opts, t0, 1.0, lambda _m: None, 1, duals)
    t_lp = time.perf_counter() - t0
    built = first_plan(cut, rule, nc, x_lp, duals[-1], replace_limit(opts, 120))
    t_first = time.perf_counter() - t0
    part = partition(cut, rule, nc)
    sizes = np.bincount(part.comp, minlength=part.k)
    row = {"instance": path.rsplit("/", 1)[-1], "candidates": nc, "clusters": part.k,
           "largest_cluster": int(sizes.max()), "lp_s": round(t_lp, 2),
           "lp_bound_1": round(bound1, 1), "first_plan_s": round(t_first, 2),
           "first_plan": built.objective, "first_plan_gap_pct": gap(built.objective, bound1)}
    if not a.no_construct:
        t = time.perf_counter()
        c = construct(model, rule, replace_limit(opts, a.construct_seconds))
        row |= {"construct_s": round(time.perf_counter() - t, 2), "construct": c.objective,
                "construct_gap_pct": gap(c.objective, bound1)}
    duals = []
    cut, bound, _, _ = lp_bound(cut, rule, opts, time.perf_counter(), 1.0, lambda _m: None,
                                a.lp_rounds, duals)
    row["lp_bound"] = round(bound, 1)
    t = time.perf_counter()
    with Runner(a.workers) as runner:
        lag = decomposition_bound(cut, rule, nc, duals[-1], runner, a.bound_seconds)
    if lag is not None:
        row |= {"lagrangian": round(lag.value, 1),
                "lagrangian_s": round(time.perf_counter() - t, 2),
                "clusters_solved": lag.solved, "clusters_exact": int(lag.exact.sum()),
                "lagrangian_vs_lp_pct": round(100 * (lag.value - bound) / abs(bound), 4)}
    return row


def replace_limit(opts: SolveOptions, seconds: float) -> SolveOptions:
    return replace(opts, time_limit=seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--lp-rounds", type=int, default=8)
    ap.add_argument("--bound-seconds", type=float, default=30.0)
    ap.add_argument("--construct-seconds", type=float, default=120.0)
    ap.add_argument("--no-construct", action="store_true")
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    for f in a.files:
        print(json.dumps(one(f, a)), flush=True)


if __name__ == "__main__":
    main()
