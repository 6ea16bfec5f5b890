"""Portfolio and importance against brute-force enumeration of every plan on tiny grids.

Truth: `enumerate_plans` (tests/test_model_bruteforce.py) restates the targets in plain numpy;
with the block rule on, each enumerated plan is also checked with `farmland_blocks` (itself
proven by enumeration in test_contiguity_enumeration.py).
- portfolio: the k plans equal the greedy sequence of best distinct plans: sort every feasible
  plan by objective, keep one if it is within the gap of the best and at weighted-Jaccard distance
  >= delta (vacated area) from every plan kept before;
- importance: the replacement cost of each vacated plot equals min over feasible plans keeping it
  (or, for farmland plots, not turning it to farmland) minus the optimum, within the stated gap;
  a plot is flagged irreplaceable exactly when no feasible plan keeps it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optimizer.batch.importance import plot_importance
from optimizer.batch.portfolio import run_portfolio
from optimizer.blocks.rule import farmland_blocks
from tests.conftest import generated_instance
from tests.test_model_bruteforce import enumerate_plans, plan_objective, random_case


def feasible_plans(inst, s):
    """Feasible plans sorted by objective: (objective, per-plot actions); block rule included."""
    ok, obj, full = enumerate_plans(inst, s)
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(obj[idx], kind="stable")]
    if s.contiguity.enabled:
        idx = np.array([i for i in idx if farmland_blocks(inst, full[i], s).ok], dtype=int)
    return obj[idx], full[idx]


def jaccard(area, a, b) -> float:
    va, vb = a > 0, b > 0
    union = area[va | vb].sum()
    return float(area[va ^ vb].sum() / union) if union > 0 else 0.0


def greedy_portfolio(obj, full, area, k, gap, delta):
    picked: list[int] = []
    for j in range(len(obj)):
        if obj[j] > obj[0] * (1 + gap) + 1e-6 or len(picked) == k:
            break
        if all(jaccard(area, full[j], full[p]) >= delta for p in picked):
            picked.append(j)
    return picked


def case(seed: int, rule: bool, tmp_path: Path):
    inst, s = random_case(seed)
    s.contiguity.enabled = rule
    s.contiguity.min_block_mu = 25.0  # binds on these grids (plots of 5-30 mu), not everywhere
    s.solver.mip_gap = 0.0
    path = tmp_path / f"inst{seed}.gpkg"  # only fingerprinted; the instance is handed over
    path.write_bytes(f"grid {seed}".encode())
    return inst, s, path


@pytest.mark.parametrize("rule", [False, True])
def test_portfolio_is_the_k_best_distinct_plans(rule: bool, tmp_path: Path) -> None:
    k, gap, delta = 4, 0.25, 0.3
    compared = 0
    for seed in range(12):
        inst, s, path = case(seed, rule, tmp_path)
        obj, full = feasible_plans(inst, s)
        if len(obj) == 0:
            continue
        area = inst.plots["area_mu"].to_numpy()
        want = greedy_portfolio(obj, full, area, k, gap, delta)
        rep = run_portfolio(path, s, tmp_path / f"pf{seed}{rule}", k=k, gap=gap,
                            diversity=delta, inst=inst)
        got = [plan_objective(inst, s, p.actions) for p in rep.plans]
        assert got == pytest.approx(list(obj[want]), rel=1e-6, abs=1e-6), seed
        for i, p in enumerate(rep.plans):
            assert p.all_met
            for q in rep.plans[:i]:
                assert jaccard(area, p.actions, q.actions) >= delta - 1e-9
        freq = rep.frequency.set_index("plot_id")
        counts = sum((p.actions > 0).astype(int) for p in rep.plans)
        ids = inst.plots["plot_id"].to_numpy()
        assert all(freq.loc[ids[i], "vacated"] == counts[i] for i in range(len(ids))
                   if ids[i] in freq.index)
        assert (tmp_path / f"pf{seed}{rule}" / "comparison.csv").is_file()
        compared += len(want) >= 2
    assert compared >= 3  # cases with at least two distinct plans, or the test proves little


def brute_replacement(obj, full, plot: int, farmland_only: bool) -> float | None:
    keep = full[:, plot] != 1 if farmland_only else full[:, plot] == 0
    return float(obj[keep][0] - obj[0]) if keep.any() else None


@pytest.mark.parametrize(("rule", "gap"), [(False, 0.0), (True, 0.0), (False, 0.01)])
def test_replacement_costs_equal_brute_force_resolves(rule: bool, gap: float,
                                                      tmp_path: Path) -> None:
    seen = {"answers": 0, "irreplaceable": 0, "farmland": 0, "screen": 0}
    for seed in range(12):
        inst, s, path = case(seed, rule, tmp_path)
        obj, full = feasible_plans(inst, s)
        if len(obj) == 0:
            continue
        rep = plot_importance(path, s, inst=inst, gap=gap)
        ids = inst.plots["plot_id"].to_numpy()
        pos = {pid: i for i, pid in enumerate(ids)}
        for _, r in rep.table.iterrows():
            i = pos[r["plot_id"]]
            for prefix, farm in (("", False), ("farmland_", True)):
                if farm and r["action"] != "farmland":
                    continue
                truth = brute_replacement(obj, full, i, farm)
                seen["answers"] += 1
                seen["farmland"] += farm
                seen["screen"] += r[f"{prefix}decided_by"] == "screen"
                if truth is None:
                    assert r[f"{prefix}irreplaceable"], (seed, r["plot_id"])
                    seen["irreplaceable"] += 1
                    continue
                assert not r[f"{prefix}irreplaceable"]
                got, low = r[f"{prefix}replacement_cost_wan"], r[f"{prefix}lower_bound_wan"]
                tol = gap * (obj[0] + truth) + 1e-6 * max(1.0, obj[0])
                # the base plan is optimal within the gap too: its objective is z* + e, e <= tol
                base = rep.summary["objective"] - obj[0]
                assert truth - tol - 1e-6 <= got + base <= truth + tol + 1e-6, (seed, r["plot_id"])
                assert low <= truth + 1e-6 * max(1.0, obj[0]), (seed, r["plot_id"])
    assert seen["answers"] >= 20 and seen["irreplaceable"] >= 1 and seen["farmland"] >= 3, seen
    if gap > 0:
        assert seen["screen"] >= 1, seen  # the bounds decide some questions without a solve


def test_dask_gives_the_in_process_answers(tmp_path: Path) -> None:
    from distributed import LocalCluster

    inst, s, path = case(3, True, tmp_path)
    one = plot_importance(path, s, inst=inst)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=":0") as cluster:
        dask = plot_importance(path, s, inst=inst, scheduler=cluster.scheduler_address)
    cols = ["plot_id", "replacement_cost_wan", "irreplaceable", "farmland_replacement_cost_wan"]
    a = one.table[cols].sort_values("plot_id").reset_index(drop=True)
    b = dask.table[cols].sort_values("plot_id").reset_index(drop=True)
    assert a["plot_id"].tolist() == b["plot_id"].tolist()
    np.testing.assert_allclose(a["replacement_cost_wan"], b["replacement_cost_wan"], atol=1e-6)
    assert a["irreplaceable"].tolist() == b["irreplaceable"].tolist()


def test_importance_of_a_given_plan_that_is_not_optimal(tmp_path: Path) -> None:
    """--plan: costs are measured from that plan's objective (so they may be negative)."""
    checked = 0
    for seed in range(12):
        inst, s, path = case(seed, False, tmp_path)
        obj, full = feasible_plans(inst, s)
        if len(obj) < 2:
            continue
        rep = plot_importance(path, s, inst=inst, gap=0.0, plan=full[1])
        assert rep.summary["objective"] == pytest.approx(obj[1], rel=1e-9)
        pos = {pid: i for i, pid in enumerate(inst.plots["plot_id"].to_numpy())}
        for _, r in rep.table.iterrows():
            keep = full[:, pos[r["plot_id"]]] == 0
            if not keep.any():
                assert r["irreplaceable"]
                continue
            truth = obj[keep][0] - obj[1]
            assert r["replacement_cost_wan"] == pytest.approx(truth, rel=1e-6, abs=1e-6)
            checked += 1
    assert checked >= 10


def test_a_plan_that_misses_a_target_is_refused(tmp_path: Path) -> None:
    from optimizer.batch.alternatives import AlternativesError

    inst, s, path = case(3, False, tmp_path)
    with pytest.raises(AlternativesError, match="misses a target or breaks a rule"):
        plot_importance(path, s, inst=inst, plan=np.zeros(inst.num_plots, dtype=np.int8))


def test_commands_end_to_end(tmp_path: Path) -> None:
    """portfolio -> a sweep folder `compare` reads; importance on a process pool and on a plan
    file of the portfolio gives the same ranking as in one process."""
    import pandas as pd
    from typer.testing import CliRunner

    from optimizer.cli import app

    runner = CliRunner()
    inst = generated_instance(tmp_path / "cy.gpkg", 800)
    pf = tmp_path / "pf"
    r = runner.invoke(app, ["portfolio", str(inst), "--out", str(pf), "--plans", "3",
                            "--gap", "0.05", "--diversity", "0.1"])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(pf / "portfolio.csv", encoding="utf-8-sig")
    assert len(table) >= 2 and (table["gap_to_best"] <= 0.05 + 1e-9).all()
    assert (table["min_distance_to_earlier"].dropna() >= 0.1 - 1e-9).all()
    for name in ("comparison.csv", "selection_frequency.csv", "frequency_map.png"):
        assert (pf / name).is_file(), name
    folders = sorted(p for p in pf.iterdir() if (p / "done.json").is_file())
    assert len(folders) == len(table)
    r = runner.invoke(app, ["compare", str(inst), str(folders[0] / "plan.csv"),
                            str(folders[1] / "plan.csv"), "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 0, r.output
    again = runner.invoke(app, ["portfolio", str(inst), "--out", str(pf), "--plans", "3",
                                "--gap", "0.05", "--diversity", "0.1"])
    assert f"{len(table)} reused" in again.output or "3 reused" in again.output, again.output

    # importance of the second portfolio plan, on a process pool (the instance loaded by path)
    out = tmp_path / "imp"
    r = runner.invoke(app, ["importance", str(inst), "--out", str(out), "--workers", "2",
                            "--plan", str(folders[1] / "plan.csv"), "--gap", "0.01"])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out / "importance.csv", encoding="utf-8-sig", dtype={"plot_id": str})
    plan = pd.read_csv(folders[1] / "plan.csv", encoding="utf-8-sig", dtype={"plot_id": str})
    assert sorted(t["plot_id"]) == sorted(plan.loc[plan["action"] != "keep", "plot_id"])
    assert (out / "importance_map.png").is_file()
    summary = json.loads((out / "importance.json").read_text(encoding="utf-8"))
    assert summary["failed"] == 0 and summary["plan_status"] == "given plan"
    answered = t["replacement_cost_wan"].notna() | t["irreplaceable"]
    illegal = t["decided_by"].astype(str).str.startswith("illegal")
    assert (answered | illegal).all()  # every vacated plot is ranked


def test_known_plans_close_questions_without_changing_answers(tmp_path: Path) -> None:
    """Plans handed in (a portfolio) only tighten upper bounds: answers stay within the gap of
    brute force, and no more solves (neighbourhood or full) are needed than without them."""
    gap, fewer = 0.01, 0
    for seed in range(12):
        inst, s, path = case(seed, False, tmp_path)
        obj, full = feasible_plans(inst, s)
        if len(obj) < 4:
            continue
        bad = np.zeros(inst.num_plots, dtype=np.int8)  # misses the targets: must be ignored
        plain = plot_importance(path, s, inst=inst, gap=gap)
        seeded = plot_importance(path, s, inst=inst, gap=gap, known=[bad, *full[1:4]])
        def solves(rep) -> int:  # questions that needed a neighbourhood or a full re-solve
            return rep.summary["questions"] - rep.summary["decided_by_screen"]

        assert solves(seeded) <= solves(plain)
        fewer += solves(seeded) < solves(plain)
        pos = {pid: i for i, pid in enumerate(inst.plots["plot_id"].to_numpy())}
        for _, r in seeded.table.iterrows():
            truth = brute_replacement(obj, full, pos[r["plot_id"]], False)
            if truth is None:
                assert r["irreplaceable"]
                continue
            base = seeded.summary["objective"] - obj[0]
            tol = gap * (obj[0] + truth) + 1e-6
            assert truth - tol <= r["replacement_cost_wan"] + base <= truth + tol
    assert fewer >= 1
