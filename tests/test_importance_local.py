"""Importance by neighbourhood re-solves (`optimizer/batch/local.py`) against brute force.

With no full re-solve allowed (full_budget=0) every answer is an interval [lower, upper]
from the bound screen and a fix-and-optimise plan; it must contain the brute-force replacement
cost, an answer called exact must equal it within the gap, and a plot is called irreplaceable
only when brute force finds no plan without it. Truth: `feasible_plans` enumerates every plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optimizer.batch.importance import plot_importance
from optimizer.batch.local import free_plots
from tests.conftest import generated_instance
from tests.test_portfolio_importance import brute_replacement, case, feasible_plans


@pytest.mark.parametrize(("rule", "gap"), [(False, 0.0), (True, 0.0), (True, 0.01)])
def test_intervals_contain_the_brute_force_replacement_cost(rule: bool, gap: float,
                                                             tmp_path: Path) -> None:
    seen = {"answers": 0, "exact": 0, "neighbourhood": 0, "open": 0, "irreplaceable": 0}
    for seed in range(12):
        inst, s, path = case(seed, rule, tmp_path)
        obj, full = feasible_plans(inst, s)
        if len(obj) == 0:
            continue
        rep = plot_importance(path, s, inst=inst, gap=gap, full_budget=0)
        assert rep.summary["re_solved"] == 0
        z = rep.summary["objective"]
        pos = {pid: i for i, pid in enumerate(inst.plots["plot_id"].to_numpy())}
        for _, r in rep.table.iterrows():
            i = pos[r["plot_id"]]
            for prefix, farm in (("", False), ("farmland_", True)):
                if farm and r["action"] != "farmland":
                    continue
                if r["decided_by"] == "illegal building: must be vacated" and not farm:
                    continue
                truth = brute_replacement(obj, full, i, farm)
                seen["answers"] += 1
                if r[f"{prefix}irreplaceable"]:
                    assert truth is None, (seed, r["plot_id"], farm)  # only when proven
                    seen["irreplaceable"] += 1
                    continue
                if truth is None:  # no plan exists: no upper end may have been found
                    assert np.isnan(r[f"{prefix}replacement_cost_wan"]), (seed, r["plot_id"])
                    assert not r[f"{prefix}exact"]
                    continue
                z_p = obj[0] + truth  # the optimum with the restriction
                up = r[f"{prefix}replacement_cost_wan"] + z
                low = r[f"{prefix}lower_bound_wan"] + z
                tol = 1e-6 * max(1.0, abs(z_p))
                assert np.isnan(up) or z_p <= up + tol, (seed, r["plot_id"], farm)
                assert np.isnan(low) or low <= z_p + tol, (seed, r["plot_id"], farm)
                if r[f"{prefix}decided_by"] == "neighbourhood" and not np.isnan(up):
                    # these grids are single clusters of < LOCAL_PLOTS plots: the neighbourhood
                    # is the whole model, so its plan is optimal within the gap
                    seen["neighbourhood"] += 1
                    assert up - z_p <= gap * abs(up) + tol, (seed, r["plot_id"], farm)
                if r[f"{prefix}exact"]:
                    seen["exact"] += 1
                    assert up - z_p <= gap * abs(up) + tol, (seed, r["plot_id"], farm)
                else:
                    seen["open"] += 1
    assert seen["answers"] >= 20 and seen["neighbourhood"] >= 10, seen
    if gap > 0:
        assert seen["exact"] >= 1, seen  # the LP bound closes some intervals


def test_a_neighbourhood_is_whole_clusters_nearest_and_cheapest_first() -> None:
    comp = np.array([0, 0, 1, 2, 2, 2, 3, 4])
    xy = np.array([[0, 0], [1, 0], [2, 0], [9, 0], [9, 1], [9, 2], [3, 0], [50, 0]], float)
    cheap = np.array([5, 5, 5, 5, 5, 5, 5, 0.0])
    # p's cluster {0, 1}, then nearest (cluster 1), cheapest (cluster 4), nearest (cluster 3)
    assert list(free_plots(comp, xy, cheap, 0, 5)) == [0, 1, 2, 6, 7]
    # a budget smaller than p's own cluster still frees that cluster whole
    assert list(free_plots(comp, xy, cheap, 3, 1)) == [3, 4, 5]
    # a cluster that does not fit is skipped, a smaller one after it still joins
    assert list(free_plots(comp, xy, np.full(8, 1.0), 2, 3)) == [0, 1, 2]


def test_command_with_no_full_re_solves(tmp_path: Path) -> None:
    """`greenbelt importance --full-budget 0`: neighbourhoods only; every answer states whether
    it is exact, and an exact one's interval is within the gap."""
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from optimizer.cli import app

    runner = CliRunner()
    inst = generated_instance(tmp_path / "cy.gpkg", 600)
    out = tmp_path / "imp"
    r = runner.invoke(app, ["importance", str(inst), "--out", str(out), "--workers", "1",
                            "--gap", "0.01", "--full-budget", "0"])
    assert r.exit_code == 0, r.output
    assert "still open" in r.output
    summary = json.loads((out / "importance.json").read_text(encoding="utf-8"))
    assert summary["re_solved"] == 0 and summary["failed"] == 0
    t = pd.read_csv(out / "importance.csv", encoding="utf-8-sig", dtype={"plot_id": str})
    exact = t["exact"].astype(bool)
    assert (t.loc[exact & ~t["irreplaceable"], "gap"] <= 0.01 + 1e-9).all()
    assert (t.loc[~exact, "gap"].fillna(1.0) > 0.01).all()
    assert summary["open"] + summary["decided_by_screen"] + summary["by_neighbourhood"] + \
        summary["irreplaceable"] >= summary["questions"]


def test_a_neighbourhood_repairs_a_start_that_breaks_its_rows(tmp_path: Path) -> None:
    """The plan with a vacated plot kept misses a target: `solve_sub` must not hand that start
    back as its answer (it did: row generation kept it as the incumbent), but return a plan
    meeting every row, whose objective is the brute-force optimum with the plot kept."""
    from optimizer.batch.alternatives import build, forbid, strict
    from optimizer.batch.local import fixed_elsewhere, zeroed
    from optimizer.blocks.construct import tolerance
    from optimizer.blocks.neighbourhood import solve_sub
    from optimizer.blocks.rule import Rule
    from optimizer.blocks.search import plan_vector

    checked = 0
    for seed in range(2, 8):
        inst, s, _path = case(seed, False, tmp_path)
        obj, full = feasible_plans(inst, s)
        if not len(obj):
            continue
        s = strict(s)
        pm = build(inst, s)
        nc = len(pm.candidates)
        for p in np.flatnonzero(full[0][pm.candidates] > 0):
            truth = brute_replacement(obj, full, int(pm.candidates[p]), False)
            q = forbid(pm, np.array([p]))
            x0 = zeroed(plan_vector(pm.model, pm, full[0]), q.model)
            if truth is None or q.model.max_violation(x0) <= tolerance(q.model):
                continue
            everyone = np.arange(nc)
            sub = fixed_elsewhere(q.model, Rule([]), x0, np.concatenate([everyone, nc + everyone]),
                                  2 * nc, 10.0, 0.0)
            xs, _ = solve_sub(sub)
            assert xs is not None, (seed, p)
            y = x0.copy()
            y[sub.cols] = xs
            assert q.model.max_violation(y) <= tolerance(q.model)
            assert q.model.objective_value(y) == pytest.approx(obj[0] + truth, rel=1e-6)
            checked += 1
    assert checked >= 3
