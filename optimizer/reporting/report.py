"""report.html: one self-contained offline page per plan — an SVG map (pan, zoom, click a plot
for its row), status and gap, the targets, the farmland blocks, the townships and the scenario.
No CDN, no external file: the map is inline SVG, the script a few lines of plain JS, and the
Chinese font a subset of the packaged Noto Sans CJK SC embedded as a data URL."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from instances.instance import Instance
from optimizer.reporting.maps import COLOURS, cjk_font_path, plan_colours
from optimizer.reporting.tables import ZH

SIMPLIFY_M = 0.5  # map outlines simplified by this much (never changes a figure)
_NUMBER = re.compile(r"(-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?)")

_STYLE = """
body{font-family:GreenbeltCJK,"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;
margin:0;color:#222}header{padding:10px 16px;background:#24523a;color:#fff}
h1{font-size:18px;margin:0}
main{display:grid;grid-template-columns:minmax(0,3fr) minmax(260px,1fr);gap:12px;padding:12px}
#map{width:100%;height:70vh;border:1px solid #999;background:#fafafa;cursor:grab}
#map path{stroke:#fff;stroke-width:0.3;vector-effect:non-scaling-stroke}
#map path.sel{stroke:#d7191c;stroke-width:2}table{border-collapse:collapse;font-size:12px;
margin:6px 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
td:first-child,th:first-child{text-align:left}.no{color:#c00;font-weight:bold}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;
vertical-align:middle}section{padding:0 12px}pre{background:#f4f4f4;padding:8px;
font-size:11px;overflow:auto;max-height:300px}
"""

# Records any error before the page's own script runs (the tests read data-errors).
_GUARD = """document.documentElement.dataset.errors="";
function _err(m){document.documentElement.dataset.errors+=m+"|";}
window.addEventListener("error",e=>_err(e.message));
const _ce=console.error;console.error=(...a)=>{_err(a.join(" "));_ce(...a);};"""

_SCRIPT = """
const svg=document.getElementById("map"),vb=svg.viewBox.baseVal,D=JSON.parse(
document.getElementById("rows").textContent);let drag=null,moved=false,sel=null;
function pt(e){const r=svg.getBoundingClientRect();return{x:vb.x+(e.clientX-r.left)/r.width*
vb.width,y:vb.y+(e.clientY-r.top)/r.height*vb.height};}
svg.addEventListener("wheel",e=>{e.preventDefault();const p=pt(e),k=e.deltaY>0?1.25:0.8;
vb.x=p.x-(p.x-vb.x)*k;vb.y=p.y-(p.y-vb.y)*k;vb.width*=k;vb.height*=k;},{passive:false});
svg.addEventListener("mousedown",e=>{drag=pt(e);moved=false;});
svg.addEventListener("mousemove",e=>{if(!drag)return;const p=pt(e);vb.x-=p.x-drag.x;
vb.y-=p.y-drag.y;moved=true;});
window.addEventListener("mouseup",()=>{drag=null;});
function show(i){const row=D.rows[i];if(!row)return;if(sel)sel.classList.remove("sel");
sel=svg.querySelector('path[data-i="'+i+'"]');if(sel)sel.classList.add("sel");
document.getElementById("row").innerHTML="<table>"+D.columns.map((c,k)=>"<tr><th>"+c+
"</th><td>"+row[k]+"</td></tr>").join("")+"</table>";}
svg.addEventListener("click",e=>{if(!moved&&e.target.dataset.i!==undefined)show(
+e.target.dataset.i);});
const h=decodeURIComponent(location.hash.slice(1));if(h.startsWith("plot=")){
const i=D.rows.findIndex(r=>String(r[0])===h.slice(5));if(i>=0)show(i);}
document.documentElement.dataset.ready="1";
"""


def svg_paths(inst: Instance) -> tuple[list[str], tuple[float, float, float, float]]:
    """Each plot's outline as an SVG path (metres from the map's top-left, y down), and the
    view box. Vectorised: WKT from shapely, then text substitution."""
    geoms = shapely.simplify(inst.geometry.to_numpy(), SIMPLIFY_M, preserve_topology=True)
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    moved = shapely.transform(geoms, lambda xy: np.column_stack([xy[:, 0] - x0, y1 - xy[:, 1]]))
    wkt = shapely.to_wkt(moved, rounding_precision=1, trim=True)
    paths = []
    for text in wkt:  # one string per plot: O(n) text work, no geometry in Python
        body = text[text.index("("):]
        rings = re.findall(r"\(([^()]+)\)", body)
        paths.append("".join("M" + _NUMBER.sub(r"\1 \2", r).replace(", ", "L") + "Z"
                             for r in rings))
    return paths, (0.0, 0.0, float(x1 - x0), float(y1 - y0))


def _html_table(df: pd.DataFrame, zh: bool = True) -> str:
    head = "".join(f"<th>{html.escape(ZH.get(c, '') + ' ' if zh and c in ZH else '')}"
                   f"{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):  # small tables: targets, blocks, townships
        cells = []
        for v in row:
            if isinstance(v, bool | np.bool_):
                cells.append("<td>是 yes</td>" if v else "<td class='no'>否 NO</td>")
            elif isinstance(v, float | np.floating):
                cells.append(f"<td>{v:,.2f}</td>" if np.isfinite(v) else "<td></td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_report(inst: Instance, plan, table: pd.DataFrame, targets: pd.DataFrame,
                  blocks: pd.DataFrame, townships: pd.DataFrame) -> str:
    """The page as one string."""
    paths, (x, y, w, h) = svg_paths(inst)
    colours = plan_colours(inst, plan.actions)
    shapes = "".join(f'<path data-i="{i}" fill="{c}" d="{d}"/>'
                     for i, (c, d) in enumerate(zip(colours, paths, strict=True)))
    rows = {"columns": list(table.columns),
            "rows": json.loads(table.to_json(orient="values", force_ascii=False))}
    data = json.dumps(rows, ensure_ascii=False).replace("</", "<\\/")
    legend = "".join(f'<span style="background:{COLOURS[k]}"></span>{html.escape(t)}'
                     for k, t in (("farmland", "复垦为耕地 to farmland"),
                                  ("forest", "造林 to forest"),
                                  ("candidate", "集体建设用地 collective land, kept"),
                                  ("existing_farmland", "现状耕地 existing farmland"),
                                  ("existing_forest", "现状林地 existing forest"),
                                  ("other", "其他 other")))
    t = plan.totals
    gap = "—" if plan.gap is None else f"{plan.gap:.3%}"  # recomputed objective vs valid bound
    met = "all targets met 全部达标" if plan.all_met else "some targets missed 部分指标未达标"
    scenario = json.dumps(plan.scenario.to_dict(), ensure_ascii=False, indent=1)
    title = html.escape(f"{plan.instance} / {plan.scenario.name}")
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>{_STYLE}</style><script>{_GUARD}</script></head><body>
<header><h1>{title}</h1><div id="status">{html.escape(plan.status)} · gap {gap} ·
{met}</div></header>
<main><div><svg id="map" xmlns="http://www.w3.org/2000/svg" viewBox="{x} {y} {w:.1f} {h:.1f}"
preserveAspectRatio="xMidYMid meet">{shapes}</svg>
<div class="legend">{legend}</div>
<p>Scroll to zoom, drag to pan, click a plot for its row.
滚轮缩放、拖动平移、点击地块查看明细。</p></div>
<aside><h2>地块 plot</h2><div id="row">—</div>
<h2>合计 totals</h2><p>vacated 腾退 {t.vacated_mu:,.1f} mu in {t.vacated_plots:,} plots;
farmland 耕地 {t.farmland_mu:,.1f} mu; forest 林地 {t.forest_mu:,.1f} mu;
cost 成本 {t.cost_wan:,.1f} 万元; lost output 减少产值 {t.lost_output_wan:,.1f} 万元/年</p></aside>
</main>
<section><h2>指标 targets</h2>{_html_table(targets)}
<h2>耕地连片 farmland blocks ({len(blocks)})</h2>{_html_table(blocks)}
<h2>乡镇 townships</h2>{_html_table(townships)}
<h2>情景 scenario</h2><pre>{html.escape(scenario)}</pre></section>
<script type="application/json" id="rows">{data}</script>
<script>{_SCRIPT}</script></body></html>
"""


def embedded_font(text: str) -> str:
    """An @font-face rule with the packaged CJK font cut down to the characters of `text`
    (WOFF, base64; ~15 KB for a report): Chinese shows on any machine, offline. Empty if the
    font package is absent (the page then names system fonts only)."""
    path = cjk_font_path()
    if path is None:
        return ""
    import base64
    import io

    from fontTools import subset

    opts = subset.Options()
    opts.flavor, opts.layout_features, opts.hinting, opts.desubroutinize = "woff", [], False, True
    font = subset.load_font(str(path), opts, lazy=True)
    cutter = subset.Subsetter(opts)
    cutter.populate(text="".join(sorted(set(text))))
    cutter.subset(font)
    buf = io.BytesIO()
    subset.save_font(font, buf, opts)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return ("@font-face{font-family:GreenbeltCJK;src:url(data:font/woff;base64," + data
            + ") format('woff');}")


def write_report(inst: Instance, plan, table: pd.DataFrame, path: Path) -> None:
    from optimizer.reporting.tables import blocks_table, targets_table, townships_table

    page = render_report(inst, plan, table, targets_table(plan),
                         blocks_table(inst, plan, table), townships_table(inst, plan, table))
    page = page.replace("<style>", "<style>" + embedded_font(page), 1)
    path.write_text(page, encoding="utf-8")
