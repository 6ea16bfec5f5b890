"""Greedy farmland construction (optimizer/blocks/greedy.py) against brute force over all subsets.

Truth here is a per-plot flood fill on bitmasks (a different algorithm from the dynamic
programme in test_contiguity_enumeration.py) and networkx on larger grids. Quality factors were
measured on these seeded instances and are asserted with a margin: they are statements about
this instance family (4x4 grids, blocks of 2-4 plots, the lumpiest case), not a theorem.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from optimizer.blocks.cuts import FarmlandGraph
from optimizer.blocks.greedy import greedy_farmland


def grid(rows: int, cols: int) -> sp.csr_matrix:
    idx = np.arange(rows * cols).reshape(rows, cols)
    e = np.concatenate(
        [np.c_[idx[:, :-1].ravel(), idx[:, 1:].ravel()], np.c_[idx[:-1].ravel(), idx[1:].ravel()]]
    )
    A = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(rows * cols,) * 2)
    return (A + A.T).tocsr()


def subset_sums(values: np.ndarray) -> np.ndarray:
    """sums[m] = sum of values[i] over the bits i of every mask m (2^n entries)."""
    sums = np.zeros(1, dtype=np.float64)
    for v in values:  # doubling: masks with bit i = masks without it + v_i
        sums = np.concatenate([sums, sums + v])
    return sums


def brute_admissible(rows: int, cols: int, area: np.ndarray, root: np.ndarray, min_size: float,
                     eligible: np.ndarray) -> np.ndarray:
    """adm[m] for every mask on a rows x cols rook grid: within the eligible plots, every block
    has a root or min_size. Blocks by flood fill from each plot, grid moves as bit shifts."""
    n = rows * cols
    m = np.arange(1 << n, dtype=np.uint32)
    col = np.arange(n) % cols
    not_first = np.uint32(sum(1 << int(i) for i in np.flatnonzero(col != 0)))
    not_last = np.uint32(sum(1 << int(i) for i in np.flatnonzero(col != cols - 1)))
    c, one = np.uint32(cols), np.uint32(1)
    area_of = subset_sums(area)
    root_mask = np.uint32(sum(1 << int(i) for i in np.flatnonzero(root)))
    ok = np.ones(1 << n, dtype=bool)
    for i in range(n):
        comp = m & np.uint32(1 << i)
        while True:
            grown = comp | ((comp & not_last) << one) | ((comp & not_first) >> one)
            grown = (grown | (comp << c) | (comp >> c)) & m
            if np.array_equal(grown, comp):
                break
            comp = grown
        ok &= ~((comp != 0) & ((comp & root_mask) == 0) & (area_of[comp] < min_size))
    ineligible = np.uint32(sum(1 << int(i) for i in np.flatnonzero(~eligible)))
    return ok & ((m & ineligible) == 0)


def nx_admissible(adj: sp.csr_matrix, area: np.ndarray, root: np.ndarray, min_size: float,
                  chosen: np.ndarray) -> bool:
    G = nx.from_scipy_sparse_array(adj)
    H = G.subgraph(np.flatnonzero(chosen).tolist())
    return all(root[list(c)].any() or area[list(c)].sum() >= min_size
               for c in nx.connected_components(H))


@dataclass
class Instance:
    graph: FarmlandGraph
    eligible: np.ndarray
    cost: np.ndarray
    gain: np.ndarray
    need: float
    adm: np.ndarray  # brute-force admissible masks (eligible plots only)

    def cost_of(self) -> np.ndarray:
        return subset_sums(self.cost)

    def gain_of(self) -> np.ndarray:
        return subset_sums(self.gain)


def random_instance(rng: np.random.Generator) -> Instance:
    n = 16
    adj = grid(4, 4)
    area = rng.integers(10, 60, n).astype(float)
    min_size = float(rng.choice([60.0, 100.0, 150.0]))
    root = np.zeros(n, dtype=bool)
    root[rng.choice(n, rng.integers(0, 3), replace=False)] = True
    eligible = rng.random(n) < 0.85
    cost = np.round(rng.uniform(1, 10, n) * area, 3)
    share = np.where(rng.random(n) < 0.5, rng.random(n), rng.integers(0, 2, n))
    gain = np.round(area * share, 3)  # new farmland in the priority zones, mu
    need = float(gain.sum() * rng.uniform(0.1, 0.7))
    g = FarmlandGraph(adj, area, root, min_size)
    return Instance(g, eligible, cost, gain, need,
                    brute_admissible(4, 4, area, root, min_size, eligible))


@pytest.fixture(scope="module")
def instances() -> list[Instance]:
    rng = np.random.default_rng(11)
    return [random_instance(rng) for _ in range(80)]


def test_brute_force_matches_networkx() -> None:
    rng = np.random.default_rng(10)
    inst = random_instance(rng)
    g = inst.graph
    for mask in rng.integers(0, 1 << 16, 300):
        plan = ((mask >> np.arange(16)) & 1).astype(bool)
        want = nx_admissible(g.adj, g.area, g.root, g.min_size, plan)
        assert inst.adm[mask] == (want and not (plan & ~inst.eligible).any())


def admissible_mask(inst: Instance, plan: np.ndarray) -> bool:
    return bool(inst.adm[int(np.sum(plan.astype(np.int64) << np.arange(len(plan))))])


def test_without_budget_meets_every_reachable_target(instances: list[Instance]) -> None:
    """Guaranteed (see the module docstring): the target is met iff some admissible plan of
    eligible plots reaches it; the plan is admissible."""
    for inst in instances:
        plan = greedy_farmland(inst.graph, inst.eligible, inst.cost, inst.gain, inst.need)
        assert admissible_mask(inst, plan)
        reachable = (inst.adm & (inst.gain_of() >= inst.need - 1e-9)).any()
        assert (inst.gain[plan].sum() >= inst.need - 1e-9) == reachable


def test_cost_within_measured_factor_of_optimum(instances: list[Instance]) -> None:
    """Measured on these 80 instances: mean 1.011, worst 1.117, optimal in 76%."""
    ratios = []
    for inst in instances:
        feasible = inst.adm & (inst.gain_of() >= inst.need - 1e-9)
        if not feasible.any():
            continue
        opt = inst.cost_of()[feasible].min()
        plan = greedy_farmland(inst.graph, inst.eligible, inst.cost, inst.gain, inst.need)
        ratios.append(inst.cost[plan].sum() / opt)
    r = np.array(ratios)
    assert len(r) >= 60
    assert r.min() >= 1 - 1e-9  # never below the optimum: the brute force is right
    assert r.mean() <= 1.03 and r.max() <= 1.25 and (r <= 1 + 1e-9).mean() >= 0.65


def test_budget_is_respected_and_usually_enough(instances: list[Instance]) -> None:
    """Never over budget. With 25% slack over the optimal cost the target was met in all the
    reachable instances (asserted >= 95%); at exactly the optimal cost it is not guaranteed
    (measured 64%): under a budget the greedy is a knapsack heuristic."""
    met, total = 0, 0
    for inst in instances:
        feasible = inst.adm & (inst.gain_of() >= inst.need - 1e-9)
        if not feasible.any():
            continue
        opt = inst.cost_of()[feasible].min()
        for budget in (opt, 1.25 * opt):
            plan = greedy_farmland(
                inst.graph, inst.eligible, inst.cost, inst.gain, inst.need, budget
            )
            assert inst.cost[plan].sum() <= budget + 1e-9
            assert admissible_mask(inst, plan)
        total += 1  # counts the 1.25 x optimum budget, the last one
        met += inst.gain[plan].sum() >= inst.need - 1e-9
    assert met / total >= 0.95


def test_unbounded_need_spends_the_budget_well(instances: list[Instance]) -> None:
    """need = inf: the most gain for the budget. Measured: mean 0.95 of the best possible gain,
    worst 0.50 (the classic ratio-greedy knapsack worst case: one dear, big item left out)."""
    shares = []
    for inst in instances[:40]:
        budget = 0.3 * inst.cost[inst.eligible].sum()
        plan = greedy_farmland(inst.graph, inst.eligible, inst.cost, inst.gain, np.inf, budget)
        assert inst.cost[plan].sum() <= budget + 1e-9 and admissible_mask(inst, plan)
        best = inst.gain_of()[inst.adm & (inst.cost_of() <= budget)].max()
        if best > 0:
            shares.append(inst.gain[plan].sum() / best)
    assert np.mean(shares) >= 0.9 and np.min(shares) >= 0.4


def test_admissible_on_larger_grids_against_networkx() -> None:
    """Larger, sparser cases (stand-alone blocks needed: few roots) checked with networkx."""
    rng = np.random.default_rng(12)
    for rows, cols in [(10, 10), (20, 15), (30, 30)]:
        n = rows * cols
        adj = grid(rows, cols)
        area = rng.uniform(5, 60, n)
        root = rng.random(n) < 0.01
        eligible = rng.random(n) < 0.8
        g = FarmlandGraph(adj, area, root, 100.0)
        cost = rng.uniform(1, 10, n) * area
        gain = area * (rng.random(n) < 0.5)
        for frac in (0.05, 0.3):
            plan = greedy_farmland(g, eligible, cost, gain, frac * gain.sum())
            assert not (plan & ~eligible).any()
            assert nx_admissible(adj, area, root, 100.0, plan)
            assert gain[plan].sum() >= frac * gain.sum() - 1e-9
