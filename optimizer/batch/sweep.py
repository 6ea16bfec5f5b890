"""Scenario sweeps: many scenarios on one instance, each solved into its own folder, resumable.

A sweep folder DIR holds
  DIR/<name-or-index>_<hash8>/  plan.csv, summary.json, plan.gpkg, map.png (as `greenbelt solve`),
                                scenario.toml (the resolved scenario) and done.json, written LAST;
                                or error.json when the scenario failed;
  DIR/comparison.csv            one row per scenario (UTF-8 with BOM), rewritten after each one.
  DIR/report.html               the same table as one offline page, written at the end.

The job key is a sha256 over the instance fingerprint (see `instance_fingerprint`), the resolved
scenario (every field, defaults filled in) and the solve options. A rerun skips every folder whose
done.json carries the same key; every file goes through `atomic_path` (temp name + os.replace), so a
run killed at any moment leaves only complete files and, at worst, unused dot-temp files, which the
next run of that scenario removes. Failed scenarios are retried on a rerun.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from instances.instance import Instance
from optimizer.batch.lifecycle import dask_client, die_with_parent, stop_workers
from optimizer.batch.specs import (
    ScenarioSpec,
    SweepError,
    instance_fingerprint,
    job_key,
    parse_grid,
    specs_from_files,
    specs_from_grid,
    to_toml,
)
from optimizer.blocks.deadline import pool_context
from optimizer.model.scenario import ScenarioError, scenario_from_dict
from optimizer.plan.runset import MARKER
from optimizer.plan.solve import Plan, solve_plan
from optimizer.reporting.export import atomic_path, json_ready, write_csv, write_json, write_outputs

# Inputs (specs, keys, TOML) live in batch.specs; they are part of the sweep's public names.
__all__ = [
    "ScenarioSpec", "Sweep", "SweepError", "SweepReport", "instance_fingerprint", "job_key",
    "parse_grid", "plan_sweep", "run_sweep", "specs_from_files", "specs_from_grid", "to_toml",
]

OUTPUTS = ("plan.csv", "summary.json", "plan.gpkg", "map.png", "scenario.toml")
DONE, ERROR, COMPARISON = "done.json", "error.json", "comparison.csv"
REPORT = "report.html"
TIME_COLUMNS = ("build_s", "solve_s", "total_s")


# ---------------------------------------------------------------- jobs


@dataclass
class Job:
    name: str
    folder: str  # inside the sweep directory: <label>_<hash8>
    key: str
    params: dict[str, Any]
    scenario: dict[str, Any] | None  # resolved (Scenario.to_dict()); None if invalid
    error: str | None = None  # why the scenario is invalid


@dataclass
class Sweep:
    instance: Path
    fingerprint: str
    out: Path
    jobs: list[Job]
    options: dict[str, Any]  # solve options beyond the scenario (part of the key)


def _slug(text: str) -> str:
    return re.sub(r"[^\w.=-]+", "-", text, flags=re.UNICODE).strip("-.")[:60] or "scenario"


def plan_sweep(instance: Path, specs: list[ScenarioSpec], out: Path, *,
               elastic: bool | None = None) -> Sweep:
    """Validate every scenario (an invalid one becomes a job that fails) and key every job.
    Jobs with the same key are the same computation: only the first is kept."""
    fp = instance_fingerprint(Path(instance))
    options = {"elastic": elastic}
    jobs: list[Job] = []
    seen: set[str] = set()
    for spec in specs:
        try:
            scenario, error = scenario_from_dict(spec.raw, spec.name).to_dict(), None
        except (ScenarioError, TypeError, ValueError) as err:
            scenario, error = None, str(err)
        key = job_key(fp, scenario if scenario is not None else spec.raw, options)
        if key in seen:
            continue
        seen.add(key)
        jobs.append(Job(spec.name, f"{_slug(spec.label)}_{key[:8]}", key, spec.params, scenario,
                        error))
    return Sweep(Path(instance), fp, Path(out), jobs, options)


# ---------------------------------------------------------------- one scenario (runs in a worker)


@dataclass
class Task:
    """Everything a worker needs; picklable for process pools and Dask."""

    instance: str
    fingerprint: str
    root: str
    job: Job
    options: dict[str, Any]


_INSTANCES: dict[tuple[str, str], Instance] = {}
_LOAD_LOCK = threading.Lock()
_WRITE_LOCK = threading.Lock()  # pyplot is not thread-safe (Dask workers may run threads)


def _instance(path: str, fingerprint: str) -> Instance:
    """Each worker process loads the instance once per sweep."""
    with _LOAD_LOCK:
        inst = _INSTANCES.get((path, fingerprint))
        if inst is None:
            from instances.loader import load_instance

            _INSTANCES.clear()
            inst = _INSTANCES[(path, fingerprint)] = load_instance(path)
        return inst


def plan_row(plan: Plan) -> dict[str, Any]:
    """The KPI row of one plan: status, solver figures, every target flattened, totals, times.
    Share targets report the shares (achieved / required), the others the amounts."""
    r = plan.result
    if r is None or not r.has_solution:
        status = "no_plan"
    else:
        status = "met" if plan.all_met else "missed"
    row: dict[str, Any] = {
        "status": status,
        "termination": "" if r is None else r.termination.value,
        "backend": "" if r is None else r.solver,
        "gap": plan.gap,  # from the recomputed objective and the solver's valid bound
        "objective": plan.objective,  # recomputed from the plan's actions
        "solver_objective": None if r is None else r.objective,
        "bound": plan.bound,
        "all_met": plan.all_met,
        "elastic": plan.elastic,
    }
    for c in plan.checks:
        col = c.key if c.scope == "all" else f"{c.key}[{c.scope}]"
        shares = c.share_required is not None
        row[f"{col}.achieved"] = c.share_achieved if shares else c.achieved
        row[f"{col}.required"] = c.share_required if shares else c.required
        row[f"{col}.met"] = c.met
    t = plan.totals
    row.update(cost_wan=t.cost_wan, lost_output_wan=t.lost_output_wan, vacated_mu=t.vacated_mu,
               farmland_mu=t.farmland_mu, forest_mu=t.forest_mu, vacated_plots=t.vacated_plots,
               rule_violations=sum(len(v.plot_ids) for v in plan.violations))
    row.update({k: plan.timings.get(k) for k in TIME_COLUMNS})
    return json_ready(row)


def _record(job: Job, row: dict[str, Any], error: str = "") -> dict[str, Any]:
    return {"key": job.key, "name": job.name, "folder": job.folder, "params": job.params,
            "row": row, "error": error}


def failure(job: Job, err: BaseException | str) -> dict[str, Any]:
    if isinstance(err, str | SweepError | ScenarioError):
        message = str(err)  # already in the planner's words
    else:
        message = f"{type(err).__name__}: {err}"
    rec = _record(job, {"status": "failed"}, message.splitlines()[0] if message else "failed")
    if isinstance(err, BaseException):
        rec["traceback"] = "".join(traceback.format_exception(err))
    return rec


def _clear(folder: Path) -> None:
    """Before (re)solving: drop markers of an earlier attempt and temp files of a killed one."""
    for name in (DONE, ERROR):
        (folder / name).unlink(missing_ok=True)
    for name in (*OUTPUTS, DONE, ERROR):
        for tmp in folder.glob(f".{name}.*"):
            tmp.unlink(missing_ok=True)


def run_task(task: Task) -> dict[str, Any]:
    """Solve one scenario into its folder. Never raises: a failure goes to error.json."""
    job = task.job
    folder = Path(task.root) / job.folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _clear(folder)
        if job.scenario is None:
            raise SweepError(job.error or "invalid scenario")
        inst = _instance(task.instance, task.fingerprint)
        plan = solve_plan(inst, scenario_from_dict(job.scenario, job.name),
                          elastic=task.options.get("elastic"))
        with _WRITE_LOCK:
            # no plan: summary.json only; plan.xlsx / report.html are per-plan extras (seconds
            # each at 20k plots): `greenbelt solve --scenario <folder>/scenario.toml` makes them
            written = write_outputs(inst, plan, folder, planner_files=False)
        with atomic_path(folder / "scenario.toml") as tmp:
            tmp.write_text(to_toml(job.scenario), encoding="utf-8")
        record = _record(job, plan_row(plan))
        record["outputs"] = [*written, "scenario.toml"]
        write_json(record, folder / DONE)  # last: its presence vouches for the files above
        return record
    except Exception as err:  # one failed scenario must not stop the sweep
        record = failure(job, err)
        try:
            write_json(record, folder / ERROR)
        except OSError:
            pass
        return record


def prime_instance(sweep: Sweep, inst: Instance) -> None:
    """Hand an instance already loaded here to in-process runs (workers=1)."""
    with _LOAD_LOCK:
        _INSTANCES.clear()
        _INSTANCES[(str(sweep.instance), sweep.fingerprint)] = inst


def pending_jobs(sweep: Sweep) -> list[Job]:
    """Jobs without a valid done.json of the same key: what a run would solve."""
    return [j for j in sweep.jobs if read_done(sweep.out / j.folder, j.key) is None]


def read_done(folder: Path, key: str) -> dict[str, Any] | None:
    """The done.json record if it is valid, has this key and every output exists."""
    try:
        rec = json.loads((folder / DONE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("key") != key or not isinstance(rec.get("row"), dict):
        return None
    if not all((folder / name).is_file() for name in rec.get("outputs", OUTPUTS)):
        return None
    if (folder / MARKER).exists():  # a later attempt was killed while writing: not done
        return None
    return rec


def _read_error(folder: Path, key: str) -> dict[str, Any] | None:
    try:
        rec = json.loads((folder / ERROR).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("key") == key else None


# ---------------------------------------------------------------- comparison table

HEAD = ["name", "hash", "folder"]
SOLVER = ["status", "termination", "backend", "gap", "objective", "solver_objective", "bound",
          "all_met", "elastic"]
TOTALS = ["cost_wan", "lost_output_wan", "vacated_mu", "farmland_mu", "forest_mu",
          "vacated_plots", "rule_violations", *TIME_COLUMNS, "error"]


def comparison_table(sweep: Sweep, records: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per job, in job order; jobs without a record yet are "pending"."""
    rows = []
    for job in sweep.jobs:
        rec = records.get(job.folder)
        row = rec["row"] if rec else {"status": "pending"}
        rows.append({"name": job.name, "hash": job.key[:8], "folder": job.folder, **job.params,
                     **row, "error": rec.get("error", "") if rec else ""})
    params = list(dict.fromkeys(k for job in sweep.jobs for k in job.params))
    table = pd.DataFrame(rows)
    targets = [c for c in table.columns if c not in {*HEAD, *params, *SOLVER, *TOTALS}]
    order = [c for c in (*HEAD, *params, *SOLVER, *targets, *TOTALS) if c in table.columns]
    return table.reindex(columns=list(dict.fromkeys(order)))


def write_comparison(sweep: Sweep, records: dict[str, dict[str, Any]]) -> Path:
    path = sweep.out / COMPARISON
    write_csv(comparison_table(sweep, records), path)
    return path


def write_sweep_page(sweep: Sweep, records: dict[str, dict[str, Any]], **layers: Any) -> Path:
    """DIR/report.html: the scenario table (and, for a portfolio, the frequency map)."""
    from optimizer.reporting.pages import write_sweep_report

    what = "near-optimal plans" if "portfolio" in sweep.options else "scenarios"
    return write_sweep_report(comparison_table(sweep, records), sweep.out / REPORT,
                              f"{sweep.instance.name}: {len(sweep.jobs)} {what}", **layers)


def collect_records(sweep: Sweep) -> dict[str, dict[str, Any]]:
    """Records from disk: valid done.json first, else error.json with the same key."""
    out = {}
    for job in sweep.jobs:
        folder = sweep.out / job.folder
        rec = read_done(folder, job.key) or _read_error(folder, job.key)
        if rec is not None:
            out[job.folder] = rec
    return out


# ---------------------------------------------------------------- running a sweep

# progress(record, skipped): after each scenario, reused ones first.
SweepProgress = Callable[[dict[str, Any], bool], None]


@dataclass
class SweepReport:
    sweep: Sweep
    records: dict[str, dict[str, Any]]
    skipped: list[str]  # folders reused from an earlier run
    solved: list[str]  # folders solved (or attempted) in this run
    table: pd.DataFrame
    comparison: Path

    @property
    def failed(self) -> list[str]:
        return [f for f, r in self.records.items() if r["row"].get("status") == "failed"]


def default_workers() -> int:
    return max(1, min(2, multiprocessing.cpu_count()))


def _pool_context() -> multiprocessing.context.BaseContext:
    return pool_context("optimizer.batch.sweep")


def _run_local(tasks: list[Task], workers: int,
               done: Callable[[Task, dict[str, Any]], None]) -> None:
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            done(task, run_task(task))
        return
    pool = ProcessPoolExecutor(min(workers, len(tasks)), mp_context=_pool_context(),
                               initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(run_task, t): t for t in tasks}
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                rec = fut.result()
            except Exception as err:  # a crashed worker process
                rec = _failed_outside(task, err)
            done(task, rec)
    except BaseException:
        # Ctrl-C or any failure here: end the running scenarios now (a solver deep in C code
        # may never see the interrupt) and drop the queued ones; a rerun resumes them, and
        # their folders are whole or marked incomplete.
        stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(tasks: list[Task], address: str,
              done: Callable[[Task, dict[str, Any]], None]) -> None:
    try:
        from distributed import as_completed as dask_completed
    except ImportError:
        raise SweepError("a Dask scheduler needs the optional packages dask and distributed: "
                         "pip install 'greenbelt[dask]'") from None

    with dask_client(address) as client:
        futures = {client.submit(run_task, t, pure=False): t for t in tasks}
        for fut in dask_completed(list(futures), loop=client.loop):
            task = futures[fut]
            try:
                rec = fut.result()
            except Exception as err:  # a lost worker
                rec = _failed_outside(task, err)
            done(task, rec)


def _failed_outside(task: Task, err: BaseException) -> dict[str, Any]:
    """The worker died before it could record the failure: record it here."""
    rec = failure(task.job, err)
    try:
        write_json(rec, Path(task.root) / task.job.folder / ERROR)
    except OSError:
        pass
    return rec


def run_sweep(sweep: Sweep, *, workers: int = 1, scheduler: str | None = None,
              progress: SweepProgress | None = None) -> SweepReport:
    """Solve every job not already done (same key) and write comparison.csv.

    workers <= 1: in this process, one after the other; otherwise a local process pool.
    scheduler: address of a Dask distributed scheduler; its workers must import this package
    and see the instance file and the output folder at the same paths (shared file system).
    """
    sweep.out.mkdir(parents=True, exist_ok=True)
    for tmp in sweep.out.glob(f".{COMPARISON}.*"):
        tmp.unlink(missing_ok=True)
    records: dict[str, dict[str, Any]] = {}
    skipped, tasks = [], []
    for job in sweep.jobs:
        rec = read_done(sweep.out / job.folder, job.key)
        if rec is not None:
            records[job.folder] = rec
            skipped.append(job.folder)
            if progress:
                progress(rec, True)
        else:
            tasks.append(Task(str(sweep.instance), sweep.fingerprint, str(sweep.out), job,
                              sweep.options))
    write_comparison(sweep, records)

    def done(task: Task, rec: dict[str, Any]) -> None:
        records[task.job.folder] = rec
        write_comparison(sweep, records)
        if progress:
            progress(rec, False)

    if tasks:
        if scheduler:
            _run_dask(tasks, scheduler, done)
        else:
            _run_local(tasks, workers, done)
    # The final table is rebuilt from the files, the record of what is actually on disk.
    final = collect_records(sweep)
    for folder, rec in records.items():
        final.setdefault(folder, rec)  # a failure whose error.json could not be written
    path = write_comparison(sweep, final)
    write_sweep_page(sweep, final)
    return SweepReport(sweep, final, skipped, [t.job.folder for t in tasks],
                       comparison_table(sweep, final), path)
