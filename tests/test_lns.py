"""The constructed plan, the fix-and-optimise neighbourhoods and the decomposition method against
brute force on tiny instances: every plan abides by the rule and meets every target, its
objective is >= the optimum, its bound <= the optimum, and it is called optimal only when the
bound proves it. Plus: the restriction admits only rule-abiding plans (every subset of small
graphs), neighbourhoods solved together keep every row, and every solver step gets the time left.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace

import numpy as np
import scipy.sparse as sp

import optimizer.blocks.decompose as decompose
import tests.test_contiguous_solve as whole
from optimizer.blocks.construct import construct, restricted_model
from optimizer.blocks.cuts import FarmlandGraph
from optimizer.blocks.neighbourhood import sub_problems
from optimizer.blocks.rule import Rule, RulePart, farmland_rule, with_presolve
from optimizer.model.build import build_model
from optimizer.model.kpi import FARMLAND
from optimizer.plan.solve import solve_plan
from solvers.base import Backend, SolveOptions
from solvers.model import ArrayModel
from solvers.result import Result, Termination, relative_gap
from tests.random_instances import without_coupling_extras
from tests.test_contiguity_enumeration import Case, bits, make_cases, truth
from tests.test_contiguous_solve import CASES
from tests.test_model_bruteforce import plan_objective


def _reset() -> None:
    """The shared cases carry settings of the last test that used them."""
    for _, s, _, _ in CASES:
        s.compactness.weight, s.contiguity.forest_connected = 0.0, False


def test_lns_reaches_the_brute_force_optimum() -> None:
    _reset()
    whole.test_contiguous_optimum_matches_brute_force("highs", "lns")


def test_lns_with_isolation_penalty() -> None:
    _reset()
    whole.test_rule_with_isolation_penalty_matches_brute_force("highs", "lns")
    _reset()


def test_lns_with_forest_connectivity() -> None:
    _reset()
    whole.test_forest_connectivity_matches_brute_force("highs", "lns")


def test_restriction_admits_only_rule_abiding_plans() -> None:
    """Every 0/1 point of a small graph (all subsets, up to 20 plots) that the restriction's
    rows allow, with the best block columns (y_b = 1 iff all of b is chosen), abides by the
    rule (the bitmask truth of test_contiguity_enumeration); and the restriction allows plans
    beyond the empty one."""
    for case in make_cases() + _random_cases():
        g = FarmlandGraph(case.adj, case.area, case.root, case.min_size)
        n = g.n
        model = ArrayModel(c=np.ones(n), A=sp.csr_matrix((0, n)), row_lower=np.zeros(0),
                           row_upper=np.zeros(0), col_lower=np.zeros(n), col_upper=np.ones(n),
                           integrality=np.ones(n, bool))
        rule = Rule([RulePart("farmland", g, np.arange(n), np.arange(n), FARMLAND)])
        inner = restricted_model(model, rule)
        A = inner.A.tocsr()
        plots = [_block_plots(A, n, b) for b in range(inner.num_cols - n)]
        adm = truth(case.adj, case.area, case.root, case.min_size)
        for chunk in np.array_split(np.arange(1 << n, dtype=np.uint32), max(1, (1 << n) >> 15)):
            X = bits(chunk, n).astype(float)
            Y = np.stack([X[:, p].min(axis=1) for p in plots], axis=1) if plots else \
                np.zeros((len(chunk), 0))
            Z = np.hstack([X, Y])
            allowed = (np.asarray(A @ Z.T).T <= 1e-9).all(axis=1) & \
                (X <= inner.col_upper[:n] + 1e-9).all(axis=1)
            assert adm[chunk[allowed]].all(), case.name
        assert len(plots) or g.root.any(), case.name


def _random_cases() -> list[Case]:
    """Random graphs with odd cycles (grids are bipartite: no two neighbours share a layer)."""
    out = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        n = 12
        upper = np.triu(rng.random((n, n)) < 0.25, 1)
        adj = sp.csr_matrix((upper | upper.T).astype(float))
        root = np.zeros(n, bool)
        root[rng.choice(n, 2, replace=False)] = True
        # min_size 45: seed blocks everywhere; 1,000 and inf: no seed block, only the layers
        size = (45.0, 1000.0, np.inf)[seed % 3]
        out.append(Case(f"random{seed}", adj, rng.uniform(5, 30, n), root, size))
    return out


def _block_plots(A: sp.csr_matrix, n: int, b: int) -> list[int]:
    """Plots i of block b: the rows y_b - x_i <= 0 (the only rows with +1 on y_b)."""
    rows = np.flatnonzero(A[:, n + b].toarray().ravel() > 0)
    return [int(np.flatnonzero(A[r].toarray().ravel()[:n] < 0)[0]) for r in rows]


def test_constructed_plan_abides_and_costs_at_least_the_optimum() -> None:
    found = 0
    for inst, s0, best, _ in CASES:
        s, pm, rule = without_coupling_extras(inst, s0, forest=False)
        model = with_presolve(pm.model, rule, pm)
        built = construct(model, rule, SolveOptions(time_limit=20, mip_gap=0.0),
                          family_rows=pm.family_rows)
        if built.x is None:
            assert "target" in built.message
            continue
        assert best is not None, "a plan where brute force finds none"
        assert rule.admissible(built.x)
        assert model.max_violation(built.x) <= 1e-6
        act = pm.actions(built.x, inst.num_plots)
        assert plan_objective(inst, s, act) >= best - 1e-6
        found += 1
    assert found >= 8


def test_heuristic_plan_is_never_called_optimal_without_proof(monkeypatch) -> None:
    """With the final row generation cut off, the plan is the LNS plan against the LP bound."""
    def no_final(model, rule, backend, opts, t0, warm, say, repaired=None):
        from optimizer.blocks.search import ContiguousSolve
        return ContiguousSolve(Result("highs", Termination.TIME_LIMIT, False), model, "rowgen")

    monkeypatch.setattr(decompose, "_row_generation", no_final)
    labelled = 0
    for inst, s0, best, _ in CASES:
        s = copy.deepcopy(s0)
        s.compactness.weight, s.contiguity.forest_connected = 0.0, False
        s.contiguity.method, s.solver.mip_gap = "lns", 0.0
        plan = solve_plan(inst, s, backend="highs", elastic=False)
        r = plan.result
        if best is None:
            assert not r.has_solution
            continue
        if not r.has_solution:
            continue  # no constructed plan and no repair: allowed for a heuristic
        assert plan.all_met and not plan.violations
        assert plan_objective(inst, s, plan.actions) >= best - 1e-6
        assert r.bound is None or r.bound <= best + 1e-6
        if r.termination is Termination.OPTIMAL:
            assert relative_gap(r.objective, r.bound) <= 1e-9
            labelled += 1
        else:
            assert r.bound is None or r.objective > r.bound + 1e-9 * abs(r.objective)
    assert labelled < len(CASES)


def test_neighbourhoods_solved_together_keep_every_row() -> None:
    """Four components, two groups: any feasible assignment of each group's sub-model, taken
    together, is feasible for the whole model and abides by the rule."""
    rng = np.random.default_rng(3)
    pairs = [(0, 1), (2, 3), (4, 5), (6, 7)]  # four components of two plots
    adj = sp.lil_matrix((8, 8))
    for i, j in pairs:
        adj[i, j] = adj[j, i] = 1
    area = rng.uniform(20, 60, 8)
    graph = FarmlandGraph(adj.tocsr(), area, np.array([1, 0, 0, 0, 1, 0, 0, 0], bool), 70.0)
    nc = 8
    one = sp.hstack([sp.identity(nc), sp.identity(nc)])
    agg = sp.csr_matrix(np.vstack([np.concatenate([area, area]),  # reduction >= R
                                   np.concatenate([area * 3, area * 2])]))  # cost <= B
    A = sp.vstack([one, agg], format="csr")
    model = ArrayModel(c=rng.uniform(1, 5, 2 * nc), A=A,
                       row_lower=np.concatenate([np.zeros(nc), [120.0, -np.inf]]),
                       row_upper=np.concatenate([np.ones(nc), [np.inf, 2.2 * area.sum()]]),
                       col_lower=np.zeros(2 * nc), col_upper=np.ones(2 * nc),
                       integrality=np.ones(2 * nc, bool))
    rule = Rule([RulePart("farmland", graph, np.arange(nc), np.arange(nc), FARMLAND)])
    x = np.zeros(2 * nc)
    x[nc:] = 1.0  # everything to forest: reduction met, within budget, no farmland
    assert model.max_violation(x) == 0 and rule.admissible(x)
    groups = [np.array([0, 1, 2, 3]), np.array([4, 5, 6, 7])]
    subs = sub_problems(model, rule, x, [np.concatenate([g, nc + g]) for g in groups],
                        2 * nc, 1.0, 0.0)
    feasible = []
    for sub in subs:
        ok = []
        for point in itertools.product((0.0, 1.0), repeat=sub.model.num_cols):
            z = np.array(point)
            if sub.model.max_violation(z) <= 1e-9 and sub.rule.admissible(z):
                ok.append(z)
        assert ok
        feasible.append(ok)
    for z0, z1 in itertools.product(*feasible):
        y = x.copy()
        y[subs[0].cols], y[subs[1].cols] = z0, z1
        assert model.max_violation(y) <= 1e-9
        assert rule.admissible(y)


def test_every_solver_step_gets_the_time_left(monkeypatch) -> None:
    """A tiny budget is passed down to every solver call (construction, LP rounds, each
    neighbourhood, final row generation, elastic re-solve): no call may run past the limit by
    more than the least step."""
    from optimizer.blocks.search import MIN_STEP

    calls: list[tuple[float, float | None]] = []
    real = Backend.solve
    clock = {"t0": 0.0}

    def recording(self, model, options=None, **kw):
        import time
        calls.append((time.perf_counter() - clock["t0"], options.time_limit if options else None))
        return real(self, model, options, **kw)

    monkeypatch.setattr(Backend, "solve", recording)
    inst, s0, _, _ = CASES[3]
    budget = 0.8
    for method in ("lns", "rowgen"):
        s = copy.deepcopy(s0)
        s.compactness.weight, s.contiguity.forest_connected = 0.0, False
        s.contiguity.method = method
        calls.clear()
        import time
        clock["t0"] = time.perf_counter()
        solve_plan(inst, replace(s), backend="highs", time_limit=budget)
        assert calls, method
        for start, limit in calls:
            assert limit is not None, (method, calls)
            assert start + limit <= budget + MIN_STEP + 0.25, (method, start, limit, calls)


def _two_cluster_subs() -> list:
    """Sub-problems of a CASES instance with every cluster in one of two groups."""
    inst, s0, _, _ = CASES[3]
    s = copy.deepcopy(s0)
    s.compactness.weight, s.contiguity.forest_connected = 0.0, False
    pm = build_model(inst, s)
    rule = farmland_rule(inst, pm, s)
    model = with_presolve(pm.model, rule, pm)
    built = construct(model, rule, SolveOptions(time_limit=20))
    assert built.x is not None
    nc = len(pm.candidates)
    half = np.arange(nc) % 2 == 0  # not whole clusters: only the runners are compared here
    groups = [np.flatnonzero(half), np.flatnonzero(~half)]
    return sub_problems(model, rule, built.x, [np.concatenate([g, nc + g]) for g in groups],
                        2 * nc, 5.0, 0.0)


def test_runners_agree_in_process_pool_and_dask() -> None:
    from distributed import LocalCluster

    from optimizer.blocks.neighbourhood import Runner

    subs = _two_cluster_subs()
    with Runner(1) as r:
        here = r.map(subs)
    with Runner(2) as r:
        pool = r.map(subs)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, \
            Runner(scheduler=cluster.scheduler_address) as r:
        assert r.workers == 1
        dask = r.map(subs)
    for (a, _), (b, _), (c, _) in zip(here, pool, dask, strict=True):
        assert (a is None) == (b is None) == (c is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)


def test_auto_picks_lns_from_the_candidate_count(monkeypatch) -> None:
    import optimizer.plan.solve as solve

    inst, s0, best, _ = CASES[3]
    s = copy.deepcopy(s0)
    s.compactness.weight, s.contiguity.forest_connected = 0.0, False
    s.contiguity.method = "auto"
    assert solve_plan(inst, s, backend="highs", elastic=False).method == "rowgen"
    monkeypatch.setattr(solve, "AUTO_LNS_CANDIDATES", 1)
    plan = solve_plan(inst, s, backend="highs", elastic=False)
    assert plan.method == "lns"
    assert abs(plan_objective(inst, s, plan.actions) - best) <= 1e-6 * max(1.0, best)


def test_a_step_past_its_deadline_is_stopped_with_its_last_incumbent() -> None:
    """A child that ignores its limit (as HiGHS's root separation does) is stopped soon after
    it, and the last value it emitted comes back; one within its limit returns its result."""
    import time

    from optimizer.blocks.deadline import CHILD_MIN_COLS, run_with_deadline
    from tests.slow_step import slow as _slow  # a light module: the child imports it

    t = time.perf_counter()
    done, out, last = run_with_deadline(_slow, (60.0,), 5.0, CHILD_MIN_COLS)
    assert (done, out, last) == (False, None, "second")
    assert time.perf_counter() - t < 30.0  # stopped, not waited for (the child sleeps 60 s)
    assert run_with_deadline(_slow, (0.0,), 30.0, CHILD_MIN_COLS) == (True, "done", "second")
    assert run_with_deadline(_slow, (0.0,), 0.5, 10) == (True, "done", "second")  # in-process


def test_no_plan_names_the_targets_that_fail_together() -> None:
    named = 0
    for inst, s0, best, _ in CASES:
        if best is not None:
            continue
        s = copy.deepcopy(s0)
        s.compactness.weight, s.contiguity.forest_connected = 0.0, False
        s.contiguity.method = "lns"
        plan = solve_plan(inst, s, backend="highs", elastic=False)
        assert not plan.result.has_solution
        keys = [f.key for f in build_model(inst, s).families]
        named += "short by" in plan.result.message and any(
            k in plan.result.message for k in keys)
    assert named >= 2


def test_a_start_plan_stays_a_plan_of_the_restriction_and_restrict_into_improves() -> None:
    """construct(start=x): x (here the brute-force optimum, and the plain constructed plan) is a
    point of the restriction, so the plan found abides, meets every row and costs no more than
    x (and never less than the optimum); restrict_into (the final phase's repair around a
    rule-breaking relaxation optimum) keeps the same guarantees and improves some plans."""
    from optimizer.blocks.construct import _inner_point
    from optimizer.blocks.decompose import restrict_into
    from optimizer.blocks.search import plan_vector
    from solvers import get_backend

    improved = checked = 0
    for inst, s0, best, _ in CASES:
        if best is None:
            continue
        s = copy.deepcopy(s0)
        s.compactness.weight, s.contiguity.forest_connected = 0.0, False
        s.contiguity.method, s.solver.mip_gap = "rowgen", 0.0
        opt = solve_plan(inst, s, backend="highs", elastic=False)
        pm = build_model(inst, s)
        rule = farmland_rule(inst, pm, s)
        model = with_presolve(pm.model, rule, pm)
        x_opt = plan_vector(model, pm, opt.actions)
        assert x_opt is not None
        assert _inner_point(restricted_model(model, rule, x_opt), model, rule, x_opt) is not None
        built = construct(model, rule, SolveOptions(time_limit=20, mip_gap=0.0), start=x_opt)
        assert built.x is not None and rule.admissible(built.x)
        assert abs(plan_objective(inst, s, pm.actions(built.x, inst.num_plots)) - best) <= \
            1e-6 * max(1.0, abs(best))
        plain = construct(model, rule, SolveOptions(time_limit=20, mip_gap=0.0))
        if plain.x is None:
            continue
        free = get_backend("highs").solve(model, SolveOptions(time_limit=20, mip_gap=0.0))
        assert free.x is not None
        out = restrict_into(pm, rule, inst.num_plots, None, 0.0, None, free.x, model, plain.x)
        assert out is not None and rule.admissible(out)
        assert model.max_violation(out) <= 1e-6
        cost = plan_objective(inst, s, pm.actions(out, inst.num_plots))
        assert best - 1e-6 <= cost <= model.objective_value(plain.x) + 1e-6
        improved += cost < model.objective_value(plain.x) - 1e-6
        checked += 1
    assert checked >= 6 and improved >= 1, (checked, improved)  # 3 of 13 when written


def test_auto_lns_with_the_scip_final_phase_reaches_the_brute_force_optimum(monkeypatch) -> None:
    """Method "auto" on a large model: lns with SCIP branch-and-cut (and the restriction as its
    heuristic) as the final phase; the explicit lns keeps the back-end's own final phase."""
    import optimizer.plan.solve as solve

    assert decompose.scip_final("highs", "auto") and decompose.scip_final("scip", "lns")
    assert not decompose.scip_final("highs", "lns")
    monkeypatch.setattr(solve, "AUTO_LNS_CANDIDATES", 1)
    _reset()
    whole.test_contiguous_optimum_matches_brute_force("highs", "auto")
    _reset()
    whole.test_rule_with_isolation_penalty_matches_brute_force("highs", "auto")
    _reset()
    whole.test_forest_connectivity_matches_brute_force("highs", "auto")
    _reset()
