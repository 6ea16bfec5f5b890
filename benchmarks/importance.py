"""Importance of every vacated plot of the demo plan: screened, warm, parallel vs the naive loop.

    python -m benchmarks.importance                       # chaoyang 20k seed 1, workers 1 and 2
    python -m benchmarks.importance --workers 1 2 4 --naive-sample 20 --gap 0.001
    python -m benchmarks.importance --candidates 10000 --method lns --plan-time-limit 60 \
        --time-limit 60 --gap 0.01 --full-budget 0 --workers 2 4 1 --naive-sample 2

Wall and CPU seconds (this process and its pool workers, all threads) are both recorded, with the
load average at the end of each run: on a shared machine CPU seconds compare better than wall.
The naive loop (one cold re-solve per question, no bounds, no shared plans, no rule cuts carried)
is timed on a random sample of the questions (seed 0) and extrapolated to all of them: the
extrapolation is labelled as such. The plan is solved once (`--plan-time-limit`, `--method`)
and examined by every run; `--base FILE` keeps it in a pickle between invocations. `--sample N`
asks only N questions (seed 0) in the screened runs too, the same N in each.
Results: benchmarks/results/importance.json (one record per run) and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import pickle
import platform
import time
from pathlib import Path

import highspy

from benchmarks.run import instance_file
from instances.loader import load_instance
from optimizer.batch.alternatives import build, solved_plan, strict
from optimizer.batch.importance import plot_importance
from optimizer.model.scenario import Scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--district", default="chaoyang")
    ap.add_argument("--plots", type=int, default=20_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--candidates", type=int, default=0, help="village instance (0: coarse)")
    ap.add_argument("--method", default=None, help="contiguity method of the plan solve")
    ap.add_argument("--plan-time-limit", type=float, default=None)
    ap.add_argument("--time-limit", type=float, default=None, help="per full re-solve")
    ap.add_argument("--full-budget", type=float, default=None,
                    help="seconds for full re-solves after the neighbourhoods (default: no limit)")
    ap.add_argument("--sample", type=int, default=None, help="questions per screened run")
    ap.add_argument("--base", type=Path, default=None, help="pickle of the solved plan")
    ap.add_argument("--naive-sample", type=int, default=20)
    ap.add_argument("--gap", type=float, default=None, help="default: the scenario's mip_gap")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "GREENBELT_CACHE", Path.home() / ".cache" / "greenbelt")))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/importance.json"))
    a = ap.parse_args()
    path = instance_file(a.district, a.plots, 1, a.cache, a.candidates)
    inst = load_instance(path)
    scenario = Scenario()
    scenario.solver.threads = 1
    if a.method:
        scenario.contiguity.method = a.method
    if a.base is not None and a.base.exists():
        base = pickle.loads(a.base.read_bytes())
    else:
        plan_s = copy.deepcopy(strict(scenario))
        if a.plan_time_limit is not None:
            plan_s.solver.time_limit = a.plan_time_limit
        base = solved_plan(inst, plan_s, build(inst, plan_s))
        if a.base is not None:
            a.base.write_bytes(pickle.dumps(base))
    runs = []
    env = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python":
           platform.python_version(), "highs": highspy.Highs().version(),
           "instance": path.name, "gap": a.gap, "plan_objective": base[2],
           "plan_bound": base[3], "plan_status": base[4], "load_average_start": os.getloadavg(),
           "full_budget": a.full_budget, "time_limit": a.time_limit, "sample": a.sample}

    def cpu() -> float:  # this process and its finished children (pool workers), all threads
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def run(label: str, **kw) -> dict:
        t, c = time.perf_counter(), cpu()
        rep = plot_importance(path, scenario, inst=inst, gap=a.gap, time_limit=a.time_limit,
                              base=base, **kw)
        s = rep.summary
        rec = {"run": label, "questions": s["questions"], "screen": s["decided_by_screen"],
               "neighbourhood": s.get("by_neighbourhood"), "re_solved": s["re_solved"],
               "open": s.get("open"), "interval": s.get("interval"),
               "irreplaceable": s["irreplaceable"], "failed": s["failed"],
               # CPU of the questions in their worker processes (os.times below misses the
               # pool's processes: they are children of the forkserver, not of this process)
               "worker_cpu_s": s["cpu_s"]["questions"], "lp_screen_s": s["seconds"]["lp_screen"],
               "plan_s": s["seconds"]["plan"], "questions_s": s["seconds"]["questions"],
               "wall_s": time.perf_counter() - t, "cpu_s": cpu() - c,
               "load_average": os.getloadavg()[0], "vacated_plots": s["vacated_plots"]}
        print(json.dumps(rec), flush=True)
        runs.append(rec)
        return rec

    naive = run("naive sample", naive=True, sample=a.naive_sample)
    for w in a.workers:
        full = run(f"screened, {w} worker(s)", workers=w, full_budget=a.full_budget,
                   sample=a.sample)
    total = full["questions"]
    if a.sample is not None:
        total = a.sample
    per = naive["questions_s"] / max(naive["questions"], 1)
    if naive["questions"] < total:
        runs.append({"run": "naive loop, all questions (extrapolated)", "questions": total,
                     "questions_s": per * total, "extrapolated_from": naive["questions"]})
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"env": env, "runs": runs}, indent=2), encoding="utf-8")
    print(f"\n{env}\n\n| run | questions | by bounds | re-solved | questions s | vs naive |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in runs:
        ratio = per * total / r["questions_s"] if r["questions"] == total else None
        print(f"| {r['run']} | {r['questions']} | {r.get('screen', '')} | {r.get('re_solved', '')}"
              f" | {r['questions_s']:,.0f} | {'' if ratio is None else f'{ratio:.1f}x'} |")


if __name__ == "__main__":
    main()
