"""Fine-grained instances with the block rule: time to the first rule-abiding plan meeting every
target, and the gap at the time limit, per back-end and method, one instance load per file.

    PYTHONPATH=. python benchmarks/granularity.py FILE.gpkg [...] --time-limit 60 \\
        --runs highs:rowgen scip:branch_and_cut highs:lns --out results/granularity.jsonl

Runs only the public API (load_instance, Scenario, solve_plan), so the same script measures
another checkout (PYTHONPATH=/other/checkout). The first-plan time (first rule-abiding plan
meeting every row of the model) is the solve's own record, `plan.timings["first_plan_s"]`
(seconds from the start of solve_plan; kept also when a child process found the plan); without
that record (another checkout), the progress messages that announce such a plan. Blank when
none is known (SCIP's own incumbents are not recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

from instances.loader import load_instance
from optimizer.model.scenario import Scenario
from optimizer.model.targets import plot_rules
from optimizer.plan.solve import solve_plan

FIRST_PLAN = ("first constructed plan", "constructed a rule-abiding plan",
              "greedy repair of the plan without the rule")


def _ago(message: str) -> float:
    """'first constructed plan found 3.2 s ago' -> 3.2 (the incumbent came before the message)."""
    words = message.split()
    return float(words[words.index("ago") - 2]) if "ago" in words else 0.0


def run_one(inst, backend: str, method: str, time_limit: float, workers: int) -> dict:
    s = Scenario()
    s.contiguity.method = method
    if hasattr(s.contiguity, "workers"):
        s.contiguity.workers = workers
    s.solver.threads = 1
    marks: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    plan = solve_plan(inst, s, backend=backend, time_limit=time_limit,
                      progress=lambda m: marks.append((time.perf_counter() - t0, m)))
    first = plan.timings.get("first_plan_s")
    if first is None:  # no record (another checkout): the progress messages
        first = next((t - _ago(m) for t, m in marks if m.startswith(FIRST_PLAN)), None)
    r = plan.result
    return {"instance": inst.name, "backend": backend, "method": method, "workers": workers,
            "time_limit": time_limit, "solve_s": round(plan.timings["solve_s"], 2),
            "first_plan_s": None if first is None else round(first, 2),
            "has_plan": bool(r is not None and r.has_solution), "all_met": plan.all_met,
            "elastic": plan.elastic, "objective": None if r is None else r.objective,
            "bound": None if r is None else r.bound, "gap": None if r is None else r.gap,
            "status": plan.status, "label": plan.method,
            # lns: neighbourhoods solved and the seconds of that phase (throughput per worker)
            "neighbourhoods": sum(r.get("groups", 0) for r in plan.rounds
                                  if r.get("phase") == "lns"),
            "lns_s": round(sum(r.get("seconds", 0.0) for r in plan.rounds
                               if r.get("phase") == "lns"), 2)}


def _peak_mb(who: int) -> float:
    """ru_maxrss in MB (Linux reports kilobytes)."""
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def table(path: Path) -> str:
    """The markdown table of a results file: one row per instance, tag and method."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    out = ["| instance | candidates | code | back-end / method | workers | first plan s | "
           "gap at limit | objective | bound | solve s |", "|---" * 10 + "|"]
    for r in rows:
        gap = "no plan" if not r["has_plan"] else (
            f"{r['gap']:.2%}" if r["gap"] is not None else "–")
        first = "–" if r["first_plan_s"] is None else f"{r['first_plan_s']:.1f}"
        obj = "–" if r["objective"] is None else f"{r['objective']:,.0f}"
        bound = "–" if r["bound"] is None else f"{r['bound']:,.0f}"
        out.append(f"| {r['instance']}{' (elastic)' if r['elastic'] else ''} | "
                   f"{r['candidates']:,} | {r['tag']} | {r['backend']} {r['method']} | "
                   f"{r['workers']} | {first} | {gap} | {obj} | {bound} | {r['solve_s']:.1f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--table", type=Path, help="print the markdown table of a results file")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--runs", nargs="+", default=["highs:rowgen", "scip:branch_and_cut",
                                                  "highs:lns"])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.table:
        print(table(a.table))
        return
    if a.out is None:
        ap.error("--out is required")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    for f in a.files:
        t = time.perf_counter()
        inst = load_instance(f)
        load_s = time.perf_counter() - t
        candidates = int(plot_rules(inst, Scenario()).candidate.sum())
        for spec in a.runs:
            backend, method = spec.split(":")
            row = run_one(inst, backend, method, a.time_limit, a.workers)
            row.update({"file": f, "load_s": round(load_s, 1), "tag": a.tag,
                        "candidates": candidates,
                        "machine": platform.processor() or platform.machine(),
                        # peak resident memory so far (MB): this process (the load and every
                        # run of this file so far) and its largest finished child (deadlines)
                        "peak_mb": _peak_mb(resource.RUSAGE_SELF),
                        "child_peak_mb": _peak_mb(resource.RUSAGE_CHILDREN),
                        "load": round(os.getloadavg()[0], 2)})
            print(json.dumps(row), flush=True)
            with a.out.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
