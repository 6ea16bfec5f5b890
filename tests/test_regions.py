"""Neighbourhoods that are parts of a cluster (optimizer/blocks/neighbourhood.py): on small grids,
every choice on a region's free plots that the region's sub-rule accepts keeps the whole plan
rule-abiding, and the other way round (enumeration, checked with networkx); without the freezing
step the sub-rule accepts plans that break the rule; regions are connected parts of one cluster;
and lns with tiny regions still reaches the brute-force optimum."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

import optimizer.blocks.decompose as decompose
import tests.test_contiguous_solve as whole
import tests.test_lns as lns_tests
from optimizer.blocks.cuts import FarmlandGraph, forest_graph, priority_tier
from optimizer.blocks.neighbourhood import (
    free_region,
    free_regions,
    region_rule,
    region_units,
    solve_sub,
)
from optimizer.blocks.rule import Rule, RulePart
from optimizer.model.kpi import FARMLAND, FOREST
from solvers.model import ArrayModel

MIN = 100.0


def grid(rows: int, cols: int, holes: np.ndarray | None = None) -> sp.csr_matrix:
    g = nx.grid_2d_graph(rows, cols)
    a = nx.to_scipy_sparse_array(g, nodelist=sorted(g.nodes), format="csr")
    adj = sp.csr_matrix(a)
    if holes is not None:  # cut the edges of these nodes (they stay, isolated)
        keep = sp.diags((~holes).astype(float))
        adj = sp.csr_matrix(keep @ adj @ keep)
        adj.eliminate_zeros()
    return adj


def make_rule(seed: int, rows: int = 3, cols: int = 4, forest: bool = True) -> Rule:
    """Farmland (min 100 mu), its priority tier (min 150 mu) and, optionally, forest connectivity
    on a grid; columns: f = node, g = n + node."""
    rng = np.random.default_rng(seed)
    adj = grid(rows, cols)
    n = adj.shape[0]
    area = rng.uniform(20, 80, n)
    root = rng.random(n) < 0.15
    g = FarmlandGraph(adj, area, root, MIN, priority=(rng.random(n) < 0.5).astype(float),
                      big_tier=150.0)
    every = np.arange(n)
    parts = [RulePart("farmland", g, every, every, FARMLAND)]
    tier, plots = priority_tier(g)
    parts.append(RulePart("farmland_tier", tier, every[plots], plots, FARMLAND))
    if forest:
        parts.append(RulePart("forest", forest_graph(adj, area, rng.random(n) < 0.3),
                              n + every, every, FOREST))
    return Rule(parts)


def nx_admissible(rule: Rule, x: np.ndarray) -> bool:
    """The rule checked independently: every networkx component of each part's chosen plots has
    area >= min_size or holds a root."""
    for p in rule.parts:
        g = nx.from_scipy_sparse_array(p.graph.adj)
        chosen = np.flatnonzero(x[p.cols] > 0.5)
        for comp in nx.connected_components(g.subgraph(chosen.tolist())):
            c = list(comp)
            if not p.graph.root[c].any() and p.graph.area[c].sum() < p.graph.min_size * (1 - 1e-9):
                return False
    return True


def random_plan(rule: Rule, n: int, rng: np.random.Generator, forest: bool) -> np.ndarray:
    """A random rule-abiding plan: random uses, then blocks that break the rule dropped until
    none does."""
    use = rng.choice(3 if forest else 2, n, p=[0.3, 0.5, 0.2] if forest else [0.3, 0.7])
    x = np.concatenate([use == 1, use == 2]).astype(float)
    while not rule.admissible(x):
        for action, off in ((FARMLAND, 0), (FOREST, n)):
            x[off + np.flatnonzero(rule.violating(x, action, n))] = 0.0
    return x


def choices(x: np.ndarray, free: np.ndarray, n: int, forest: bool):
    """Every plan that agrees with x outside `free`."""
    for uses in itertools.product(range(3 if forest else 2), repeat=len(free)):
        y = x.copy()
        u = np.array(uses, dtype=int)
        y[free], y[n + free] = (u == 1), (u == 2)
        yield y


def exactness(seed: int, forest: bool, freeze: bool) -> tuple[int, int]:
    """(whole plans checked, plans the sub-rule accepts although the whole plan breaks the rule);
    asserts every plan the sub-rule accepts is rule-abiding (with freezing) and vice versa."""
    rng = np.random.default_rng(seed)
    rule = make_rule(seed, forest=forest)
    n = rule.parts[0].graph.n
    x = random_plan(rule, n, rng, forest)
    assert rule.admissible(x) and nx_admissible(rule, x)
    region = np.sort(rng.choice(n, size=int(rng.integers(3, 7)), replace=False))
    free = free_region(rule, x, region, n) if freeze else region
    assert np.isin(free, region).all()
    cols = np.concatenate([free, n + free])
    sub = region_rule(rule, cols, 2 * n, x)
    checked = wrong = 0
    for y in choices(x, free, n, forest):
        sub_ok, whole_ok = sub.admissible(y[cols]), rule.admissible(y)
        checked += 1
        if freeze:
            assert sub_ok == whole_ok, (seed, free, y)
            if sub_ok:
                assert nx_admissible(rule, y), (seed, free, y)
        wrong += sub_ok and not whole_ok
    return checked, wrong


def test_region_sub_rule_is_exact_after_freezing() -> None:
    """Farmland + priority tier, and with forest connectivity: over random plans and regions,
    the sub-rule accepts exactly the choices that keep the whole plan rule-abiding."""
    total = 0
    for seed in range(40):
        total += exactness(seed, forest=False, freeze=True)[0]
        total += exactness(seed, forest=True, freeze=True)[0]
    assert total > 5_000


def test_without_freezing_the_sub_rule_accepts_rule_breaking_plans() -> None:
    """A block a-b-c of 3 x 40 mu (no root, min 100): with R = {a, b} unfrozen, b is next to the
    fixed chosen c and would become a root, so choosing nothing on R passes the sub-rule and
    leaves c alone at 40 mu; the freezing frees nothing here. On random grids too the unfrozen
    sub-rule accepts rule-breaking plans."""
    adj = grid(1, 3)
    g = FarmlandGraph(adj, np.full(3, 40.0), np.zeros(3, bool), MIN)
    every = np.arange(3)
    rule = Rule([RulePart("farmland", g, every, every, FARMLAND)])
    x = np.ones(3)
    assert rule.admissible(x)
    region = np.array([0, 1])
    sub = region_rule(rule, region, 3, x)
    y = np.array([0.0, 0.0, 1.0])
    assert sub.admissible(y[region]) and not rule.admissible(y)
    assert free_region(rule, x, region, 3).size == 0
    # c rooted: its part stands alone, so a and b stay free, and b is a root of the sub-rule
    g2 = FarmlandGraph(adj, np.full(3, 40.0), np.array([False, False, True]), MIN)
    rule2 = Rule([RulePart("farmland", g2, every, every, FARMLAND)])
    assert free_region(rule2, x, region, 3).tolist() == [0, 1]
    assert region_rule(rule2, region, 3, x).parts[0].graph.root.tolist() == [False, True]
    wrong = sum(exactness(seed, forest=True, freeze=False)[1] for seed in range(40))
    assert wrong > 0


def test_groups_solved_together_stay_apart_and_sound() -> None:
    """Two adjacent regions freed at once: no plot of the second touches the first, and every
    pair of choices each group's sub-rule accepts keeps the whole plan rule-abiding."""
    checked = 0
    for seed in range(15):
        rng = np.random.default_rng(100 + seed)
        rule = make_rule(100 + seed, 3, 4, forest=False)
        n = rule.parts[0].graph.n
        x = random_plan(rule, n, rng, False)
        perm = rng.permutation(n)
        groups = free_regions(rule, x, [np.sort(perm[:5]), np.sort(perm[5:10])],
                              rule.parts[0].graph.adj, n)
        a, b = groups
        assert not rule.parts[0].graph.adj[a][:, b].nnz
        subs = [(np.concatenate([g, n + g]), region_rule(rule, np.concatenate([g, n + g]),
                                                         2 * n, x)) for g in groups]
        both = np.concatenate(groups)
        for y in choices(x, both, n, False):
            if all(s.admissible(y[c]) for c, s in subs):
                assert rule.admissible(y) and nx_admissible(rule, y), (seed, groups, y)
                checked += 1
    assert checked > 50


def test_region_units_are_connected_parts_of_one_cluster() -> None:
    rng = np.random.default_rng(3)
    holes = rng.random(100) < 0.15
    adj = grid(10, 10, holes)
    g = FarmlandGraph(adj, np.ones(100), np.zeros(100, bool))
    size = 12
    unit = region_units(g, size, rng)
    nxg = nx.from_scipy_sparse_array(adj)
    plots = np.bincount(g.comp)
    assert plots.max() > size  # the test is about cutting a big cluster
    for u in np.unique(unit):
        members = np.flatnonzero(unit == u)
        assert len(np.unique(g.comp[members])) == 1
        assert nx.is_connected(nxg.subgraph(members.tolist()))
    for c in range(len(plots)):
        cells = np.unique(unit[g.comp == c])
        assert len(cells) == (1 if plots[c] <= size else int(np.ceil(2 * plots[c] / size)))
    assert not np.array_equal(unit, region_units(g, size, rng))  # borders move between calls
    kept = region_units(g, size, rng, whole=int(plots.max()))  # no cluster is cut
    assert np.array_equal(np.unique(kept, return_inverse=True)[1], g.comp)


def test_lns_with_tiny_regions_reaches_the_brute_force_optimum(monkeypatch) -> None:
    """Neighbourhoods of 2 plots cut every cluster into regions: each improved region, put into
    the plan alone, keeps the whole plan rule-abiding (networkx check), some regions are frozen
    in part, and lns still ends at the brute-force optimum."""
    monkeypatch.setattr(decompose, "GROUP_PLOTS", 2)
    monkeypatch.setattr(decompose, "REGION_PLOTS", 2)
    monkeypatch.setattr(decompose, "SPLIT_FROM", 2)
    seen = {"subs": 0, "frozen": 0}
    made = decompose.sub_problems
    cut = decompose.free_regions

    def freeing(rule, x, groups, adj, n):
        out = cut(rule, x, groups, adj, n)
        seen["frozen"] += sum(len(a) - len(b) for a, b in zip(groups, out, strict=True))
        return out

    def checked(model, rule, x, groups, *args, **kw):
        subs = made(model, rule, x, groups, *args, **kw)
        for sub in subs:
            found, _ = solve_sub(sub)
            if found is not None:
                y = x.copy()
                y[sub.cols] = found
                assert rule.admissible(y) and nx_admissible(rule, y)
                seen["subs"] += 1
        return subs

    monkeypatch.setattr(decompose, "sub_problems", checked)
    monkeypatch.setattr(decompose, "free_regions", freeing)
    lns_tests.test_lns_reaches_the_brute_force_optimum()
    lns_tests.test_lns_with_forest_connectivity()
    assert seen["subs"] > 0 and seen["frozen"] > 0, seen


def worst_plans_with_lp(seeds: range) -> Iterator[tuple[int, ArrayModel, Rule, int, np.ndarray,
                                                        np.ndarray, float]]:
    """Per random case with >= 2 rule-abiding plans: (seed, model, rule, number of candidates,
    the WORST rule-abiding plan (enumerated) as a model vector, the LP point, the enumerated
    optimum)."""
    from optimizer.blocks.rule import with_presolve
    from optimizer.blocks.search import _full_x, _lp
    from solvers import get_backend
    from solvers.base import SolveOptions
    from tests.random_instances import all_plans, plan_values, random_case, without_coupling_extras

    for seed in seeds:
        case = random_case(seed)
        case.scenario.contiguity.enabled = True
        s, pm, rule = without_coupling_extras(case.inst, case.scenario)
        plans = all_plans(case.inst)
        allowed, values = plan_values(case.inst, s, plans)
        if allowed.sum() < 2:
            continue
        model = with_presolve(pm.model, rule, pm)
        worst = np.flatnonzero(allowed)[np.argmax(values[allowed])]
        x = _full_x(model, pm, plans[worst])
        lp = get_backend("highs").solve(_lp(model), SolveOptions())
        if x is None or not lp.has_solution:
            continue
        yield seed, model, rule, len(pm.candidates), x, lp.x, float(values[allowed].min())


def test_restriction_neighbourhood_abides_keeps_every_row_and_never_beats_enumeration(
        monkeypatch) -> None:
    """A neighbourhood with a hint and no polish (a giant cluster's regions) is solved by the
    restriction alone: from the WORST rule-abiding plan (enumerated), the whole candidate set
    free and the LP point as hint, its answer abides by the rule (networkx), keeps every row,
    costs at least the enumerated optimum and, somewhere, improves; row generation never runs."""
    import optimizer.blocks.neighbourhood as nb

    def no_rowgen(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("row generation ran in a restriction-only neighbourhood")

    monkeypatch.setattr(nb, "_row_generation", no_rowgen)
    improved = checked = 0
    for seed, model, rule, nc, x, lp_x, best in worst_plans_with_lp(range(40)):
        cols = np.arange(2 * nc)
        sub = nb.sub_problems(model, rule, x, [cols], 2 * nc, 10.0, 0.0, lp_x, False)[0]
        found, _ = nb.solve_sub(sub)
        checked += 1
        if found is None:
            continue
        y = x.copy()
        y[sub.cols] = found
        assert rule.admissible(y) and nx_admissible(rule, y), seed
        assert model.max_violation(y) <= 1e-6, seed
        assert model.objective_value(y) < model.objective_value(x), seed
        assert model.objective_value(y) >= best - 1e-6 * max(1.0, abs(best)), seed
        improved += 1
    assert checked >= 10 and improved >= 3, (checked, improved)


def test_near_lp_neighbourhood_frees_only_where_plan_and_lp_differ() -> None:
    """From the WORST rule-abiding plan (enumerated) and the LP point, the neighbourhood of the
    plots where they differ returns a plan that abides by the rule (networkx), keeps every row,
    is never worse than the start nor better than the enumerated optimum, leaves every plot
    where plan and LP point agree as it was, and, somewhere, improves."""
    from optimizer.blocks.neighbourhood import Runner
    from solvers.base import SolveOptions

    improved = checked = 0
    with Runner(1) as runner:
        for seed, model, rule, nc, x, lp_x, best in worst_plans_with_lp(range(40)):
            y = decompose._near_lp(model, rule, x, lp_x, nc, SolveOptions(time_limit=10.0),
                                   time.perf_counter(), -np.inf, runner, [], lambda _m: None)
            checked += 1
            assert rule.admissible(y) and nx_admissible(rule, y), seed
            assert model.max_violation(y) <= 1e-6, seed
            agree = (np.abs(lp_x[:nc] - x[:nc]) <= 1e-6) & (np.abs(lp_x[nc:2 * nc] - x[nc:2 * nc])
                                                          <= 1e-6)
            assert np.array_equal(y[:nc][agree], x[:nc][agree]), seed
            assert np.array_equal(y[nc:2 * nc][agree], x[nc:2 * nc][agree]), seed
            assert model.objective_value(y) <= model.objective_value(x) + 1e-9, seed
            assert model.objective_value(y) >= best - 1e-6 * max(1.0, abs(best)), seed
            improved += model.objective_value(y) < model.objective_value(x) - 1e-6
    assert checked >= 10 and improved >= 3, (checked, improved)


def test_near_lp_neighbourhood_skipped_once_the_bound_proves_the_plan(monkeypatch) -> None:
    """Every cluster cut into regions (so every case takes the giant-cluster path): where the
    plan that the region neighbourhoods hand on is proven by the bound (a loose mip_gap), the
    near-LP neighbourhood does not run (it can only spend time there); where it is not proven,
    it runs."""
    import copy

    from optimizer.plan.solve import solve_plan
    from solvers.result import relative_gap

    monkeypatch.setattr(decompose, "GROUP_PLOTS", 2)
    monkeypatch.setattr(decompose, "REGION_PLOTS", 2)
    monkeypatch.setattr(decompose, "SPLIT_FROM", 2)
    calls: list[list] = []
    improve, near = decompose._improve, decompose._near_lp

    inside = [False]  # the near-LP passes within the region phase (at its start) don't count

    def improving(model, rule, x, x_lp, nc, opts, t0, bound, *rest):  # type: ignore[no-untyped-def]
        inside[0] = True
        try:
            y = improve(model, rule, x, x_lp, nc, opts, t0, bound, *rest)
        finally:
            inside[0] = False
        gap = relative_gap(model.objective_value(y), bound)
        calls.append([gap is not None and gap <= opts.mip_gap])
        return y

    def nearing(*args):  # type: ignore[no-untyped-def]
        rounds = args[9]
        before = len(rounds)
        y = near(*args)
        if len(rounds) > before and not inside[0]:  # its neighbourhood was solved
            calls[-1].append("near")
        return y

    monkeypatch.setattr(decompose, "_improve", improving)
    monkeypatch.setattr(decompose, "_near_lp", nearing)
    for inst, s0, best, _ in whole.CASES:
        if best is None:
            continue
        for gap in (0.9, 0.0):
            s = copy.deepcopy(s0)
            s.contiguity.method, s.solver.mip_gap = "lns", gap
            solve_plan(inst, s, backend="highs", elastic=False)
    proven = [c for c in calls if c[0]]
    open_ = [c for c in calls if not c[0]]
    assert proven and open_, calls
    assert not any("near" in c for c in proven), calls
    assert any("near" in c for c in open_), calls



def test_the_neighbourhoods_stop_at_the_share_they_are_given(monkeypatch) -> None:
    """`_improve(..., until)`: with a time limit, no neighbourhood runs past `until` of it (0:
    the plan comes back untouched, no round), while the phase's own share improves worst plans
    somewhere (giant-cluster path: every cluster cut into regions)."""
    from optimizer.blocks.neighbourhood import Runner
    from solvers.base import SolveOptions

    monkeypatch.setattr(decompose, "SPLIT_FROM", 2)
    improved = checked = 0
    with Runner(1) as runner:
        for _seed, model, rule, nc, x, lp_x, _best in worst_plans_with_lp(range(20)):
            opts = SolveOptions(time_limit=20.0)
            rounds: list[dict] = []
            y = decompose._improve(model, rule, x, lp_x, nc, opts, time.perf_counter(), -np.inf,
                                   runner, rounds, lambda _m: None, 0.0)
            assert np.array_equal(y, x) and not rounds
            z = decompose._improve(model, rule, x, lp_x, nc, opts, time.perf_counter(), -np.inf,
                                   runner, rounds, lambda _m: None)
            improved += model.objective_value(z) < model.objective_value(x) - 1e-6
            checked += 1
    assert checked >= 5 and improved >= 2, (checked, improved)


def test_near_lp_passes_open_the_region_phase_and_keep_to_its_share(monkeypatch) -> None:
    """`_improve(..., near=[(point, name)])` on the giant-cluster path: the near-LP
    neighbourhood at that point runs first (before any region round), once per NEAR_LP_EVERY
    seconds (here longer than the phase: once), within what is left of the phase's share; the
    plan abides by the rule, keeps every row and is never worse; without `near`, none runs."""
    from optimizer.blocks.neighbourhood import Runner
    from solvers.base import SolveOptions

    monkeypatch.setattr(decompose, "SPLIT_FROM", 2)
    monkeypatch.setattr(decompose, "NEAR_LP_EVERY", 1e9)
    limits: list[float] = []
    subs = decompose.sub_problems

    def recording(model, rule, x, groups, n, time_limit, *rest, **kw):  # type: ignore[no-untyped-def]
        limits.append(time_limit)
        return subs(model, rule, x, groups, n, time_limit, *rest, **kw)

    monkeypatch.setattr(decompose, "sub_problems", recording)
    checked = 0
    with Runner(1) as runner:
        for seed, model, rule, nc, x, lp_x, _best in worst_plans_with_lp(range(20)):
            opts = SolveOptions(time_limit=4.0)
            rounds: list[dict] = []
            t0 = time.perf_counter()
            y = decompose._improve(model, rule, x, lp_x, nc, opts, t0, -np.inf, runner, rounds,
                                   lambda _m: None, 1.0, [(lp_x, "the LP point")])
            phases = [r["phase"] for r in rounds]
            assert phases.count("near_lp") == 1 and phases[0] == "near_lp", (seed, phases)
            assert rounds[0]["point"] == "the LP point"
            assert rule.admissible(y) and nx_admissible(rule, y), seed
            assert model.max_violation(y) <= 1e-6, seed
            assert model.objective_value(y) <= model.objective_value(x) + 1e-9, seed
            share = decompose.LNS_REGION_SHARE * opts.time_limit  # the phase's end
            assert limits[0] <= share + 1e-9, (seed, limits)
            limits.clear()
            rounds = []
            decompose._improve(model, rule, x, lp_x, nc, opts, time.perf_counter(), -np.inf,
                               runner, rounds, lambda _m: None, 1.0)
            assert all(r["phase"] == "lns" for r in rounds), seed
            checked += 1
    assert checked >= 5, checked


def test_priced_search_gives_a_rule_abiding_plan_that_keeps_every_row_and_never_beats_enumeration(
        monkeypatch) -> None:
    """`_priced` (every cluster of more than 1 plot a giant one here): from the worst enumerated
    plan, the giant clusters' Lagrangian problem searched and its solution put to the master;
    the plan abides by the rule (networkx), keeps every row, is never worse than the start nor
    better than the enumerated optimum, and improves on several cases."""
    from optimizer.blocks.master.bound import lagrangian_bound
    from optimizer.blocks.master.partition import partition
    from optimizer.blocks.neighbourhood import Runner
    from optimizer.blocks.search import _lp
    from solvers import get_backend
    from solvers.base import SolveOptions

    monkeypatch.setattr(decompose, "SPLIT_FROM", 1)
    checked = improved = 0
    with Runner(1) as runner:
        for seed, model, rule, nc, x, _lp_x, best in worst_plans_with_lp(range(30)):
            lp = get_backend("highs").solve(_lp(model), SolveOptions())
            part = partition(model, rule, nc)
            lag = lagrangian_bound(model, rule, part, lp.row_dual[part.coupling], time_limit=None)
            rounds: list[dict] = []
            opts = SolveOptions(time_limit=2.0)
            y = decompose._priced(model, rule, nc, x, lag, [lp.row_dual], opts,
                                  time.perf_counter(), -np.inf, runner, rounds, lambda _m: None)
            assert [r["phase"] for r in rounds] == ["priced"], seed
            assert rule.admissible(y) and nx_admissible(rule, y), seed
            assert model.max_violation(y) <= 1e-6, seed
            obj, start = model.objective_value(y), model.objective_value(x)
            tol = 1e-6 * max(1.0, abs(best))
            assert best - tol <= obj <= start + tol, (seed, best, obj, start)
            improved += obj < start - tol
            checked += 1
    assert checked >= 5 and improved >= 2, (checked, improved)


def test_clusters_problem_is_the_lagrangian_problem_of_those_clusters() -> None:
    """`clusters_problem` on all clusters at once, for every enumerated plan: the plan's part
    keeps its rows and abides by its rule exactly when the plan abides by the whole rule, and
    costs what the plan's plot columns cost under π (c x - π A x, computed here directly)."""
    from optimizer.blocks.master.bound import clusters_problem, signed
    from optimizer.blocks.master.partition import partition
    from optimizer.blocks.rule import with_presolve
    from optimizer.blocks.search import _full_x, _lp
    from solvers import get_backend
    from solvers.base import SolveOptions
    from tests.random_instances import all_plans, plan_values, random_case, without_coupling_extras

    checked = 0
    for seed in range(12):
        case = random_case(seed)
        case.scenario.contiguity.enabled = True
        s, pm, rule = without_coupling_extras(case.inst, case.scenario)
        model = with_presolve(pm.model, rule, pm)
        nc = len(pm.candidates)
        part = partition(model, rule, nc)
        lp = get_backend("highs").solve(_lp(model), SolveOptions())
        if not lp.has_solution:
            continue
        pi = lp.row_dual[part.coupling]
        sub, sub_rule, cols = clusters_problem(model, rule, part, pi, np.arange(part.k))
        assert np.array_equal(cols, np.arange(2 * nc))
        p = signed(model, part, pi)
        A = model.A.tocsr()[part.coupling][:, cols]
        plans = all_plans(case.inst)
        allowed, _values = plan_values(case.inst, s, plans)
        for k, plan in enumerate(plans):
            x = _full_x(model, pm, plan)
            if x is None:
                continue
            xc = x[cols]
            assert sub_rule.admissible(xc) == nx_admissible(rule, x), seed
            if allowed[k]:
                assert sub.max_violation(xc) <= 1e-6, seed
            assert sub.objective_value(xc) == pytest.approx(
                model.c[cols] @ xc - p @ (A @ xc), abs=1e-6), seed
        checked += 1
    assert checked >= 5, checked
