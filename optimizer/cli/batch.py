"""Batch commands: sweep, compare, frontier (registered on the main `greenbelt` app)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from optimizer.cli.common import (
    app,
    console,
    fail,
    load_instance_or_fail,
    load_scenario_or_fail,
    out_console,
    out_folder_or_fail,
    time_limit_or_fail,
)

BACKEND_HELP = "highs | cbc | cpsat | scip (default: each scenario's solver.backend)"
ELASTIC_HELP = "force elastic mode on/off (default: on when needed)"


@contextmanager
def sweep_progress(total: int, what: str) -> Iterator[Callable[[dict[str, Any], bool], None]]:
    """Scenarios done / total, with failures and reused results counted in the description."""
    counts = {"failed": 0, "reused": 0}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(what, total=total)

        def update(record: dict[str, Any], skipped: bool) -> None:
            counts["reused"] += skipped
            counts["failed"] += record["row"].get("status") == "failed"
            bar.update(task, advance=1, description=(
                f"{what} ({counts['failed']} failed, {counts['reused']} reused)"))

        yield update


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def sweep_table(table, title: str) -> Table:
    out = Table(title=title)
    for col in ("scenario", "status", "termination", "gap", "objective", "cost 万元",
                "lost output", "vacated mu"):
        out.add_column(col, justify="left" if col in ("scenario", "status", "termination")
                       else "right")

    def num(v: Any, fmt: str) -> str:
        try:
            return "" if _missing(v) else format(float(v), fmt)
        except (TypeError, ValueError):
            return ""

    def text(v: Any) -> str:
        return "" if _missing(v) else escape(str(v))

    for _, r in table.iterrows():
        status = str(r.get("status", ""))
        colour = {"met": "green", "missed": "yellow"}.get(status, "red")
        out.add_row(text(r["name"]), f"[{colour}]{status}[/]", text(r.get("termination")),
                    num(r.get("gap"), ".3%"), num(r.get("objective"), ",.1f"),
                    num(r.get("cost_wan"), ",.0f"),
                    num(r.get("lost_output_wan"), ",.0f"), num(r.get("vacated_mu"), ",.0f"))
    return out


def _run(plan, workers: int | None, scheduler: str | None, what: str):
    """Run a planned sweep with a progress bar. The instance is loaded here first (when there is
    anything to solve, Dask or not) so a bad file gives one clear line, exit 1, before any
    scenario starts; in-process runs reuse that load."""
    from optimizer.batch.lifecycle import check_dask_address
    from optimizer.batch.sweep import (
        SweepError,
        default_workers,
        pending_jobs,
        prime_instance,
        run_sweep,
    )

    if scheduler is not None:
        try:
            check_dask_address(scheduler)
        except SweepError as err:
            fail(str(err))
    if pending_jobs(plan):
        prime_instance(plan, load_instance_or_fail(plan.instance))
    n = default_workers() if workers is None else max(1, workers)
    try:
        with sweep_progress(len(plan.jobs), what) as update:
            return run_sweep(plan, workers=n, scheduler=scheduler, progress=update)
    except SweepError as err:  # no Dask scheduler at that address, or no dask packages
        fail(str(err))


@app.command()
def sweep(
    instance: Annotated[Path, typer.Argument(help="instance GeoPackage or Shapefile folder")],
    out: Annotated[Path, typer.Option(help="sweep folder")],
    more_scenarios: Annotated[list[Path] | None, typer.Argument(
        help="further scenario files (so `--scenarios a.toml b.toml` works)",
        show_default=False)] = None,
    scenarios: Annotated[list[Path] | None, typer.Option(
        help="scenario TOML files, one scenario each")] = None,
    grid: Annotated[list[str] | None, typer.Option(
        help='"section.key=v1,v2,..." (TOML values); several --grid are crossed')] = None,
    base: Annotated[Path | None, typer.Option(help="base scenario TOML for the grid")] = None,
    backend: Annotated[str | None, typer.Option(help=BACKEND_HELP)] = None,
    time_limit: Annotated[float | None, typer.Option(help="seconds per scenario")] = None,
    elastic: Annotated[bool | None, typer.Option("--elastic/--no-elastic", help=ELASTIC_HELP)]
    = None,
    workers: Annotated[int | None, typer.Option(
        help="local worker processes (default min(2, CPUs))")] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address, e.g. tcp://host:8786 (instead of local workers)")] = None,
) -> None:
    """Solve many scenarios (files or a grid); resumable; writes DIR/comparison.csv."""
    from optimizer.batch.sweep import (
        SweepError,
        parse_grid,
        plan_sweep,
        specs_from_files,
        specs_from_grid,
    )

    time_limit_or_fail(time_limit)
    out_folder_or_fail(out)
    files = [*(scenarios or []), *(more_scenarios or [])]
    if files and grid:
        fail("give either scenario files or --grid, not both")
    if base is not None and not grid:
        fail("--base goes with --grid")
    try:
        if grid:
            specs = specs_from_grid([parse_grid(g) for g in grid], base, backend, time_limit)
        elif files:
            specs = specs_from_files(files, backend, time_limit)
        else:
            fail("nothing to sweep: give --scenarios FILE ... or --grid KEY=VALUES")
        plan = plan_sweep(instance, specs, out, elastic=elastic)
    except SweepError as err:
        fail(str(err))
    report = _run(plan, workers, scheduler, f"sweep of {len(plan.jobs)} scenarios")
    out_console.print(sweep_table(report.table, f"sweep of {instance.name}"))
    solved = len(set(report.solved) - set(report.failed))
    console.print(f"{solved} solved, {len(report.skipped)} reused from an earlier run, "
                  f"{len(report.failed)} failed; wrote {report.comparison}", highlight=False)
    for folder in report.failed:
        error = escape(str(report.records[folder].get("error", "")))
        console.print(f"[red]failed:[/] {folder}: {error}", highlight=False)
    raise typer.Exit(2 if report.failed else 0)


@app.command()
def compare(
    instance: Annotated[Path, typer.Argument(help="instance GeoPackage or Shapefile folder")],
    plan_a: Annotated[Path, typer.Argument(help="plan A (plan.csv)")],
    plan_b: Annotated[Path, typer.Argument(help="plan B (plan.csv)")],
    out: Annotated[Path, typer.Option(help="output folder")],
    scenario: Annotated[Path | None, typer.Option(
        help="scenario TOML whose targets are compared (default: seed targets)")] = None,
) -> None:
    """Changed plots, KPI deltas and a difference map between two plans of one instance."""
    from optimizer.batch.compare import OUTPUTS, compare_plan_files
    from optimizer.model.scenario import ScenarioError
    from optimizer.plan.check import PlanFileError
    from optimizer.plan.runset import OutputFolderError

    sc = load_scenario_or_fail(scenario)
    out_folder_or_fail(out, OUTPUTS)
    inst = load_instance_or_fail(instance)
    try:
        cmp, paths = compare_plan_files(inst, sc, plan_a, plan_b, out)
    except (PlanFileError, ScenarioError, OutputFolderError) as err:
        fail(str(err))
    table = Table(title=f"A = {plan_a}  B = {plan_b}")
    for col in ("kpi", "scope", "unit", "A", "B", "B - A"):
        table.add_column(col, justify="left" if col in ("kpi", "scope", "unit") else "right")

    def fmt(v: Any, unit: str) -> str:
        if _missing(v):
            return "-"
        if unit == "share":
            return f"{v:.1%}"
        return f"{v:,.0f}" if unit == "plots" else f"{v:,.1f}"

    for _, r in cmp.kpis.iterrows():
        unit = str(r["unit"])
        table.add_row(escape(str(r["kpi"])), escape(str(r["scope"])), unit, fmt(r["a"], unit),
                      fmt(r["b"], unit), fmt(r["delta"], unit))
    out_console.print(table)
    counts = ", ".join(f"{k}: {v:,}" for k, v in cmp.counts.items() if k != "unchanged")
    out_console.print(f"{len(cmp.changed):,} plots change ({counts})", highlight=False)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()), highlight=False)


@app.command()
def frontier(
    instance: Annotated[Path, typer.Argument(help="instance GeoPackage or Shapefile folder")],
    out: Annotated[Path, typer.Option(help="output folder")],
    vary: Annotated[str, typer.Option(
        help="scenario key to vary: targets.priority_farmland_mu or budget.total_wan (any "
             "numeric key works)")],
    values: Annotated[str | None, typer.Option(help="comma-separated values")] = None,
    start: Annotated[float | None, typer.Option("--from", help="first value")] = None,
    stop: Annotated[float | None, typer.Option("--to", help="last value")] = None,
    steps: Annotated[int | None, typer.Option(help="number of points from --from to --to")]
    = None,
    measure: Annotated[str, typer.Option(help="cost | lost_output | objective")] = "cost",
    base: Annotated[Path | None, typer.Option(help="base scenario TOML")] = None,
    backend: Annotated[str | None, typer.Option(help=BACKEND_HELP)] = None,
    time_limit: Annotated[float | None, typer.Option(help="seconds per point")] = None,
    elastic: Annotated[bool | None, typer.Option("--elastic/--no-elastic", help=ELASTIC_HELP)]
    = None,
    workers: Annotated[int | None, typer.Option(help="local worker processes")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address")] = None,
) -> None:
    """Trade-off curve: solve one plan per value of a target; frontier.csv and frontier.png."""
    from optimizer.batch.frontier import (
        check_measure,
        frontier_sweep,
        frontier_values,
        write_frontier,
    )
    from optimizer.batch.sweep import SweepError

    time_limit_or_fail(time_limit)
    out_folder_or_fail(out)
    try:
        check_measure(measure)
        points = frontier_values(values, start, stop, steps)
        plan = frontier_sweep(instance, out, vary, points, base=base, backend=backend,
                              time_limit=time_limit, elastic=elastic)
    except SweepError as err:
        fail(str(err))
    report = _run(plan, workers, scheduler, f"frontier of {len(plan.jobs)} points")
    _, paths = write_frontier(report, vary, measure)
    out_console.print(sweep_table(report.table, f"frontier: {measure} vs {vary}"))
    console.print("wrote " + ", ".join(str(p) for p in paths.values()), highlight=False)
    raise typer.Exit(2 if report.failed else 0)
