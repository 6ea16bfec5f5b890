"""report.html for batch folders: a sweep's scenario table, a portfolio's frequency map, a
comparison's KPI deltas and difference map, an importance run's replacement-cost map. Each is
written by its command, self-contained, and (where chromium is installed) loads without a script
error with its table rows and map plots."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer.batch import sweep as sw
from optimizer.batch.alternatives import AlternativesError
from optimizer.batch.compare import CHANGE_COLOURS, compare_plan_files
from optimizer.batch.importance import plot_importance, write_importance
from optimizer.batch.portfolio import run_portfolio
from optimizer.model.scenario import Scenario
from optimizer.plan.runset import MANIFEST
from optimizer.reporting.pages import NO_VALUE, count_colours, value_colours
from tests.conftest import grid_instance
from tests.test_compare import write_plan
from tests.test_portfolio_importance import case
from tests.test_sweep import BASE_TOML, shared_instance

K, F, G = 0, 1, 2


def fills(page: str) -> list[str]:
    return re.findall(r'<path data-i="\d+" fill="([^"]+)"', page)


def self_contained(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no CDN, no web
    assert 'id="status"' in page


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-scenario sweep on the shared 500-plot instance, in this process."""
    instance = shared_instance(tmp_path_factory)
    base = tmp_path_factory.mktemp("rbase") / "base.toml"
    base.write_text(BASE_TOML.format(years=5.0), encoding="utf-8")
    out = tmp_path_factory.mktemp("rsweep")
    specs = sw.specs_from_grid([sw.parse_grid("objective.output_years=0,5")], base)
    sw.run_sweep(sw.plan_sweep(instance, specs, out), workers=1)
    return out


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """Hand-made plans on a 3 x 4 grid: every change kind occurs."""
    tmp = tmp_path_factory.mktemp("rcmp")
    inst = grid_instance(np.random.default_rng(7), 3, 4)
    a = np.array([F, F, G, K, K, K, G, K, K, F, K, K], dtype=np.int8)
    b = np.array([F, G, G, F, K, K, K, K, F, F, G, K], dtype=np.int8)
    ids = inst.plots["plot_id"]
    pa, pb = write_plan(tmp / "a.csv", ids, a), write_plan(tmp / "b.csv", ids, b)
    cmp, paths = compare_plan_files(inst, Scenario(), pa, pb, tmp / "out")
    assert paths["report"] == tmp / "out" / "report.html"
    return tmp / "out", cmp.codes


def test_sweep_writes_its_report(sweep_dir: Path) -> None:
    page = (sweep_dir / "report.html").read_text(encoding="utf-8")
    self_contained(page)
    table = pd.read_csv(sweep_dir / "comparison.csv", encoding="utf-8-sig")
    assert page.count("<tr>") == len(table) + 1 == 3  # header + one row per scenario
    for name in table["name"]:
        assert f"<td>{name}</td>" in page
    assert "<svg" not in page  # a sweep's plans differ in scenario, not one map
    assert "@font-face{font-family:GreenbeltCJK" in page or "GreenbeltCJK" in page


def test_compare_writes_a_difference_map(compare_dir: tuple[Path, np.ndarray]) -> None:
    out, codes = compare_dir
    page = (out / "report.html").read_text(encoding="utf-8")
    self_contained(page)
    colours = fills(page)
    assert len(colours) == 12
    for k in range(1, 5):  # each change kind drawn in its colour on exactly its plots
        assert colours.count(CHANGE_COLOURS[k]) == int((codes == k).sum()), k
    assert "kept-&gt;vacated" in page and "KPI deltas" in page
    assert "report.html" in (out / MANIFEST).read_text(encoding="utf-8")  # one set with the rest


def test_portfolio_report_has_the_frequency_layer(tmp_path: Path) -> None:
    for seed in range(12):  # a case with several plans
        inst, s, path = case(seed, False, tmp_path)
        out = tmp_path / f"pf{seed}"
        try:
            rep = run_portfolio(path, s, out, k=3, gap=0.5, diversity=0.1, inst=inst)
        except AlternativesError:  # an infeasible case: try the next
            continue
        if len(rep.plans) >= 2:
            break
    assert len(rep.plans) >= 2
    page = (out / "report.html").read_text(encoding="utf-8")
    self_contained(page)
    colours = fills(page)
    assert len(colours) == inst.num_plots
    vacated = rep.frequency.set_index("plot_id")["vacated"]
    ids = inst.plots["plot_id"].astype(str)
    never = [i for i, p in enumerate(ids) if vacated.get(p, 0) == 0]
    assert [colours[i] for i in never] == [NO_VALUE] * len(never)
    assert len(set(colours)) >= 2
    assert f"of {len(rep.plans)} plans" in page  # the legend
    assert page.count("<tr>") >= len(rep.plans) + 1


def test_importance_report_colours_by_replacement_cost(tmp_path: Path) -> None:
    for seed in range(6):
        inst, s, path = case(seed, False, tmp_path)
        try:
            rep = plot_importance(path, s, inst=inst)
        except Exception:  # noqa: BLE001 - a case without a feasible plan: try the next
            continue
        if len(rep.table):
            break
    paths = write_importance(inst, rep, tmp_path / "imp")
    page = paths["report"].read_text(encoding="utf-8")
    self_contained(page)
    colours = fills(page)
    assert len(colours) == inst.num_plots
    coloured = sum(c != NO_VALUE for c in colours)
    answered = rep.table["replacement_cost_wan"].notna() | rep.table["irreplaceable"]
    assert coloured == int(answered.sum())
    assert "replacement_cost_wan" in page


def test_value_colours_bins_and_legend() -> None:
    colours, legend = value_colours(np.array([np.nan, 0.0, 1.0, 1.5, 4.0]), steps=4)
    assert colours[0] == NO_VALUE and len(set(colours[1:])) == 3
    assert len(legend) == 3  # the empty class (2-3) is left out
    same, legend1 = value_colours(np.array([3.0, 3.0]))
    assert same[0] == same[1] != NO_VALUE and len(legend1) == 1


def test_count_colours_one_class_per_count() -> None:
    colours, legend = count_colours(np.array([0, 1, 3, 3, np.nan]), 3)
    assert colours[0] == colours[4] == NO_VALUE and colours[2] == colours[3] != colours[1]
    assert [t for _, t in legend] == ["1 of 3 plans", "3 of 3 plans"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _dom(page: Path, tmp_path: Path, fragment: str = "") -> str:
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--virtual-time-budget=3000", f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([*flags, "--dump-dom", page.resolve().as_uri() + fragment],
                          capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (CI installs it)")
def test_sweep_and_compare_reports_load_in_headless_chromium(
        sweep_dir: Path, compare_dir: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    dom = _dom(sweep_dir / "report.html", tmp_path)
    assert 'data-errors=""' in dom, dom[:300]  # no script error, no console.error
    assert 'data-ready="1"' in dom
    assert dom.count("<tr>") == 3
    out, codes = compare_dir
    dom = _dom(out / "report.html", tmp_path, "#plot=P003")
    assert 'data-errors=""' in dom, dom[:300]
    assert 'data-ready="1"' in dom
    assert len(fills(dom)) == 12
    assert "<td>P003</td>" in dom and "<td>kept-&gt;vacated</td>" in dom  # the plot's row
