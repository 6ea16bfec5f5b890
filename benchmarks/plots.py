"""Figures from a benchmark CSV: time against plot count (log-log), build against the PuLP
baseline, and gap against time.

    python -m benchmarks.plots benchmarks/results/results.csv
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _latest(df: pd.DataFrame, run_id: str | None) -> pd.DataFrame:
    if df.empty:
        return df
    return df[df["run_id"] == (run_id or df["run_id"].iloc[-1])]


def _save(fig: plt.Figure, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _label(r: pd.Series) -> str:
    g = "" if r["scenario"] != "contiguity" or str(r["greedy"]) == "True" else " no greedy"
    m = "" if r["method"] in ("mip",) else f" {r['method']}"
    return f"{r['backend']}{m}{g}"


def time_vs_plots(df: pd.DataFrame, path: Path) -> Path:
    """Left: build times (array build, HiGHS hand-off, PuLP objects) against plots, with a
    linear reference. Right: solve times per back-end / method, targets and contiguity."""
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    pulp = df[df["method"] == "pulp"].sort_values("plots")
    ax = axes[0]
    for col, name in (("array_build_s", "array build (build_model)"),
                      ("array_handoff_s", "HiGHS hand-off (passModel)"),
                      ("pulp_build_s", "PuLP objects (LpVariable, lpSum)"),
                      ("pulp_write_s", "PuLP writeMPS")):
        d = pulp.dropna(subset=[col])
        if len(d):
            ax.loglog(d["plots"], d[col], "o-", label=name)
    if len(pulp.dropna(subset=["array_build_s"])):
        x0 = pulp["plots"].min()
        y0 = pulp.loc[pulp["plots"] == x0, "array_build_s"].iloc[0]
        xs = np.array([x0, pulp["plots"].max()])
        ax.loglog(xs, y0 * xs / x0, "k:", label="linear in plots")
    for _, r in pulp.iterrows():
        ax.annotate(r["instance"], (r["plots"], r["pulp_build_s"]), fontsize=7,
                    textcoords="offset points", xytext=(-20, 6))
    ax.set(title="model build", xlabel="plots", ylabel="seconds")
    ax.legend(fontsize=8)
    for ax, scen in zip(axes[1:], ("targets", "contiguity"), strict=True):
        d = df[(df["scenario"] == scen) & df["solve_s"].notna()]
        for label, g in d.groupby(d.apply(_label, axis=1)):
            g = g.sort_values("plots")
            ax.loglog(g["plots"], g["solve_s"], "o-", label=label)
            hit = g[g["termination"] != "optimal"]
            ax.loglog(hit["plots"], hit["solve_s"], "x", color="k", ms=9)
        ax.set(title=f"solve, {scen} (x: not proven within the gap)", xlabel="plots",
               ylabel="seconds")
        ax.legend(fontsize=7)
    return _save(fig, path)


def gap_vs_time(df: pd.DataFrame, traces: pd.DataFrame | None, path: Path,
                sweep: pd.DataFrame | None = None) -> Path:
    """Left: HiGHS incumbent/bound gap over time (targets scenario). Middle: final gap against
    solve time of every run, time-limited ones marked. Right (with a sweep): final gap against
    the time limit on the contiguity cases the sweep repeats with longer limits."""
    fig, axes = plt.subplots(1, 3 if sweep is not None else 2,
                             figsize=(19 if sweep is not None else 13, 5))
    ax = axes[0]
    if traces is not None and len(traces):
        t = traces[traces["scenario"] == "targets"]
        for inst, g in t.groupby("instance", sort=False):
            inc, bnd = g["incumbent"].to_numpy(float), g["bound"].to_numpy(float)
            with np.errstate(invalid="ignore"):  # inf - inf before the first incumbent
                gap = np.abs(inc - bnd) / np.maximum(np.abs(inc), 1e-9)
            ok = np.isfinite(gap)
            if ok.any():
                ax.semilogy(g["t"].to_numpy(float)[ok], np.maximum(gap[ok], 1e-6), ".-",
                            label=inst, drawstyle="steps-post")
        ax.axhline(1e-3, color="grey", ls=":", lw=1)
    ax.set(title="HiGHS gap over time (targets, no contiguity)", xlabel="seconds",
           ylabel="relative gap (floor 1e-6)")
    ax.legend(fontsize=8)
    ax = axes[1]
    d = df[df["gap"].notna() & df["solve_s"].notna()]
    for scen, g in d.groupby("scenario"):
        limited = g["termination"] != "optimal"
        ax.loglog(g.loc[~limited, "solve_s"], np.maximum(g.loc[~limited, "gap"], 1e-6), "o",
                  label=f"{scen}, optimal within gap", alpha=0.7)
        if limited.any():
            ax.loglog(g.loc[limited, "solve_s"], np.maximum(g.loc[limited, "gap"], 1e-6), "x",
                      ms=9, label=f"{scen}, stopped (time limit)")
    ax.axhline(1e-3, color="grey", ls=":", lw=1)
    ax.axhline(1e-2, color="grey", ls="--", lw=1)
    ax.set(title="final gap vs solve time (runs with a plan)", xlabel="seconds",
           ylabel="gap (floor 1e-6)")
    ax.legend(fontsize=7)
    if sweep is not None:
        _gap_vs_limit(axes[2], df, sweep)
    return _save(fig, path)


def _gap_vs_limit(ax: plt.Axes, df: pd.DataFrame, sweep: pd.DataFrame) -> None:
    keys = ["instance", "backend", "method"]
    sw = sweep[sweep["scenario"] == "contiguity"]
    both = pd.concat([sw, df[(df["scenario"] == "contiguity") & (df["greedy"].astype(str) == "True")
                             & df["instance"].isin(sw["instance"])]])
    for (inst, b, m), g in both.groupby(keys):
        g = g[g["gap"].notna()].sort_values("time_limit")  # runs without a plan have no gap
        if g.empty:
            continue
        ax.loglog(g["time_limit"], np.maximum(g["gap"].astype(float), 1e-6), "o-",
                  label=f"{inst} {b} {m}")
    ax.axhline(1e-3, color="grey", ls=":", lw=1)
    ax.set(title="contiguity: final gap vs time limit", xlabel="time limit (s)",
           ylabel="gap (floor 1e-6)")
    ax.legend(fontsize=7)


def _f(v: object, spec: str) -> str:
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    return "–" if np.isnan(x) else format(x, spec)


def build_table(df: pd.DataFrame) -> str:
    """Array build against the PuLP-object build, per instance, from the same worker."""
    d = df[df["method"] == "pulp"].sort_values("plots")
    out = ["| instance | columns | rows | nonzeros | build_model s | HiGHS hand-off s | "
           "PuLP objects s | PuLP writeMPS s | PuLP objects / build_model | "
           "PuLP (objects + MPS) / (build_model + hand-off) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for _, r in d.iterrows():
        arr = r["array_build_s"] + r["array_handoff_s"]
        out.append(
            f"| {r['instance']} | {int(r['columns']):,} | {int(r['rows']):,} | "
            f"{int(r['nonzeros']):,} | {_f(r['array_build_s'], '.4f')} | "
            f"{_f(r['array_handoff_s'], '.4f')} | {_f(r['pulp_build_s'], '.3f')} | "
            f"{_f(r['pulp_write_s'], '.3f')} | "
            f"{_f(r['pulp_build_s'] / r['array_build_s'], '.0f')}× | "
            f"{_f((r['pulp_build_s'] + r['pulp_write_s']) / arr, '.0f')}× |")
    return "\n".join(out)


def runs_table(df: pd.DataFrame) -> str:
    """Every solve run: sizes, times, gap, status."""
    d = df[df["method"] != "pulp"]
    out = ["| instance | scenario | back-end | method | greedy | limit s | build s | "
           "solve s | build/solve | gap | termination | targets met | elastic | bound ≤ obj | "
           "peak MB | solve peak MB |",
           "|---|---|---|---|---|---:|---:|---:|---:|---:|---|---|---|---|---:|---:|"]
    for _, r in d.iterrows():
        greedy = ("on" if str(r["greedy"]) == "True" else "off") \
            if r["scenario"] == "contiguity" else ""
        ratio = r["build_s"] / r["solve_s"] if r["solve_s"] and r["solve_s"] > 0 else np.nan
        method = r["method_used"] if isinstance(r["method_used"], str) else r["method"]
        out.append(
            f"| {r['instance']} | {r['scenario']} | {r['backend']} | {method} | {greedy} | "
            f"{_f(r['time_limit'], '.0f')} | {_f(r['build_s'], '.3f')} | "
            f"{_f(r['solve_s'], '.2f')} | {_f(ratio, '.2%')} | {_f(r['gap'], '.3%')} | "
            f"{r['termination']} | {_yes(r['all_met'])} | {_yes(r['elastic'], plain=True)} | "
            f"{_yes(r['bound_ok'])} | {_f(r['peak_mem_mb'], '.0f')} | "
            f"{_f(r.get('solve_peak_mb'), '.0f')} |")
    return "\n".join(out)


def _yes(v: object, plain: bool = False) -> str:
    if str(v) not in ("True", "False"):
        return "–"
    return "yes" if str(v) == "True" else ("no" if plain else "**no**")


def draw(csv: Path, run_id: str | None = None, outdir: Path | None = None) -> list[Path]:
    csv = Path(csv)
    outdir = outdir or csv.parent
    df = _latest(pd.read_csv(csv), run_id)
    tpath = csv.with_name(csv.stem + "_traces.csv")
    traces = _latest(pd.read_csv(tpath), run_id) if tpath.exists() else None
    spath = csv.with_name("sweep.csv")
    sweep = _latest(pd.read_csv(spath), None) if spath.exists() else None
    return [time_vs_plots(df, outdir / "time_vs_plots.png"),
            gap_vs_time(df, traces, outdir / "gap_vs_time.png", sweep)]


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m benchmarks.plots")
    p.add_argument("csv", type=Path)
    p.add_argument("--run-id")
    p.add_argument("--tables", action="store_true", help="print markdown tables, no figures")
    a = p.parse_args()
    if a.tables:
        frame = _latest(pd.read_csv(a.csv), a.run_id)
        print(("" if "pulp" not in set(frame["method"]) else build_table(frame) + "\n\n")
              + runs_table(frame))
    else:
        for f in draw(a.csv, a.run_id):
            print(f)
