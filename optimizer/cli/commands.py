"""The one-plan commands: generate, solve, check, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from optimizer.cli.common import (
    DEFAULT_CANDIDATES,
    DEFAULT_DISTRICT,
    DEFAULT_SEED,
    DEMO_CANDIDATES,
    app,
    console,
    fail,
    load_instance_or_fail,
    load_scenario_or_fail,
    out_console,
    out_file_or_fail,
    out_folder_or_fail,
    progress_bar,
    spinner,
    time_limit_or_fail,
)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="GeoPackage to write")],
    district: Annotated[str, typer.Option(help="district name, e.g. chaoyang")] = DEFAULT_DISTRICT,
    candidates: Annotated[int | None, typer.Option(
        help="candidate plots (collective land in villages of small parcels, the default mode; "
             f"default {DEFAULT_CANDIDATES:,})")] = None,
    plots: Annotated[int | None, typer.Option(
        help="total plots of the coarse mode (500 to 200,000; large collective plots)")] = None,
    mode: Annotated[str, typer.Option(help="villages | coarse | auto (coarse when only --plots "
                                           "is given)")] = "auto",
    seed: Annotated[int, typer.Option(help="random seed")] = DEFAULT_SEED,
) -> None:
    """Generate a synthetic instance on a real district boundary."""
    from instances.generator import generate as make

    out_file_or_fail(out)
    if mode == "auto" and plots is None and candidates is None:
        candidates = DEFAULT_CANDIDATES
    what = f"{candidates:,} candidate plots" if candidates else f"{plots:,} plots"
    try:
        with progress_bar(f"generating {district}, {what}") as update:
            path = make(district, plots, seed, out, progress=update, mode=mode,
                        candidates=candidates)
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
    lang: Annotated[str, typer.Option(help="plan.xlsx and map language: both | zh | en")]
    = "both",
    townships: Annotated[Path | None, typer.Option(
        help="township table (CSV or XLSX): targets and budgets added to the scenario")] = None,
) -> None:
    """Solve a scenario; write plan.csv, summary.json, plan.gpkg, map.png, plan.xlsx and
    report.html."""
    if lang not in ("both", "zh", "en"):
        fail(f"--lang {lang!r}: use both, zh or en")
    code = _solve(instance, out, scenario, backend, time_limit, elastic, lang, townships)
    raise typer.Exit(code)


def _solve(instance: Path, out: Path, scenario: Path | None, backend: str | None,
           time_limit: float | None, elastic: bool | None, lang: str = "both",
           townships: Path | None = None) -> int:
    from optimizer.plan.runset import OutputFolderError
    from optimizer.plan.solve import solve_plan
    from optimizer.reporting.export import OUTPUTS, write_outputs

    time_limit_or_fail(time_limit)
    sc = load_scenario_or_fail(scenario)
    out_folder_or_fail(out, OUTPUTS)  # before minutes of work, not after
    inst = load_instance_or_fail(instance)
    if townships is not None:
        from instances.survey import TownshipTableError, read_township_figures

        try:
            figures = read_township_figures(
                townships, sorted(inst.plots["township"].astype(str).unique()))
        except TownshipTableError as err:
            fail(str(err))
        sc.targets.township_reduction_mu.update(figures.targets_mu)
        sc.budget.township_wan.update(figures.budgets_wan)
    try:
        with spinner("solving") as say:
            plan = solve_plan(inst, sc, backend=backend, time_limit=time_limit, elastic=elastic,
                              progress=say)
    except ValueError as err:
        fail(str(err))
    try:
        with spinner("writing outputs") as say:
            paths = write_outputs(inst, plan, out, lang=lang)
    except OutputFolderError as err:
        fail(str(err))
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
    from optimizer.model.scenario import ScenarioError
    from optimizer.plan.check import PlanFileError, check_plan_file

    sc = load_scenario_or_fail(scenario)
    inst = load_instance_or_fail(instance)
    try:
        result = check_plan_file(inst, sc, plan_csv)
    except (PlanFileError, ScenarioError) as err:
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
    candidates: Annotated[int, typer.Option(help="candidate plots")] = DEMO_CANDIDATES,
    seed: Annotated[int, typer.Option()] = DEFAULT_SEED,
) -> None:
    """The main job: generate the default district instance (villages of small parcels, the
    granularity of survey data), solve the seed scenario, check the plan independently."""
    gpkg = out / f"{district}_c{candidates}_{seed}.gpkg"
    if not gpkg.exists():
        generate(out=gpkg, district=district, candidates=candidates, plots=None,
                 mode="villages", seed=seed)
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


@app.command("import")
def import_(
    source: Annotated[Path | None, typer.Argument(
        help="vector file with the plots (.shp, .gpkg, .gdb, ...); default: the mapping's file")]
    = None,
    out: Annotated[Path, typer.Option(help="instance GeoPackage to write")] = Path("inst.gpkg"),
    mapping: Annotated[Path | None, typer.Option(
        help="mapping TOML (fields, land classes, empty values, zones)")] = None,
    layer: Annotated[str | None, typer.Option(help="layer of a multi-layer file")] = None,
    townships: Annotated[Path | None, typer.Option(
        help="township table (CSV or XLSX): targets and budgets -> <out>.scenario.toml")] = None,
) -> None:
    """Import a planner's own parcels (e.g. 三调图斑.shp) as an instance; all problems at once."""
    from instances.survey import (
        MappingError,
        SurveyError,
        TownshipTableError,
        import_survey,
        load_mapping,
        read_township_figures,
        scenario_toml,
    )

    try:
        spec = load_mapping(mapping)
        with spinner("importing"):
            result = import_survey(spec, out, source, layer)
    except MappingError as err:
        fail(str(err))
    except SurveyError as err:
        where = err.file + (f", layer '{err.layer}'" if err.layer else "")
        console.print(f"[bold red]error:[/] {escape(where)}: {len(err.lines)} problem(s), "
                      "nothing written:", highlight=False)
        for line in err.lines:
            console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    uses = ", ".join(f"{k} {v:,}" for k, v in sorted(result.land_uses.items()))
    console.print(f"wrote {result.path}: {result.plots:,} plots ({uses}); {result.candidates:,} "
                  f"collective construction plots; {len(result.townships)} township(s)",
                  highlight=False, soft_wrap=True)
    load_instance_or_fail(result.path)  # the loader's own checks (overlaps, geometry repair)
    scenario_path = None
    if townships is not None:
        try:
            figures = read_township_figures(townships, result.townships)
        except TownshipTableError as err:
            console.print(f"[bold red]error:[/] {escape(str(err.file))}: {len(err.lines)} "
                          "problem(s):", highlight=False)
            for line in err.lines:
                console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        scenario_path = out.with_suffix(".scenario.toml")
        scenario_path.write_text(scenario_toml(figures, out.stem), encoding="utf-8")
        console.print(f"wrote {scenario_path}: {len(figures.targets_mu)} township target(s), "
                      f"{len(figures.budgets_wan)} budget(s)", highlight=False)
    nxt = f"greenbelt solve {out} --out plan/" + (f" --scenario {scenario_path}"
                                                   if scenario_path else "")
    console.print(f"next: {nxt}", highlight=False, soft_wrap=True)


marxan_app = typer.Typer(no_args_is_help=True,
                         help="Marxan input files from an instance, and Marxan solutions back.")
app.add_typer(marxan_app, name="marxan")


@marxan_app.command("export")
def marxan_export(
    instance: Annotated[Path, typer.Argument(help="instance GeoPackage or Shapefile folder")],
    out: Annotated[Path, typer.Option(help="folder for pu.dat, spec.dat, puvspr.dat, ...")],
    scenario: Annotated[Path | None, typer.Option(help="scenario TOML")] = None,
) -> None:
    """Write pu.dat, spec.dat, puvspr.dat, bound.dat, input.dat (+ pu_plot_ids.csv)."""
    from optimizer.reporting.marxan import export_marxan

    sc = load_scenario_or_fail(scenario)
    done = export_marxan(load_instance_or_fail(instance), sc, out)
    console.print(f"wrote {done.folder}: {done.units:,} planning units, features: "
                  f"{', '.join(done.features) or 'none'}", highlight=False, soft_wrap=True)
    for note in done.left_out:
        console.print(f"[yellow]not passed to Marxan:[/] {escape(note)}", highlight=False,
                      soft_wrap=True)


@marxan_app.command("read")
def marxan_read(
    instance: Annotated[Path, typer.Argument(help="instance GeoPackage or Shapefile folder")],
    solution: Annotated[Path, typer.Argument(help="Marxan output_best.csv or output_rNNNNN")],
    out: Annotated[Path, typer.Option(help="plan CSV to write (for greenbelt check)")],
    scenario: Annotated[Path | None, typer.Option(help="scenario TOML of the export")] = None,
) -> None:
    """Read a Marxan solution back as a plan CSV that `greenbelt check` evaluates."""
    from optimizer.reporting.marxan import write_marxan_plan

    sc = load_scenario_or_fail(scenario)
    try:
        path = write_marxan_plan(load_instance_or_fail(instance), sc, solution, out)
    except ValueError as err:
        fail(str(err))
    console.print(f"wrote {path}; next: greenbelt check {instance} {path}"
                  + (f" --scenario {scenario}" if scenario else ""), highlight=False,
                  soft_wrap=True)
