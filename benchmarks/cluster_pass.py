"""The Lagrangian bound's pass over the clusters (no giant-cluster step) at the LP duals, each
pricing problem by SCIP branch-and-cut (the default where SCIP is installed) or by HiGHS row
generation, within the same seconds. One JSON line per pass: seconds, clusters solved and
exact, the bound from the clusters other than the largest, L(π).

    PYTHONPATH=. python benchmarks/cluster_pass.py FILE.gpkg --lp-rounds 17 --seconds 90 \
        --passes scip rowgen
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

import optimizer.blocks.master.bound as bound
from benchmarks.directed_bound import at_lp_duals
from optimizer.blocks.master.partition import partition

PASSES = {"scip": bound.solve_pricing_bb, "rowgen": bound.solve_pricing}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--lp-rounds", type=int, default=17)
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--passes", nargs="+", choices=sorted(PASSES), default=["scip", "rowgen"])
    a = ap.parse_args()
    at = at_lp_duals(a.file, a.lp_rounds)
    inst, cut, rule, lp, full = at.inst, at.cut, at.rule, at.lp, at.duals
    part = partition(cut, rule, at.nc)
    largest = int(np.argmax(np.bincount(part.comp, minlength=part.k)))
    others = np.arange(part.k) != largest
    for name in a.passes:
        bound.solve_pricing_bb = PASSES[name]  # the pass's solver (SCIP where installed)
        t = time.perf_counter()
        lag = bound.lagrangian_bound(cut, rule, part, full[part.coupling], None, a.seconds,
                                     full[part.local], None)
        print(json.dumps({
            "instance": inst.name, "pass": name, "lp_bound": round(lp, 1),
            "s": round(time.perf_counter() - t, 1), "solved": lag.solved,
            "exact": int(lag.exact.sum()), "clusters": part.k,
            "others_bound": round(float(lag.lb[others].sum()), 1),
            "largest_bound": round(float(lag.lb[largest]), 1), "value": round(lag.value, 1),
            "machine": f"{platform.machine()}, {platform.python_version()}"}), flush=True)


if __name__ == "__main__":
    main()
