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
                  f"{len(report.failed)} failed; wrote {report.comparison} and report.html",
                  highlight=False)
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


@app.command()
def portfolio(
    instance: Annotated[Path, typer.Argument(help="instance GeoPackage or Shapefile folder")],
    out: Annotated[Path, typer.Option(help="output folder (a sweep folder of the plans)")],
    scenario: Annotated[Path | None, typer.Option(help="scenario TOML")] = None,
    plans: Annotated[int, typer.Option(help="number of plans k")] = 5,
    gap: Annotated[float, typer.Option(
        help="each plan's objective within this relative gap of the best")] = 0.02,
    diversity: Annotated[float, typer.Option(
        help="minimum distance between any two plans: area vacated in only one of them / "
             "area vacated in either")] = 0.1,
    backend: Annotated[str | None, typer.Option(help=BACKEND_HELP)] = None,
    time_limit: Annotated[float | None, typer.Option(help="seconds per plan")] = None,
) -> None:
    """k distinct near-optimal plans, selection_frequency.csv and a frequency map."""
    from optimizer.batch.alternatives import AlternativesError
    from optimizer.batch.portfolio import cost_spread, run_portfolio
    from optimizer.cli.common import spinner

    sc = load_scenario_or_fail(scenario)
    inst = load_instance_or_fail(instance)
    try:
        with spinner(f"portfolio of {plans} plans") as say:
            rep = run_portfolio(instance, sc, out, k=plans, gap=gap, diversity=diversity,
                                inst=inst, backend=backend, time_limit=time_limit, progress=say)
    except AlternativesError as err:
        fail(str(err))
    table = Table(title=f"portfolio of {instance.name}")
    for col in ("plan", "objective", "vs best", "min distance", "vacated mu", "plots", "gap"):
        table.add_column(col, justify="right")
    for _, r in rep.table.iterrows():
        dist = r["min_distance_to_earlier"]
        table.add_row(str(r["folder"]), f"{r['objective']:,.0f}", f"+{r['gap_to_best']:.3%}",
                      "-" if _missing(dist) else f"{dist:.1%}", f"{r['vacated_mu']:,.0f}",
                      f"{r['vacated_plots']:,.0f}",
                      "-" if _missing(r["gap"]) else f"{r['gap']:.3%}")
    out_console.print(table)
    spread = cost_spread(rep.table)
    out_console.print(f"{spread['plans']} plans, objective {spread['best']:,.0f} to "
                      f"{spread['worst']:,.0f} (spread {spread['spread']:.3%}); "
                      f"{rep.reused} reused from an earlier run", highlight=False)
    if rep.message:
        console.print(f"[yellow]{escape(rep.message)}[/]", highlight=False)
    console.print("wrote " + ", ".join(str(p) for p in rep.paths.values()), highlight=False)


@app.command()
def importance(
    instance: Annotated[Path, typer.Argument(help="instance GeoPackage or Shapefile folder")],
    out: Annotated[Path, typer.Option(help="output folder")],
    scenario: Annotated[Path | None, typer.Option(help="scenario TOML")] = None,
    gap: Annotated[float | None, typer.Option(
        help="relative gap of every answer (default: the scenario's solver.mip_gap)")] = None,
    backend: Annotated[str | None, typer.Option(help=BACKEND_HELP)] = None,
    time_limit: Annotated[float | None, typer.Option(help="seconds per re-solve")] = None,
    workers: Annotated[int | None, typer.Option(
        help="local worker processes (default min(2, CPUs))")] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address, e.g. tcp://host:8786 (instead of local workers)")] = None,
    plan: Annotated[Path | None, typer.Option(
        help="plan.csv to examine (default: solve the scenario's optimal plan)")] = None,
    alternatives: Annotated[Path | None, typer.Option(
        help="a portfolio (or sweep) folder: its plans bound the answers, saving re-solves")]
    = None,
    neighbourhood: Annotated[bool, typer.Option(
        help="answer open questions by fix-and-optimise around the plot first (an upper end)")]
    = True,
    full_budget: Annotated[float | None, typer.Option(
        help="seconds for whole-model re-solves of the questions still open after the "
             "neighbourhoods (default: no limit; 0: none)")] = None,
) -> None:
    """Replacement cost of every vacated plot of the best plan; importance.csv and a map."""
    from optimizer.batch.alternatives import AlternativesError
    from optimizer.batch.importance import plot_importance, write_importance
    from optimizer.batch.sweep import default_workers

    sc = load_scenario_or_fail(scenario)
    inst = load_instance_or_fail(instance)
    n = default_workers() if workers is None else max(1, workers)
    from optimizer.plan.check import PlanFileError, read_plan_actions
    from optimizer.plan.schedule_check import ScheduleFileError, read_plan_years

    def read(path: Path) -> tuple[Any, Any]:
        """A plan file's actions and, with [phasing], its years (one line on bad input)."""
        try:
            act = read_plan_actions(path, inst.plots["plot_id"])
            return act, (read_plan_years(path, inst.plots["plot_id"], act, sc)
                         if sc.phasing.enabled else None)
        except (PlanFileError, ScheduleFileError) as err:
            fail(str(err))
            raise  # unreachable: fail exits

    given, given_years = read(plan) if plan is not None else (None, None)
    known, known_years = [], []
    for f in sorted(alternatives.glob("*/done.json")) if alternatives is not None else []:
        act, yr = read(f.parent / "plan.csv")
        known.append(act)
        known_years.append(yr)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("replacement costs", total=None)
            rep = plot_importance(instance, sc, inst=inst, gap=gap, time_limit=time_limit,
                                  backend=backend, workers=n, scheduler=scheduler, plan=given,
                                  known=known, plan_years=given_years,
                                  known_years=known_years if sc.phasing.enabled else None,
                                  neighbourhood=neighbourhood, full_budget=full_budget,
                                  progress=lambda k, total: bar.update(task, completed=k,
                                                                       total=total))
    except AlternativesError as err:
        fail(str(err))
    paths = write_importance(inst, rep, out)
    t = rep.table
    table = Table(title="most important vacated plots")
    for col in ("rank", "plot", "action", "mu", "replacement 万元", "gap", "farmland 万元",
                "decided by"):
        table.add_column(col, justify="right")
    for _, r in t.head(15).iterrows():
        cost = "irreplaceable" if r["irreplaceable"] else (
            "-" if _missing(r["replacement_cost_wan"]) else f"{r['replacement_cost_wan']:,.0f}")
        table.add_row(str(r["rank"]), str(r["plot_id"]), str(r["action"]),
                      f"{r['area_mu']:,.1f}", cost,
                      "-" if _missing(r["gap"]) else f"{r['gap']:.3%}",
                      "-" if _missing(r["farmland_replacement_cost_wan"])
                      else f"{r['farmland_replacement_cost_wan']:,.0f}",
                      escape(str(r["decided_by"])))
    out_console.print(table)
    s = rep.summary
    out_console.print(
        f"{s['vacated_plots']} vacated plots, {s['questions']} questions: "
        f"{s['decided_by_screen']} decided by bounds, {s['by_neighbourhood']} by "
        f"neighbourhoods, {s['re_solved']} re-solved, {s['open']} still open (interval wider "
        f"than the gap: only its ends are known), "
        f"{s['irreplaceable']} irreplaceable, {s['failed']} failed; "
        f"{s['seconds']['total']:,.0f} s with {n if not scheduler else 'Dask'} worker(s)",
        highlight=False)
    if s["best_objective_found"] < s["objective"]:
        out_console.print(f"a plan {s['objective'] - s['best_objective_found']:,.0f} 万元 cheaper "
                          "than the one examined was found on the way (it was optimal within "
                          "the gap): negative replacement costs mean such plans keep the plot",
                          highlight=False)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()), highlight=False)
    raise typer.Exit(2 if s["failed"] else 0)
