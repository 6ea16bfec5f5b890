"""`greenbelt frontier`: a trade-off curve. One scenario key (e.g. the farmland target or the
budget) takes a series of values; each point is a solved plan from the sweep machinery, so a
frontier is resumable exactly as a sweep is. Outputs: frontier.csv and frontier.png."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from optimizer.batch.sweep import (  # noqa: E402
    Sweep,
    SweepError,
    SweepProgress,
    SweepReport,
    plan_sweep,
    run_sweep,
    specs_from_grid,
)
from optimizer.reporting.export import atomic_path, write_csv  # noqa: E402

# measure name -> comparison.csv column
MEASURES = {"cost": "cost_wan", "lost_output": "lost_output_wan", "objective": "objective"}
# ASCII units: matplotlib's default font has no CJK glyphs.
UNITS = {"cost": "10k yuan", "lost_output": "10k yuan/year",
         "objective": "10k yuan equivalent, with penalties"}
SUGGESTED = ("targets.priority_farmland_mu", "budget.total_wan")


def frontier_values(values: str | None = None, start: float | None = None,
                    stop: float | None = None, steps: int | None = None) -> list[float]:
    """Either a comma list of numbers or start/stop/steps (evenly spaced, both ends included)."""
    if values is not None:
        if start is not None or stop is not None:
            raise SweepError("give either --values or --from/--to/--steps, not both")
        try:
            out = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise SweepError(f"--values {values!r}: expected numbers separated by commas") from None
    else:
        if start is None or stop is None or steps is None:
            raise SweepError("give --values, or all of --from, --to and --steps")
        if steps < 2:
            raise SweepError("--steps must be at least 2")
        out = [float(v) for v in np.linspace(start, stop, steps)]
    if not out:
        raise SweepError("no values to solve")
    return out


def frontier_table(report: SweepReport, vary: str, measure: str) -> pd.DataFrame:
    """One row per point, sorted by value: value, measure, status, termination, gap, met, ..."""
    t = report.table
    col = MEASURES[measure]

    def column(name: str) -> pd.Series:
        return t[name] if name in t.columns else pd.Series([None] * len(t), index=t.index)

    table = pd.DataFrame({
        "parameter": vary,
        "value": pd.to_numeric(t[vary], errors="coerce"),
        "measure_name": measure,
        "measure": pd.to_numeric(column(col), errors="coerce"),
        "status": t["status"],
        "termination": column("termination"),
        "gap": pd.to_numeric(column("gap"), errors="coerce"),
        "met": column("all_met"),
        "objective": pd.to_numeric(column("objective"), errors="coerce"),
        "bound": pd.to_numeric(column("bound"), errors="coerce"),
        "folder": t["folder"],
        "error": column("error"),
    })
    return table.sort_values("value", kind="stable").reset_index(drop=True)


def draw_frontier(table: pd.DataFrame, path: Path, vary: str, measure: str, title: str) -> None:
    """Proven-optimal points filled, unproven hollow with their gap, targets missed (elastic)
    as red crosses, points without a plan as grey marks on the axis."""
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    has_plan = table["status"].isin(["met", "missed"]) & table["measure"].notna()
    optimal = has_plan & (table["termination"] == "optimal")
    met = table["status"] == "met"
    ok = table[has_plan & met]  # the curve joins plans that meet every target
    ax.plot(ok["value"], ok["measure"], color="#888888", lw=1, zorder=1)
    groups = (
        (optimal & met, dict(marker="o", color="#1b7837", ls="none"), "optimal"),
        (~optimal & has_plan & met, dict(marker="o", mfc="white", color="#1b7837", ls="none"),
         "feasible, not proven optimal"),
        (has_plan & ~met, dict(marker="X", color="#d6604d", ls="none", ms=9),
         "targets missed (elastic)"),
    )
    for mask, style, label in groups:
        pts = table[mask]
        if len(pts):
            ax.plot(pts["value"], pts["measure"], label=label, zorder=3, **style)
    if measure == "objective":
        # The gap as an error bar: the optimum lies between the bound and the plan's objective.
        unproven = table[has_plan & ~optimal & table["bound"].notna()]
        if len(unproven):
            low = (unproven["measure"] - unproven["bound"]).clip(lower=0)
            ax.errorbar(unproven["value"], unproven["measure"], yerr=[low, low * 0],
                        fmt="none", ecolor="#1b7837", capsize=3, zorder=2)
    for _, r in table[has_plan & ~optimal & table["gap"].notna()].iterrows():
        ax.annotate(f"gap {r['gap']:.2%}", (r["value"], r["measure"]), textcoords="offset points",
                    xytext=(4, 6), fontsize=7)
    none = table[~has_plan]
    if len(none):
        ax.plot(none["value"], np.zeros(len(none)), marker="v", color="#969696", ls="none",
                ms=9, transform=ax.get_xaxis_transform(), clip_on=False,
                label="no plan (failed or no solution)")
    ax.set_xlabel(vary)
    ax.set_ylabel(f"{measure} ({UNITS[measure]})")
    ax.set_title(title.replace("$", r"\$"), fontsize=10)  # "$" would start mathtext
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def frontier_sweep(instance: Path, out: Path, vary: str, values: list[float], *,
                   base: Path | None = None, backend: str | None = None,
                   time_limit: float | None = None, elastic: bool | None = None) -> Sweep:
    """The frontier as a one-axis grid sweep (so it is keyed and resumable like any sweep)."""
    specs = specs_from_grid([(vary, list(values))], base, backend, time_limit)
    return plan_sweep(instance, specs, out, elastic=elastic)


def write_frontier(report: SweepReport, vary: str, measure: str) -> tuple[
        pd.DataFrame, dict[str, Path]]:
    out = report.sweep.out
    table = frontier_table(report, vary, measure)
    paths = {"csv": out / "frontier.csv", "png": out / "frontier.png",
             "comparison": report.comparison}
    write_csv(table, paths["csv"])
    with atomic_path(paths["png"]) as tmp:
        draw_frontier(table, tmp, vary, measure,
                      f"{report.sweep.instance.name}: {measure} vs {vary}")
    return table, paths


def check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise SweepError(f"--measure {measure!r}: expected one of {', '.join(MEASURES)}")


def run_frontier(
    instance: Path,
    out: Path,
    vary: str,
    values: list[float],
    measure: str = "cost",
    *,
    base: Path | None = None,
    backend: str | None = None,
    time_limit: float | None = None,
    elastic: bool | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    progress: SweepProgress | None = None,
) -> tuple[pd.DataFrame, SweepReport, dict[str, Path]]:
    check_measure(measure)
    sweep = frontier_sweep(instance, out, vary, values, base=base, backend=backend,
                           time_limit=time_limit, elastic=elastic)
    report = run_sweep(sweep, workers=workers, scheduler=scheduler, progress=progress)
    table, paths = write_frontier(report, vary, measure)
    return table, report, paths
