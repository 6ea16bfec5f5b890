"""The one-plan commands: generate, solve, check, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from optimizer.cli.common import (
    DEFAULT_DISTRICT,
    DEFAULT_PLOTS,
    DEFAULT_SEED,
    app,
    console,
    fail,
    load_instance_or_fail,
    load_scenario_or_fail,
    out_console,
    progress_bar,
    spinner,
)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="GeoPackage to write")],
    district: Annotated[str, typer.Option(help="district name, e.g. chaoyang")] = DEFAULT_DISTRICT,
    plots: Annotated[int, typer.Option(help="number of plots (500 to 200,000)")] = DEFAULT_PLOTS,
    seed: Annotated[int, typer.Option(help="random seed")] = DEFAULT_SEED,
) -> None:
    """Generate a synthetic instance on a real district boundary."""
    from instances.generator import generate as make

    try:
        with progress_bar(f"generating {district}, {plots:,} plots") as update:
            path = make(district, plots, seed, out, progress=update)
    except ValueError as err:
        fail(str(err))
    console.print(f"wrote {path}")


def target_table(checks, title: str = "targets") -> Table:
    table = Table(title=title)
    for col in ("target", "scope", "required", "achieved", "slack", "met"):
        table.add_column(col, justify="left" if col in ("target", "scope") else "right")
    for c in checks:
        if c.share_required is not None:
            req = f"≥ {c.share_required:.1%}"
            ach = "nothing vacated" if c.share_achieved is None else f"{c.share_achieved:.1%}"
        else:
            sign = "≥" if c.sense == ">=" else "≤"
            req, ach = f"{sign} {c.required:,.1f} {c.unit}", f"{c.achieved:,.1f}"
        table.add_row(c.label, c.scope, req, ach, f"{c.slack:,.1f}",
                      "[green]yes[/]" if c.met else "[red]NO[/]")
    return table


def report(plan) -> None:
    missed = "" if plan.all_met else " — best plan, some targets missed (elastic mode)"
    out_console.print(target_table(plan.checks, f"{plan.instance} / {plan.scenario.name}: "
                                                f"{plan.status}{missed}"))
    t = plan.totals
    out_console.print(
        f"vacated {t.vacated_mu:,.0f} mu in {t.vacated_plots:,} plots "
        f"(farmland {t.farmland_mu:,.0f} mu, forest {t.forest_mu:,.0f} mu); "
        f"cost {t.cost_wan:,.0f} 万元; lost output {t.lost_output_wan:,.0f} 万元/year")
    if plan.objective is not None:
        solver = plan.solver_objective
        out_console.print(
            f"objective {plan.objective:,.2f} (recomputed from the plan; solver_objective "
            + ("n/a" if solver is None else f"{solver:,.2f}") + "); bound "
            + ("not valid for this model" if plan.bound is None else f"{plan.bound:,.2f}")
            + ("" if plan.gap is None else f"; gap {plan.gap:.3%}"), highlight=False)
    b = plan.block_summary
    if b.get("blocks"):
        out_console.print(
            f"new farmland in {b['blocks']} block(s): {b['touching_existing_farmland']} extend "
            f"existing farmland, {b['stand_alone']} stand alone"
            + (f" (smallest {b['smallest_stand_alone_mu']:,.0f} mu)" if b["stand_alone"] else "")
            + f"; largest {b['largest_mu']:,.0f} mu", highlight=False)
    for f in plan.findings:
        out_console.print(f"[yellow]cannot be met:[/] {escape(f.message)}", highlight=False)
    for v in plan.violations:
        out_console.print(f"[red]rule violated:[/] {escape(v.describe())}", highlight=False)


@app.command()
def solve(
    instance: Annotated[Path, typer.Argument(help="instance GeoPackage or Shapefile folder")],
    out: Annotated[Path, typer.Option(help="output folder")],
    scenario: Annotated[Path | None, typer.Option(help="scenario TOML (default: seed targets)")]
    = None,
    backend: Annotated[str | None, typer.Option(help="highs | cbc | cpsat | scip")] = None,
    time_limit: Annotated[float | None, typer.Option(help="seconds")] = None,
    elastic: Annotated[bool | None, typer.Option(
        "--elastic/--no-elastic", help="force elastic mode on/off (default: on when needed)")]
    = None,
) -> None:
    """Solve a scenario and write plan.csv, summary.json, plan.gpkg and map.png."""
    code = _solve(instance, out, scenario, backend, time_limit, elastic)
    raise typer.Exit(code)


def _solve(instance: Path, out: Path, scenario: Path | None, backend: str | None,
           time_limit: float | None, elastic: bool | None) -> int:
    from optimizer.plan.solve import solve_plan
    from optimizer.reporting.export import write_outputs

    sc = load_scenario_or_fail(scenario)
    inst = load_instance_or_fail(instance)
    try:
        with spinner("solving") as say:
            plan = solve_plan(inst, sc, backend=backend, time_limit=time_limit, elastic=elastic,
                              progress=say)
    except ValueError as err:
        fail(str(err))
    with spinner("writing outputs") as say:
        paths = write_outputs(inst, plan, out)
    report(plan)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()), highlight=False)
    if plan.result is None or not plan.result.has_solution:
        return 3
    return 0 if plan.all_met else 2


@app.command()
def check(
    instance: Annotated[Path, typer.Argument(help="instance GeoPackage or Shapefile folder")],
    plan_csv: Annotated[Path, typer.Argument(help="plan.csv written by `greenbelt solve`")],
    scenario: Annotated[Path | None, typer.Option(help="scenario TOML")] = None,
) -> None:
    """Recompute every KPI from the plan and the geometry; exit 1 naming each violated target."""
    from optimizer.plan.check import PlanFileError, check_plan_file

    sc = load_scenario_or_fail(scenario)
    inst = load_instance_or_fail(instance)
    try:
        result = check_plan_file(inst, sc, plan_csv)
    except PlanFileError as err:
        fail(str(err))
    out_console.print(target_table(result.checks, f"check of {plan_csv}"))
    for v in result.violations:
        out_console.print(f"[red]rule violated:[/] {escape(v.describe())}", highlight=False)
    problems = result.problems()
    if problems:
        for p in problems:
            console.print(f"[bold red]violated:[/] {escape(p)}", highlight=False)
        raise typer.Exit(1)
    out_console.print("[green]all targets and rules met[/]")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="folder for the instance and the plan")]
    = Path("demo"),
    district: Annotated[str, typer.Option()] = DEFAULT_DISTRICT,
    plots: Annotated[int, typer.Option()] = DEFAULT_PLOTS,
    seed: Annotated[int, typer.Option()] = DEFAULT_SEED,
) -> None:
    """The main job: generate the default district instance, solve the seed scenario, check it."""
    gpkg = out / f"{district}_{plots}_{seed}.gpkg"
    if not gpkg.exists():
        generate(out=gpkg, district=district, plots=plots, seed=seed)
    code = _solve(gpkg, out / "plan", None, None, None, None)
    if code in (0, 2):
        from optimizer.model.scenario import Scenario
        from optimizer.plan.check import check_plan_file

        plan_csv = out / "plan" / "plan.csv"
        problems = check_plan_file(load_instance_or_fail(gpkg), Scenario(), plan_csv).problems()
        out_console.print("independent check of plan.csv against the geometry: "
                          + ("[green]all targets and rules met[/]" if not problems
                             else "[red]" + escape("; ".join(problems)) + "[/]"))
    console.print(f"map: {out / 'plan' / 'map.png'}")
    raise typer.Exit(code)
