"""The largest cluster's pricing problem at the LP duals: its bound by the directed
(arborescence) LP rounds against SCIP branch-and-cut with the undirected cuts, each within its
own seconds. One JSON line: the bounds, the directed rounds' history and seconds.

    PYTHONPATH=. python benchmarks/directed_bound.py FILE.gpkg --lp-rounds 20 \
        --seconds 90 [--scip-seconds 9 30 90]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass, replace

import numpy as np

from instances.instance import Instance
from instances.loader import load_instance
from optimizer.blocks.decompose import lp_bound
from optimizer.blocks.master.bound import (
    PricingProblem,
    pricing_problem,
    pricing_scip,
    signed,
)
from optimizer.blocks.master.columns import abide, allowed, local_ok, reduced_plot_costs
from optimizer.blocks.master.directed import directed_bound
from optimizer.blocks.master.partition import partition
from optimizer.blocks.rule import Rule, farmland_rule, with_presolve
from optimizer.model.build import build_model
from optimizer.model.scenario import Scenario
from solvers import get_backend
from solvers.base import SolveOptions
from solvers.model import ArrayModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--lp-rounds", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--scip-seconds", type=float, nargs="*", default=[],
                    help="SCIP runs, one per limit given (none: SCIP not run)")
    a = ap.parse_args()
    t0 = time.perf_counter()
    at = at_lp_duals(a.file, a.lp_rounds)
    inst, cut, rule, nc, lp, full = at.inst, at.cut, at.rule, at.nc, at.lp, at.duals
    part = partition(cut, rule, nc)
    pi = signed(cut, part, full[part.coupling])
    d = reduced_plot_costs(cut, part, pi)
    ok = allowed(cut, part)
    act, stuck = abide(rule, d, ok)
    valid = local_ok(cut, part, act)
    valid[part.comp[stuck]] = False
    c = int(np.argmax(np.bincount(part.comp, minlength=part.k)))
    row: dict = {"instance": inst.name, "lp_bound": round(lp, 1), "cluster": c,
                 "plots": int((part.comp == c).sum()),
                 "setup_s": round(time.perf_counter() - t0, 1)}
    p = pricing_problem(cut, rule, part, d, c, act, bool(valid[c]), a.seconds)
    row["pricing_lp"] = round(float(_lp_value(p)), 1)
    t = time.perf_counter()
    bound, history, _ = directed_bound(p.model, p.rule, a.seconds)
    row.update({"directed_bound": None if bound is None else round(bound, 1),
                "directed_s": round(time.perf_counter() - t, 1), "directed_rounds": len(history),
                "history": [round(h, 1) for h in history]})
    for limit in a.scip_seconds:
        t = time.perf_counter()
        scip = pricing_scip(p, limit).bound
        row.setdefault("scip", []).append({"limit": limit, "bound": None if scip is None else
                                           round(scip, 1), "s": round(time.perf_counter() - t, 1)})
    row["machine"] = f"{platform.machine()}, {platform.python_version()}"
    print(json.dumps(row), flush=True)


@dataclass
class AtLPDuals:
    """An instance's presolved model after LP cut rounds, and that last LP's row duals."""

    inst: Instance
    cut: ArrayModel
    rule: Rule
    nc: int
    lp: float  # the LP bound
    duals: np.ndarray  # per row of `cut` (0 on the last round's cuts)


def at_lp_duals(file: str, rounds: int) -> AtLPDuals:
    inst = load_instance(file)
    s = Scenario()
    pm = build_model(inst, s)
    rule = farmland_rule(inst, pm, s)
    duals: list[np.ndarray] = []
    cut, lp, _, _ = lp_bound(with_presolve(pm.model, rule, pm), rule, SolveOptions(threads=1),
                             time.perf_counter(), 1.0, lambda _m: None, rounds, duals)
    full = np.zeros(cut.num_rows)
    full[:min(len(duals[-1]), cut.num_rows)] = duals[-1][:cut.num_rows]
    return AtLPDuals(inst, cut, rule, len(pm.candidates), lp, full)


def _lp_value(p: PricingProblem) -> float:
    lp = replace(p.model, integrality=np.zeros(p.model.num_cols, bool))
    return get_backend("highs").solve(lp, SolveOptions(threads=1)).objective


if __name__ == "__main__":
    main()
