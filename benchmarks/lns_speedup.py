"""Speed-up of the neighbourhood solves: the same groups of clusters solved in this process,
on a local process pool and on a local Dask cluster, wall-clock seconds for all of them.

    PYTHONPATH=. python benchmarks/lns_speedup.py FILE.gpkg --groups 8 --workers 1 2 4 --dask
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from instances.loader import load_instance
from optimizer.blocks.construct import construct
from optimizer.blocks.decompose import neighbourhoods
from optimizer.blocks.neighbourhood import Runner, sub_problems
from optimizer.blocks.rule import farmland_rule, with_presolve
from optimizer.model.build import build_model
from optimizer.model.scenario import Scenario
from solvers.base import SolveOptions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--groups", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sub-limit", type=float, default=10.0)
    ap.add_argument("--dask", action="store_true", help="also a local Dask cluster")
    a = ap.parse_args()
    inst = load_instance(a.file)
    s = Scenario()
    pm = build_model(inst, s)
    rule = farmland_rule(inst, pm, s)
    model = with_presolve(pm.model, rule, pm)
    built = construct(model, rule, SolveOptions(time_limit=120, mip_gap=1e-3))
    assert built.x is not None, built.message
    nc = len(pm.candidates)
    comp = rule.parts[0].graph.comp
    live = (model.col_upper[:nc] > 0) | (model.col_upper[nc:2 * nc] > 0)
    groups = neighbourhoods(comp, live, np.ones(int(comp.max()) + 1), a.groups,
                            np.random.default_rng(0))
    subs = sub_problems(model, rule, built.x, [np.concatenate([g, nc + g]) for g in groups],
                        2 * nc, a.sub_limit, 1e-3)
    runs: list[tuple[str, int, bool]] = [(f"pool {w}", w, False) for w in a.workers]
    runs += [(f"dask {w}", w, True) for w in a.workers if a.dask and w > 1]
    for name, w, dask in runs:
        cluster = None
        if dask:  # a local Dask cluster of w single-threaded worker processes
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=w, threads_per_worker=1, dashboard_address=None)
        kw = {"scheduler": cluster.scheduler_address} if cluster else {"workers": w}
        with Runner(**kw) as runner:
            runner.map(subs[:1])  # start-up (imports in the workers) not timed
            t = time.perf_counter()
            out = runner.map(subs)
            wall = time.perf_counter() - t
        print(json.dumps({"instance": inst.name, "runner": name, "groups": len(subs),
                          "plots": int(sum(len(g) for g in groups)), "wall_s": round(wall, 2),
                          "sum_sub_s": round(sum(sec for _, sec in out), 2),
                          "improved": sum(x is not None for x, _ in out),
                          "cpus": os.cpu_count(), "load": round(os.getloadavg()[0], 2)}),
              flush=True)
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
