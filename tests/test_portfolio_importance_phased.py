"""Portfolio and importance on five-year schedules ([phasing]) against brute force.

Truth: `schedules` (tests/test_phasing.py) enumerates every (action, year) choice per candidate
and restates every per-year rule in plain numpy (with the block rule at every year end when it
is on). The best schedule of each end state is found there by brute force, not by a solve.
- portfolio: the k plans equal the greedy sequence over end states: sort the end states (action
  per candidate at the end of the period) by their best schedule's objective, keep one if it is
  within the gap of the best and its VACATED SET is at weighted-Jaccard distance >= delta (by
  area) from every one kept before; two schedules of the same set are the same plan;
- importance: the replacement cost of each plot vacated by the end equals the best schedule that
  keeps it in every year (or, for farmland plots, never makes it farmland) minus the optimum;
  irreplaceable exactly when no feasible schedule keeps it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer.batch.importance import plot_importance
from optimizer.batch.portfolio import run_portfolio
from optimizer.plan.check import check_actions
from tests.conftest import generated_instance
from tests.test_phasing import phased_case, schedules

SHAPES = ((2, 3, 3), (2, 4, 2))  # rows, cols, years


def case(seed: int, shape: tuple[int, int, int], rule: bool, tmp_path: Path):
    """phased_case with looser shares and budgets, so most seeds have several end states."""
    inst, s = phased_case(seed, *shape, loose=0.5)
    t = s.targets
    t.central_priority_share, t.plain_priority_share, t.central_priority_tolerance = 0.3, 0.2, 0.3
    s.budget.total_wan *= 1.5
    if isinstance(s.phasing.annual_budget_wan, list):
        s.phasing.annual_budget_wan = [1.5 * b for b in s.phasing.annual_budget_wan]
    s.contiguity.enabled = rule
    s.contiguity.min_block_mu = 18.0
    s.solver.mip_gap = 0.0
    path = tmp_path / f"inst{seed}{shape}.gpkg"  # only fingerprinted; the instance is handed over
    path.write_bytes(f"phased grid {seed} {shape}".encode())
    return inst, s, path


def truth(inst, s):
    """(feasible, objective, end action per candidate, year index per candidate, candidates,
    option code per candidate) of every schedule."""
    ok, obj, act, year, cand = schedules(inst, s, 18.0 if s.contiguity.enabled else None)
    return ok, obj, act, year, cand


def schedule_index(plan_actions, plan_years, cand, first_year: int, T: int) -> int:
    """Position of a plan in the enumeration (itertools.product, first candidate most
    significant; option 0 keep, 1 + 2k farmland in year k, 2 + 2k forest in year k)."""
    a, y = plan_actions[cand], plan_years[cand] - first_year
    code = np.where(a == 0, 0, np.where(a == 1, 1 + 2 * y, 2 + 2 * y))
    idx = 0
    for c in code:
        idx = idx * (1 + 2 * T) + int(c)
    return idx


def best_end_states(ok, obj, act):
    """Index of the best schedule of each feasible end state, sorted by objective."""
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(obj[idx], kind="stable")]
    seen: set[tuple] = set()
    out = []
    for i in idx:
        key = tuple(act[i])
        if key not in seen:
            seen.add(key)
            out.append(i)
    return np.array(out, dtype=int)


def jaccard(area, a, b) -> float:
    va, vb = a > 0, b > 0
    union = area[va | vb].sum()
    return float(area[va ^ vb].sum() / union) if union > 0 else 0.0


@pytest.mark.parametrize("rule", [False, True])
def test_phased_portfolio_is_the_k_best_distinct_end_states(rule: bool, tmp_path: Path) -> None:
    k, gap, delta = 3, 0.3, 0.25
    compared = 0
    for shape in SHAPES:
        T = shape[2]
        for seed in range(12):
            inst, s, path = case(seed, shape, rule, tmp_path)
            ok, obj, act, year, cand = truth(inst, s)
            if not ok.any():
                continue
            area = inst.plots["area_mu"].to_numpy()[cand]
            best = best_end_states(ok, obj, act)
            picked: list[int] = []
            for j in best:
                if obj[j] > obj[best[0]] * (1 + gap) + 1e-6 or len(picked) == k:
                    break
                if all(jaccard(area, act[j], act[p]) >= delta for p in picked):
                    picked.append(j)
            out = tmp_path / f"pf{seed}{shape}{rule}"
            rep = run_portfolio(path, s, out, k=k, gap=gap, diversity=delta, inst=inst)
            assert len(rep.plans) == len(picked), (seed, shape)
            got = []
            for i, p in enumerate(rep.plans):
                assert p.years is not None and p.all_met, (seed, shape)
                assert not check_actions(inst, s, p.actions, years=p.years).problems()
                j = schedule_index(p.actions, p.years, cand, s.phasing.first_year, T)
                assert ok[j], (seed, shape, i)  # brute force agrees it is a feasible schedule
                got.append(obj[j])
                assert p.objective == pytest.approx(obj[j], rel=1e-6, abs=1e-4)
                for q in rep.plans[:i]:
                    assert jaccard(area, p.actions[cand], q.actions[cand]) >= delta - 1e-9
            assert got == pytest.approx(list(obj[picked]), rel=1e-6, abs=1e-4), (seed, shape)
            # selection frequency and the mean vacating year, counted by hand
            freq = rep.frequency.set_index("plot_id")
            ids = inst.plots["plot_id"].to_numpy()
            V = np.stack([p.actions > 0 for p in rep.plans])
            Y = np.stack([p.years for p in rep.plans])
            for i in cand:
                assert freq.loc[ids[i], "vacated"] == V[:, i].sum()
                want = Y[V[:, i], i].mean() if V[:, i].any() else np.nan
                assert freq.loc[ids[i], "mean_year"] == pytest.approx(want, abs=0.01, nan_ok=True)
            folders = sorted(f for f in out.iterdir() if (f / "done.json").is_file())
            assert len(folders) == len(rep.plans)
            for f in folders:
                plan = pd.read_csv(f / "plan.csv", encoding="utf-8-sig")
                assert "year" in plan.columns and (f / "annual_plan.csv").is_file()
            if len(picked) >= 2 and not compared:  # a rerun reuses the schedules, years too
                again = run_portfolio(path, s, out, k=k, gap=gap, diversity=delta, inst=inst)
                assert again.reused == len(rep.plans) and not again.plans
                pd.testing.assert_frame_equal(again.frequency, rep.frequency)
            compared += len(picked) >= 2
    assert compared >= 4  # cases with at least two distinct end states, or the test proves little


@pytest.mark.parametrize(("rule", "gap"), [(False, 0.0), (True, 0.0), (False, 0.3)])
def test_phased_replacement_costs_equal_brute_force(rule: bool, gap: float,
                                                    tmp_path: Path) -> None:
    seen = {"answers": 0, "irreplaceable": 0, "farmland": 0, "screen": 0}
    for shape in SHAPES:
        for seed in range(12):
            inst, s, path = case(seed, shape, rule, tmp_path)
            ok, obj, act, year, cand = truth(inst, s)
            if not ok.any():
                continue
            z = float(obj[ok].min())
            rep = plot_importance(path, s, inst=inst, gap=gap)
            assert rep.summary["failed"] == 0
            pos = {pid: j for j, pid in enumerate(inst.plots["plot_id"].to_numpy()[cand])}
            base = rep.summary["objective"] - z  # the plan examined is optimal within the gap
            assert -1e-4 <= base <= gap * rep.summary["objective"] + 1e-4
            for _, r in rep.table.iterrows():
                j = pos[r["plot_id"]]
                assert r["year"] >= s.phasing.first_year
                for prefix, farm in (("", False), ("farmland_", True)):
                    if farm and r["action"] != "farmland":
                        continue
                    if not farm and r["decided_by"].startswith("illegal"):
                        continue  # must be vacated: no question asked
                    allowed = ok & ((act[:, j] != 1) if farm else (act[:, j] == 0))
                    seen["answers"] += 1
                    seen["farmland"] += farm
                    seen["screen"] += r[f"{prefix}decided_by"] == "screen"
                    if not allowed.any():
                        assert r[f"{prefix}irreplaceable"], (seed, shape, r["plot_id"])
                        seen["irreplaceable"] += 1
                        continue
                    assert not r[f"{prefix}irreplaceable"], (seed, shape, r["plot_id"])
                    want = float(obj[allowed].min()) - z
                    # the answer is a schedule's value U with U - L <= gap * U, L <= truth
                    got = r[f"{prefix}replacement_cost_wan"] + base
                    assert want - 1e-4 <= got <= want + gap * (z + got) + 1e-4, (
                        seed, shape, r["plot_id"], farm)
                    assert r[f"{prefix}lower_bound_wan"] + base <= want + 1e-4
    assert seen["answers"] >= 20 and seen["farmland"] >= 3, seen
    assert seen["irreplaceable"] >= 1, seen
    if gap > 0:
        assert seen["screen"] >= 1, seen  # bounds decide some questions without a re-solve


def as_plan(inst, s, act, year, cand, i):
    """Per-plot actions and calendar years of enumerated schedule i."""
    a = np.zeros(inst.num_plots, dtype=np.int8)
    y = np.zeros(inst.num_plots, dtype=np.int32)
    a[cand] = act[i]
    y[cand] = np.where(act[i] > 0, s.phasing.first_year + year[i], 0)
    return a, y


def test_importance_of_a_given_schedule_and_known_schedules(tmp_path: Path) -> None:
    """--plan with a `year` column: costs are measured from that schedule's objective; known
    schedules (a portfolio) only tighten upper bounds; the same end state without its years is
    refused in one line."""
    from optimizer.batch.alternatives import AlternativesError

    checked = 0
    for seed, shape in [(seed, shape) for shape in SHAPES for seed in range(12)]:
        inst, s, path = case(seed, shape, False, tmp_path)
        ok, obj, act, year, cand = truth(inst, s)
        good = np.flatnonzero(ok)
        if len(good) < 4:
            continue
        good = good[np.argsort(obj[good], kind="stable")]
        a, y = as_plan(inst, s, act, year, cand, good[1])
        known = [as_plan(inst, s, act, year, cand, i) for i in good[2:5]]
        rep = plot_importance(path, s, inst=inst, gap=0.0, plan=a, plan_years=y,
                              known=[k[0] for k in known], known_years=[k[1] for k in known])
        assert rep.summary["objective"] == pytest.approx(obj[good[1]], rel=1e-9)
        pos = {pid: j for j, pid in enumerate(inst.plots["plot_id"].to_numpy()[cand])}
        for _, r in rep.table.iterrows():
            j = pos[r["plot_id"]]
            assert r["year"] == y[cand[j]]
            if r["decided_by"].startswith("illegal"):
                continue
            keep = ok & (act[:, j] == 0)
            if not keep.any():
                assert r["irreplaceable"]
                continue
            want = obj[keep].min() - obj[good[1]]
            assert r["replacement_cost_wan"] == pytest.approx(want, rel=1e-6, abs=1e-4)
            checked += 1
        with pytest.raises(AlternativesError, match=r"\[phasing\].*`year` column"):
            plot_importance(path, s, inst=inst, plan=a)
    assert checked >= 10


def test_a_plan_file_without_years_is_refused_in_one_line(tmp_path: Path) -> None:
    """importance --plan on a [phasing] scenario needs the plan's `year` column."""
    from typer.testing import CliRunner

    from optimizer.cli import app

    runner = CliRunner()
    inst = generated_instance(tmp_path / "cy.gpkg", 500)
    from instances.loader import load_instance

    ids = load_instance(inst).plots["plot_id"].astype(str)
    plan = tmp_path / "plan.csv"
    pd.DataFrame({"plot_id": ids, "action": "keep"}).to_csv(plan, index=False)
    example = Path(__file__).resolve().parents[1] / "examples" / "phased.toml"
    out = tmp_path / "imp"
    r = runner.invoke(app, ["importance", str(inst), "--scenario", str(example), "--out", str(out),
                            "--plan", str(plan)])
    assert r.exit_code == 1, r.output
    assert "missing column 'year'" in r.output and "Traceback" not in r.output, r.output
    assert not out.exists() or not any(out.iterdir())


def test_end_state_model_is_the_single_period_model_plus_end_state_rows(tmp_path: Path) -> None:
    """Stage 1 of the edited warm start: the base model's objective, columns and rows unchanged,
    then only rows on the end state (a caller's row kept, the time-expanded rows dropped)."""
    import copy

    import scipy.sparse as sp

    from optimizer.model.build import build_model
    from optimizer.model.phasing import build_phased
    from optimizer.plan.phased import end_state_model

    inst, s, _ = case(3, (2, 4, 2), True, tmp_path)
    single = copy.deepcopy(s)
    single.phasing.enabled = False
    base, pm = build_model(inst, single).model, build_phased(inst, s)
    row = np.zeros(pm.model.num_cols)
    row[:3] = 1.0
    edited = pm.model.add_rows(sp.csr_matrix(row), np.array([1.0]), np.array([np.inf]))
    from dataclasses import replace

    end = end_state_model(replace(pm, model=edited), base.c).model
    assert end.num_cols == base.num_cols
    assert np.array_equal(end.c, base.c)
    top = end.A[: base.num_rows]
    assert (top != base.A).nnz == 0
    assert np.array_equal(end.row_lower[: base.num_rows], base.row_lower)
    extra = end.A[base.num_rows:].toarray()
    assert extra.shape[0] >= 1 and np.array_equal(extra[-1], row[: base.num_cols])
    # every extra row is an end-state row of the time-expanded model, so the optimal schedule's
    # end state meets it
    ok, obj, act, year, cand = truth(inst, s)
    i = np.flatnonzero(ok)[np.argmin(obj[ok])]
    a, _ = as_plan(inst, s, act, year, cand, i)
    x = np.zeros(base.num_cols)
    x[: 2 * len(pm.candidates)] = pm.vector(a)
    ax = end.A[base.num_rows:-1] @ x
    assert (ax >= end.row_lower[base.num_rows:-1] - 1e-6).all()
    assert (ax <= end.row_upper[base.num_rows:-1] + 1e-6).all()
