"""Benchmarks: instance families x scenarios x back-ends x formulations -> results CSV and plots.

    python -m benchmarks.run --quick          # smoke test, < 2 minutes
    python -m benchmarks.run                  # the full series (12-17 minutes on 2 cores)
    python -m benchmarks.run --sweep          # longer limits on hard contiguity cases (~16 min)

Every case runs in its own subprocess (``--worker``), so a crash or hang of one back-end never
takes the runner down and the peak memory is that process's ``ru_maxrss``. Instances are
generated once into a cache outside the repository (``$GREENBELT_CACHE`` or
``~/.cache/greenbelt``) and pickled after their first load, so workers do not re-read GeoPackages.
Rows are appended to the CSV atomically (temporary file + ``os.replace``) as each case ends.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
MARKER = "BENCH_ROW "
THREADS = 2  # the design targets are stated for 2 cores
TIGHT_BUDGET_FACTOR = 0.75  # tight budget: 25% below the cost of the plan without it
COMPACT_WEIGHTS = {"isolated": 10.0, "boundary": 0.5}  # 万元 per mu / per metre

FIELDS = [
    "run_id", "instance", "district", "plots", "seed", "candidates", "scenario", "backend",
    "method", "method_used", "greedy", "time_limit", "mip_gap", "threads", "load_s", "build_s",
    "handoff_s", "solve_s", "total_s", "wall_s", "rounds", "objective", "bound", "gap",
    "bound_ok", "termination", "has_solution", "all_met", "elastic", "cost_wan", "budget_wan",
    "peak_mem_mb", "child_mem_mb", "loaded_mb", "solve_peak_mb", "columns", "rows", "nonzeros",
    "pulp_build_s", "pulp_write_s", "array_build_s", "array_handoff_s", "load_avg", "error",
]


@dataclass
class Case:
    """One subprocess run: kind "solve" (solve_plan on a scenario) or "pulp" (build baseline)."""

    district: str
    plots: int
    scenario: str = "targets"  # targets | tight_budget | contiguity | compact_isolated | ...
    backend: str = "highs"
    method: str = "mip"  # mip (no contiguity) | auto | branch_and_cut | rowgen | flow | pulp
    greedy: bool = True  # [contiguity] greedy_start: repaired warm start and fallback
    time_limit: float = 60.0
    mip_gap: float = 1e-3
    seed: int = 1
    kind: str = "solve"
    budget_wan: float | None = None  # tight_budget: the total budget
    trace: bool = False  # HiGHS: record incumbent and bound over time
    cache: str = ""
    candidates: int = 0  # > 0: a village-mode instance with this many candidate plots

    @property
    def instance(self) -> str:
        return f"{self.district}_c{self.candidates}" if self.candidates \
            else f"{self.district}_{self.plots}"

    def kill_after(self) -> float:
        """Wall-clock cap of the worker: the time limit with slack for loading and rounds."""
        return 2.0 * self.time_limit + 60.0 + max(self.plots, 4 * self.candidates) / 2000.0


# ---------------------------------------------------------------- instances


def cache_dir(given: str | None = None) -> Path:
    d = Path(given or os.environ.get("GREENBELT_CACHE") or Path.home() / ".cache" / "greenbelt")
    d.mkdir(parents=True, exist_ok=True)
    return d


def instance_file(district: str, plots: int, seed: int, cache: Path, candidates: int = 0) -> Path:
    """The cached GeoPackage, generated on first use: `plots` plots in the coarse mode, or
    `candidates` candidate plots in villages (realistic parcel sizes) when candidates > 0."""
    name = f"{district}_c{candidates}" if candidates else f"{district}_{plots}"
    path = cache / f"{name}_s{seed}.gpkg"
    if not path.exists():
        from instances.generator import generate

        if candidates:
            generate(district, None, seed, path, mode="villages", candidates=candidates)
        else:
            generate(district, plots, seed, path, mode="coarse")
    return path


def _loader_version() -> str:
    """Hash of the instances package source: a pickle made by other loader code is not reused."""
    h = hashlib.sha256()
    for f in sorted((REPO / "instances").glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:10]


def load_cached(district: str, plots: int, seed: int, cache: Path,
                candidates: int = 0) -> tuple[Any, float]:
    """The loaded Instance (from its pickle when present) and the GeoPackage load time
    (measured when the pickle was made, kept beside it)."""
    gpkg = instance_file(district, plots, seed, cache, candidates)
    pkl = gpkg.with_suffix(f".{_loader_version()}.pickle")
    if pkl.exists() and pkl.stat().st_mtime >= gpkg.stat().st_mtime:
        with pkl.open("rb") as fh:
            inst, load_s = pickle.load(fh)
        return inst, load_s
    from instances.loader import load_instance

    t = time.perf_counter()
    inst = load_instance(gpkg)
    load_s = time.perf_counter() - t
    tmp = pkl.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("wb") as fh:
        pickle.dump((inst, load_s), fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, pkl)
    return inst, load_s


# ---------------------------------------------------------------- one case, in the worker


def make_scenario(case: Case) -> Any:
    from optimizer.model.scenario import Scenario

    s = Scenario(name=case.scenario)
    s.contiguity.enabled = case.scenario == "contiguity"  # explicit: the default may change
    if s.contiguity.enabled:
        s.contiguity.method = "auto" if case.method == "mip" else case.method
        s.contiguity.greedy_start = case.greedy
    if case.scenario == "tight_budget":
        if case.budget_wan is None:
            raise ValueError("tight_budget needs budget_wan")
        s.budget.total_wan = float(case.budget_wan)
    if case.scenario.startswith("compact_"):
        form = case.scenario.removeprefix("compact_")
        s.compactness.form = form
        s.compactness.weight = COMPACT_WEIGHTS[form]
    s.solver.backend = case.backend
    s.solver.mip_gap = case.mip_gap
    s.solver.threads = THREADS
    s.solver.time_limit = case.time_limit
    return s


class _Trace:
    """Records (seconds, incumbent, bound) from HiGHS's MIP interrupt callback, on change."""

    def __init__(self) -> None:
        self.points: list[tuple[float, float, float]] = []
        self.solves = 0

    def install(self) -> None:
        import highspy

        trace = self
        base = highspy.Highs

        class TracingHighs(base):  # type: ignore[misc, valid-type]
            def run(self) -> Any:
                trace.solves += 1

                def on_interrupt(e: Any) -> None:
                    p = (float(e.data_out.running_time), float(e.data_out.mip_primal_bound),
                         float(e.data_out.mip_dual_bound))
                    if not trace.points or trace.points[-1][1:] != p[1:]:
                        trace.points.append(p)

                self.cbMipInterrupt.subscribe(on_interrupt)
                return super().run()

        highspy.Highs = TracingHighs


def _sizes(pm: Any) -> dict[str, int]:
    m = pm.model
    return {"candidates": len(pm.candidates), "columns": m.num_cols, "rows": m.num_rows,
            "nonzeros": int(m.A.nnz)}


def _status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_peak() -> float | None:
    """Reset the kernel's peak-RSS mark (Linux clear_refs 5) so that VmHWM afterwards is the
    peak of the solve alone; the resident memory now (instance loaded), or None if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _status_mb("VmRSS")


def _peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return own, child


_LIBRARIES = {"highs": "highspy", "cbc": "pulp", "cpsat": "ortools.sat.python.cp_model",
              "scip": "pyscipopt", "pulp": "pulp"}


def run_case(case: Case) -> dict[str, Any]:
    """Run one case in this process; the row for the CSV (without run-level fields)."""
    import importlib

    import numpy as np

    from optimizer.model.build import build_model

    # back-ends import their library inside solve(); import it first so it is not timed
    importlib.import_module("highspy")  # row generation and the greedy start use HiGHS
    importlib.import_module(_LIBRARIES[case.backend])
    inst, load_s = load_cached(case.district, case.plots, case.seed, cache_dir(case.cache),
                               case.candidates)
    row: dict[str, Any] = {
        "instance": case.instance, "district": case.district, "plots": inst.num_plots,
        "seed": case.seed, "scenario": case.scenario, "backend": case.backend,
        "method": case.method, "greedy": case.greedy, "time_limit": case.time_limit,
        "mip_gap": case.mip_gap, "threads": THREADS, "load_s": load_s,
        "budget_wan": case.budget_wan, "load_avg": os.getloadavg()[0],
    }
    s = make_scenario(case)
    loaded = _reset_peak()
    if case.kind == "pulp":
        row.update(_pulp_case(inst, s))
    else:
        trace = _Trace()
        if case.trace:
            trace.install()
        from optimizer.plan.solve import solve_plan

        plan = solve_plan(inst, s, backend=case.backend, time_limit=case.time_limit)
        r = plan.result
        ok = None
        if r is not None and r.objective is not None and r.bound is not None:
            ok = bool(r.bound <= r.objective + 1e-6 * max(1.0, abs(r.objective)))
        row.update({
            "method_used": plan.method, "build_s": plan.timings["build_s"],
            "handoff_s": r.build_time if r else None, "solve_s": plan.timings["solve_s"],
            "total_s": plan.timings["total_s"], "rounds": len(plan.rounds),
            "objective": r.objective if r else None, "bound": r.bound if r else None,
            "gap": r.gap if r else None, "bound_ok": ok,
            "termination": r.termination.value if r else "not_solved",
            "has_solution": bool(r and r.has_solution), "all_met": plan.all_met,
            "elastic": plan.elastic,
            "cost_wan": float(plan.totals.cost_wan) if r and r.has_solution else None,
        })
        row.update(_sizes(build_model(inst, plan.scenario)))  # the final elastic setting
        if case.trace:
            row["trace"] = trace.points
        if not np.isfinite(row["objective"] or 0.0):
            row["objective"] = None
    row["peak_mem_mb"], row["child_mem_mb"] = _peak_mb()
    if loaded is not None:
        row["loaded_mb"], row["solve_peak_mb"] = loaded, _status_mb("VmHWM")
    return row


def _pulp_case(inst: Any, s: Any) -> dict[str, Any]:
    """Array build (build_model, median of 3) and HiGHS hand-off against the PuLP-object build
    of the same model, in one process."""
    import statistics

    from benchmarks.pulp_baseline import time_pulp
    from optimizer.model.build import build_model
    from solvers.base import SolveOptions
    from solvers.highs import HighsBackend

    builds = []
    for _ in range(3):
        t = time.perf_counter()
        pm = build_model(inst, s)
        builds.append(time.perf_counter() - t)
    # time_limit 0: HiGHS takes the arrays and stops at once; build_time is the hand-off
    handoff = HighsBackend().solve(pm.model, SolveOptions(time_limit=0.0, threads=THREADS))
    pulp = time_pulp(pm.model)
    return {"method_used": "pulp objects", "array_build_s": statistics.median(builds),
            "array_handoff_s": handoff.build_time, "pulp_build_s": pulp.build_s,
            "pulp_write_s": pulp.write_s, "termination": "built", **_sizes(pm)}


def worker_main(payload: str) -> None:
    case = Case(**json.loads(payload))
    row = run_case(case)
    print(MARKER + json.dumps(row, default=str), flush=True)


# ---------------------------------------------------------------- the runner


def spawn(case: Case) -> dict[str, Any]:
    """Run `case` in a fresh interpreter; a row even when it crashes or is killed."""
    cmd = [sys.executable, "-m", "benchmarks.run", "--worker", json.dumps(asdict(case))]
    t = time.perf_counter()
    base = {"instance": case.instance, "district": case.district, "plots": case.plots,
            "seed": case.seed, "scenario": case.scenario, "backend": case.backend,
            "method": case.method, "greedy": case.greedy, "time_limit": case.time_limit,
            "mip_gap": case.mip_gap, "threads": THREADS, "budget_wan": case.budget_wan}
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                              timeout=case.kill_after())
    except subprocess.TimeoutExpired:
        return {**base, "termination": "killed_timeout", "wall_s": time.perf_counter() - t,
                "error": f"no result within {case.kill_after():.0f} s"}
    wall = time.perf_counter() - t
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            return {**json.loads(line[len(MARKER):]), "wall_s": wall}
    tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
    return {**base, "termination": "crashed", "wall_s": wall,
            "error": f"exit {proc.returncode}: {tail}"[:500]}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def append_rows(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    """Append rows to a CSV by rewriting it whole into a temporary file and renaming it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    if old and old.splitlines()[0] != ",".join(fields):  # written with other columns: convert
        w.writeheader()
        w.writerows(csv.DictReader(io.StringIO(old)))
        old = ""
    elif not old:
        w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k)) for k in fields})
    _write_atomic(path, old + buf.getvalue())


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def machine_info() -> dict[str, Any]:
    import importlib.metadata as md

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {"python": platform.python_version()}
    for pkg in ("highspy", "ortools", "pyscipopt", "pulp", "numpy", "scipy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(ram, 1),
            "platform": platform.platform(), "versions": versions, **_git()}


def _git() -> dict[str, Any]:
    """The commit measured, and uncommitted changes to the code under test (shared checkout)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=10).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = git("status", "--porcelain", "--", "optimizer", "solvers", "instances")
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted": [line[3:] for line in dirty.splitlines()]}


@dataclass
class Series:
    """A run of the runner: where rows go and what has been measured so far."""

    out: Path
    run_id: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    rows: list[dict[str, Any]] = field(default_factory=list)

    def run(self, case: Case) -> dict[str, Any]:
        row = {**spawn(case), "run_id": self.run_id}
        trace = row.pop("trace", None)
        append_rows(self.out, [row], FIELDS)
        if trace:
            append_rows(self.out.with_name(self.out.stem + "_traces.csv"),
                        [{"run_id": self.run_id, "instance": case.instance,
                          "scenario": case.scenario, "backend": case.backend, "t": t,
                          "incumbent": p, "bound": d} for t, p, d in trace],
                        ["run_id", "instance", "scenario", "backend", "t", "incumbent", "bound"])
        self.rows.append(row)
        print(_line(row), flush=True)
        return row


def _num(v: Any, spec: str) -> str:
    try:
        return format(float(v), spec)
    except (TypeError, ValueError):
        return "-"


def _line(r: dict[str, Any]) -> str:
    build = r.get("build_s") if r.get("build_s") not in (None, "") else r.get("array_build_s")
    solve = r.get("solve_s") if r.get("solve_s") not in (None, "") else r.get("pulp_build_s")
    return (f"{r.get('instance', ''):<16} {r.get('scenario', ''):<16} {r.get('backend', ''):<6} "
            f"{r.get('method', ''):<15} {'g' if r.get('greedy') in (True, 'True') else '-'} "
            f"{_num(build, '8.3f')} {_num(solve, '8.2f')} {_num(r.get('gap'), '8.3%')} "
            f"{str(r.get('termination', '')):<14} {str(r.get('all_met', '')):<5} "
            f"{_num(r.get('peak_mem_mb'), '6.0f')}")


HEADER = (f"{'instance':<16} {'scenario':<16} {'back':<6} {'method':<15} g "
          f"{'build_s':>8} {'solve_s':>8} {'gap':>8} {'termination':<14} {'met':<5} {'MB':>6}")


# ---------------------------------------------------------------- what to run


@dataclass
class Size:
    district: str
    plots: int
    time_limit: float  # per run
    mip_gap: float = 1e-3
    backends: tuple[str, ...] = ("highs", "cbc", "cpsat", "scip")
    contiguity: tuple[tuple[str, str, bool], ...] = ()  # (backend, method, greedy)
    extras: bool = True  # compactness forms
    tight: tuple[str, ...] = ("highs", "scip")  # back-ends for the tight budget
    limits: dict[str, float] = field(default_factory=dict)  # time limit per back-end, if not


QUICK = [
    Size("fengtai", 1000, 10.0, backends=("highs", "scip"), tight=("highs",),
         contiguity=(("highs", "rowgen", True), ("scip", "branch_and_cut", True)), extras=False),
    Size("chaoyang", 2000, 10.0, backends=("highs", "scip"), tight=("highs",),
         contiguity=(("highs", "rowgen", True), ("scip", "branch_and_cut", True)), extras=False),
]

_CONTIG_ALL = (("scip", "branch_and_cut", True), ("scip", "branch_and_cut", False),
               ("highs", "rowgen", True), ("highs", "rowgen", False), ("highs", "flow", True),
               ("scip", "flow", True), ("cbc", "rowgen", True), ("cpsat", "rowgen", True))
_EVERY = ("highs", "cbc", "cpsat", "scip")
FULL = [
    Size("chaoyang", 2000, 30.0, tight=_EVERY, contiguity=_CONTIG_ALL),
    Size("haidian", 5000, 30.0, tight=_EVERY, contiguity=_CONTIG_ALL),
    Size("chaoyang", 20000, 60.0, contiguity=_CONTIG_ALL),
    Size("fengtai", 50000, 60.0, contiguity=_CONTIG_ALL[:5]),
    Size("beijing", 200000, 300.0, mip_gap=1e-2, tight=("highs",), extras=False,
         limits={"cbc": 120.0, "cpsat": 120.0},
         contiguity=(("scip", "branch_and_cut", True), ("highs", "rowgen", True))),
]


# Gap against the time limit where the 60 s runs stop short (Fengtai 50k, small plots), and a
# second 20k district whose plots are as small as Fengtai's (Chaoyang's are 2.3x larger).
SWEEP = [Case("fengtai", 20000, "targets", "highs", time_limit=60.0, trace=True)] + [
    Case("fengtai", plots, "contiguity", b, m, time_limit=limit)
    for plots, limits in ((20000, (60.0,)), (50000, (150.0, 300.0)))
    for limit in limits
    for b, m in (("scip", "branch_and_cut"), ("highs", "rowgen"))
]


def cases_for(size: Size, cache: str, series: Series) -> None:
    """Run every case of one instance; the tight budget follows from the first plan's cost."""
    base = Case(size.district, size.plots, time_limit=size.time_limit, mip_gap=size.mip_gap,
                cache=cache)
    series.run(replace(base, kind="pulp", method="pulp", backend="pulp"))
    first = None

    def on(b: str) -> Case:
        return replace(base, backend=b, time_limit=size.limits.get(b, size.time_limit))

    for b in size.backends:
        row = series.run(replace(on(b), trace=b == "highs"))
        first = first or (row if row.get("cost_wan") else None)
    if first is not None:
        budget = TIGHT_BUDGET_FACTOR * float(first["cost_wan"])
        for b in size.tight:
            series.run(replace(on(b), scenario="tight_budget", budget_wan=budget,
                               trace=b == "highs"))
    for b, method, greedy in size.contiguity:
        series.run(replace(on(b), scenario="contiguity", method=method, greedy=greedy))
    if size.extras:
        for form in COMPACT_WEIGHTS:
            series.run(replace(base, scenario=f"compact_{form}"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small smoke series (< 2 minutes)")
    p.add_argument("--sweep", action="store_true", help="longer time limits on the hard "
                   "contiguity cases (~17 minutes), to benchmarks/results/sweep.csv")
    p.add_argument("--out", type=Path, help="results CSV (default: benchmarks/results/"
                   "results.csv; with --quick a file in the cache)")
    p.add_argument("--cache", help="instance cache (default $GREENBELT_CACHE or "
                   "~/.cache/greenbelt)")
    p.add_argument("--only", help="run only instances whose name contains this")
    p.add_argument("--no-plots", action="store_true", help="do not draw the figures")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return 0
    cache = cache_dir(args.cache)
    default = RESULTS / ("sweep.csv" if args.sweep else "results.csv")
    out = args.out or (cache / "bench" / "quick.csv" if args.quick else default)
    series = Series(out)
    info = {**machine_info(), "run_id": series.run_id, "threads": THREADS}
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(out.with_name(out.stem + "_machine.json"), json.dumps(info, indent=2) + "\n")
    print(f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB; "
          f"{info['versions']}\nresults -> {out}\n{HEADER}", flush=True)
    t0 = time.perf_counter()
    if args.sweep:
        for case in SWEEP:
            load_cached(case.district, case.plots, case.seed, cache)
            series.run(replace(case, cache=str(cache)))
        print(f"{len(series.rows)} runs in {time.perf_counter() - t0:.0f} s", flush=True)
        return 0
    for size in QUICK if args.quick else FULL:
        if args.only and args.only not in f"{size.district}_{size.plots}":
            continue
        # generate and pickle outside the timed workers
        load_cached(size.district, size.plots, 1, cache)
        cases_for(size, str(cache), series)
    print(f"{len(series.rows)} runs in {time.perf_counter() - t0:.0f} s", flush=True)
    if not args.no_plots and not args.quick:
        from benchmarks.plots import draw

        draw(out, run_id=series.run_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
