"""The random brute-force suite at scale: every back-end and block-rule method against enumeration
on many random tiny cases (tests/random_instances.py), and `solve --no-elastic` through the CLI on
the impossible geometry-first ones. Prints a summary; exits 1 if anything disagrees.

    python -m benchmarks.random_bruteforce --cases 1000             # seeds 10000..10999
    python -m benchmarks.random_bruteforce --cases 300 --seed0 20000 --runs highs:auto,cpsat:auto

A failure names its seed: ``tests.random_instances.random_case(seed)`` rebuilds the case.
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
import warnings
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed0", type=int, default=10_000)
    ap.add_argument("--runs", default="", help="backend:method,... (default: the CI suite's)")
    ap.add_argument("--cli", type=int, default=40,
                    help="impossible geometry-first cases to solve through the CLI with "
                         "--no-elastic (0: none)")
    args = ap.parse_args(argv)
    os.environ.setdefault("GREENBELT_CACHE", tempfile.mkdtemp(prefix="greenbelt-cache-"))
    warnings.filterwarnings("ignore")
    from tests.random_instances import random_case
    from tests.test_random_bruteforce import RUNS, check

    runs = [tuple(r.split(":")) for r in args.runs.split(",")] if args.runs else RUNS
    seeds = range(args.seed0, args.seed0 + args.cases)
    t0 = time.perf_counter()
    shapes: collections.Counter[str] = collections.Counter()
    for seed in seeds:
        case = random_case(seed)
        s, c = case.scenario, case.scenario.contiguity
        shapes.update(k for k, on in {
            f"layout {case.layout}": True, "impossible": case.best is None,
            "elastic": s.elastic.enabled, "block rule": c.enabled,
            "priority tier": c.enabled and c.priority_block_mu is not None,
            "forest connected": c.enabled and c.forest_connected,
            "township target": bool(s.targets.township_reduction_mu),
            "township budget": bool(s.budget.township_wan),
            "illegal building": bool(case.inst.plots["illegal"].any()),
            "central city straddled": bool((case.inst.plots["share_central_city"] % 1 > 0)
                                           .any()),
        }.items() if on)
    t_cases = time.perf_counter() - t0
    print(f"{args.cases} cases (seeds {seeds.start}..{seeds.stop - 1}) built and enumerated in "
          f"{t_cases:.0f} s")
    for name, n in sorted(shapes.items()):
        print(f"  {name:20s} {n:5d}")
    failures: list[str] = []
    for backend, method in runs:
        t = time.perf_counter()
        bad = [(seed, p) for seed in seeds if (p := check(seed, backend, method))]
        for seed, p in bad:
            failures.append(f"{backend}/{method} seed {seed}: {p}")
            print("FAIL", failures[-1], flush=True)
        print(f"{backend:6s} {method:15s} {args.cases - len(bad):5d} agree, {len(bad):3d} differ "
              f"({time.perf_counter() - t:.0f} s)")
    if args.cli:
        failures += _cli(seeds, args.cli)
    for f in failures:
        print("  ", f)
    print(f"total {time.perf_counter() - t0:.0f} s; {len(failures)} disagreement(s)")
    return 1 if failures else 0


def _cli(seeds: range, count: int) -> list[str]:
    """`solve --no-elastic` on impossible geometry-first cases: exit 3, summary.json only."""
    from typer.testing import CliRunner

    from optimizer.batch.specs import to_toml
    from optimizer.cli import app
    from tests.random_instances import random_case

    runner, out, codes = CliRunner(), Path(tempfile.mkdtemp(prefix="greenbelt-cli-")), []
    bad = []
    for seed in seeds:
        case = random_case(seed)
        if case.path is None or case.scenario.elastic.enabled or case.best is not None:
            continue
        toml = out / f"{seed}.toml"
        toml.write_text(to_toml(case.scenario.to_dict()), encoding="utf-8")
        r = runner.invoke(app, ["solve", str(case.path), "--out", str(out / str(seed)),
                                "--scenario", str(toml), "--no-elastic"])
        folder = out / str(seed)
        files = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        codes.append(r.exit_code)
        if r.exit_code != 3 or "summary.json" not in files \
                or not set(files) <= {"summary.json", "outputs.json"}:
            bad.append(f"cli --no-elastic seed {seed}: exit {r.exit_code}, wrote {files}: "
                       + (r.output.strip().splitlines() or [""])[-1][:200])
            print("FAIL", bad[-1], flush=True)
        if len(codes) == count:
            break
    print(f"cli --no-elastic on {len(codes)} impossible cases: exit codes "
          f"{dict(collections.Counter(codes))}")
    return bad


if __name__ == "__main__":
    raise SystemExit(main())
