"""report.html for a folder of plans: a sweep's or portfolio's scenario table, a comparison's KPI
deltas with a difference map, an importance run's replacement-cost map. Same machinery as the
per-plan page (`report.py`): one self-contained offline file, inline SVG, the CJK font subset
embedded, no CDN. The builders take plain tables and per-plot colours; `batch/` calls them."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from instances.instance import Instance
from optimizer.reporting.export import atomic_path
from optimizer.reporting.report import (
    _GUARD,
    _SCRIPT,
    _STYLE,
    _html_table,
    embedded_font,
    svg_paths,
)

NO_VALUE = "#e6e6e6"
SWEEP_COLUMNS = ("name", "status", "gap", "all_met", "objective", "cost_wan", "lost_output_wan",
                 "vacated_mu", "farmland_mu", "forest_mu", "vacated_plots", "rule_violations",
                 "error")


def value_colours(values: np.ndarray, cmap: str = "viridis_r", steps: int = 5,
                  ) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Per plot a hex colour from `values` binned into `steps` equal classes (NaN: grey), and
    the legend (colour, range) for the classes that occur."""
    import matplotlib
    from matplotlib.colors import to_hex

    values = np.asarray(values, float)
    out = np.full(len(values), NO_VALUE, dtype=object)
    ok = np.isfinite(values)
    if not ok.any():
        return out, []
    lo, hi = float(values[ok].min()), float(values[ok].max())
    edges = np.linspace(lo, hi, steps + 1) if hi > lo else np.array([lo, lo])
    k = len(edges) - 1
    cls = np.clip(np.searchsorted(edges, values[ok], side="right") - 1, 0, k - 1)
    palette = [to_hex(matplotlib.colormaps[cmap](j / max(k - 1, 1))) for j in range(k)]
    out[ok] = np.asarray(palette, dtype=object)[cls]
    legend = [(palette[j], f"{edges[j]:,.4g} – {edges[j + 1]:,.4g}") for j in range(k)
              if (cls == j).any()]
    return out, legend


def count_colours(counts: np.ndarray, k: int, cmap: str = "YlOrRd",
                  ) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Per plot a colour for "vacated in j of k plans" (j = 1..k, one class each up to ten
    plans, else binned); NaN or 0: grey."""
    import matplotlib
    from matplotlib.colors import to_hex

    counts = np.asarray(counts, float)
    if k > 10:
        return value_colours(np.where(counts > 0, counts, np.nan), cmap)
    palette = [to_hex(matplotlib.colormaps[cmap](0.25 + 0.75 * j / max(k - 1, 1)))
               for j in range(k)]
    out = np.full(len(counts), NO_VALUE, dtype=object)
    ok = np.isfinite(counts) & (counts >= 1)
    j = np.clip(counts[ok].astype(int), 1, k) - 1
    out[ok] = np.asarray(palette, dtype=object)[j]
    legend = [(palette[i], f"{i + 1} of {k} plans") for i in range(k) if (j == i).any()]
    return out, legend


def _legend(items: list[tuple[str, str]]) -> str:
    return "".join(f'<span style="background:{c}"></span>{html.escape(t)}' for c, t in items)


def _blank(table: pd.DataFrame) -> pd.DataFrame:
    """Missing cells shown empty (not 'None'/'nan') in object columns."""
    obj = [c for c in table.columns if table[c].dtype == object]
    return table.assign(**{c: table[c].where(table[c].notna(), "") for c in obj})


def render_page(title: str, subtitle: str, tables: list[tuple[str, pd.DataFrame]],
                inst: Instance | None = None, colours: np.ndarray | None = None,
                legend: list[tuple[str, str]] | None = None,
                rows: pd.DataFrame | None = None) -> str:
    """The page as one string. With `inst` and `colours`, a map (pan, zoom, click a plot for
    its row in `rows`, one row per plot in instance order)."""
    body = "".join(f"<h2>{html.escape(h)}</h2><div style='overflow-x:auto'>"
                   f"{_html_table(_blank(t), zh=False)}</div>" for h, t in tables)
    title_h = html.escape(title)
    if inst is None or colours is None:
        main = f"<section>{body}</section>"
        script = "document.documentElement.dataset.ready='1';"
        data = ""
    else:
        paths, (x, y, w, h) = svg_paths(inst)
        shapes = "".join(f'<path data-i="{i}" fill="{c}" d="{d}"/>'
                         for i, (c, d) in enumerate(zip(colours, paths, strict=True)))
        rows = rows if rows is not None else pd.DataFrame(
            {"plot_id": inst.plots["plot_id"].astype(str)})
        rows = rows.astype(object).where(rows.notna(), "")  # no "null" in a plot's row
        payload = {"columns": list(rows.columns),
                   "rows": json.loads(rows.to_json(orient="values", force_ascii=False))}
        data = ('<script type="application/json" id="rows">'
                + json.dumps(payload, ensure_ascii=False).replace("</", "<\\/") + "</script>")
        main = f"""<main><div><svg id="map" xmlns="http://www.w3.org/2000/svg"
viewBox="{x} {y} {w:.1f} {h:.1f}" preserveAspectRatio="xMidYMid meet">{shapes}</svg>
<div class="legend">{_legend(legend or [])}</div>
<p>Scroll to zoom, drag to pan, click a plot for its row. 滚轮缩放、拖动平移、点击地块查看明细。</p>
</div><aside><h2>地块 plot</h2><div id="row">—</div></aside></main>
<section>{body}</section>"""
        script = _SCRIPT
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title_h}</title>
<style>{_STYLE}</style><script>{_GUARD}</script></head><body>
<header><h1>{title_h}</h1><div id="status">{html.escape(subtitle)}</div></header>
{main}{data}<script>{script}</script></body></html>
"""


def write_page(path: Path, page: str) -> Path:
    page = page.replace("<style>", "<style>" + embedded_font(page), 1)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def sweep_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """The scenario table shown: name, the sweep's parameters, the headline columns, then every
    target (`<target>.achieved/.required/.met`) and the times."""
    head = [c for c in SWEEP_COLUMNS if c in comparison.columns]
    skip = {"hash", "folder", "termination", "backend", "solver_objective", "bound", "elastic",
            "seconds", *head}
    target = [c for c in comparison.columns if c.endswith((".achieved", ".required", ".met"))]
    times = [c for c in comparison.columns if c.endswith("_s")]
    params = [c for c in comparison.columns if c not in {*skip, *target, *times}]
    table = comparison[head[:1] + params + head[1:] + target + times].copy()
    for col in ("gap", "gap_to_best"):
        if col in table.columns:  # fractions: shown as percentages
            v = pd.to_numeric(table[col], errors="coerce")
            table[col] = [f"{x:.3%}" if np.isfinite(x) else "" for x in v]
    return table


def write_sweep_report(comparison: pd.DataFrame, path: Path, title: str,
                       inst: Instance | None = None, frequency: pd.DataFrame | None = None,
                       k: int = 0) -> Path:
    """A sweep's (or portfolio's) report.html: the scenario table; with `frequency` (plot_id,
    vacated, ... as in selection_frequency.csv) a map of how often each plot is vacated."""
    counts = comparison["status"].astype(str).value_counts() if "status" in comparison else {}
    subtitle = f"{len(comparison)} scenarios 情景: " + ", ".join(
        f"{n} {status}" for status, n in counts.items())
    tables = [("情景 scenarios", sweep_table(comparison))]
    if inst is None or frequency is None:
        return write_page(path, render_page(title, subtitle, tables))
    pos = pd.Index(inst.plots["plot_id"].astype(str)).get_indexer(frequency["plot_id"])
    values = np.full(inst.num_plots, np.nan)
    vac = frequency["vacated"].to_numpy(float)
    values[pos[vac > 0]] = vac[vac > 0]
    colours, legend = count_colours(values, k)
    legend = [*legend, (NO_VALUE, "never vacated / not a candidate 未腾退")]
    rows = pd.DataFrame({"plot_id": inst.plots["plot_id"].astype(str)})
    rows = rows.merge(frequency.drop(columns=["township"], errors="ignore"), on="plot_id",
                      how="left")
    subtitle += f"; map: plans (of {k}) vacating each plot 地块被腾退的方案数"
    return write_page(path, render_page(title, subtitle, tables, inst, colours, legend, rows))


def write_compare_report(inst: Instance, kpis: pd.DataFrame, changed: pd.DataFrame,
                         colours: np.ndarray, legend: list[tuple[str, str]], path: Path,
                         title: str) -> Path:
    """A comparison's report.html: KPI deltas, the difference map (per-plot colours given),
    the changed plots."""
    rows = pd.DataFrame({"plot_id": inst.plots["plot_id"].astype(str)})
    rows = rows.merge(changed, on="plot_id", how="left")
    rows["change"] = rows["change"].fillna("unchanged")
    subtitle = f"{len(changed):,} plots changed 变化地块"
    tables = [("指标差异 KPI deltas (B − A)", kpis),
              ("变化地块 changed plots", changed)]
    return write_page(path, render_page(title, subtitle, tables, inst, colours, legend, rows))


def write_importance_report(inst: Instance, table: pd.DataFrame, path: Path, title: str) -> Path:
    """An importance run's report.html: the plan's vacated plots coloured by replacement cost
    (irreplaceable ones black), the ranked table."""
    pos = pd.Index(inst.plots["plot_id"].astype(str)).get_indexer(table["plot_id"])
    values = np.full(inst.num_plots, np.nan)
    values[pos] = table["replacement_cost_wan"].to_numpy(float)
    colours, legend = value_colours(values, "viridis_r")
    legend = [(c, t + " 万元") for c, t in legend]
    if "irreplaceable" in table.columns:
        flagged = pos[table["irreplaceable"].to_numpy(bool)]
        colours[flagged] = "#000000"
        legend.append(("#000000", "irreplaceable 不可替代"))
    legend.append((NO_VALUE, "kept, or no answer 保留/无结果"))
    rows = pd.DataFrame({"plot_id": inst.plots["plot_id"].astype(str)}).merge(
        table, on="plot_id", how="left")
    subtitle = f"{len(table):,} vacated plots ranked by replacement cost 替代成本"
    return write_page(path, render_page(title, subtitle, [("重要性 importance", table)], inst,
                                        colours, legend, rows))
