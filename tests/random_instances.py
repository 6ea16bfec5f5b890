"""Random tiny instances and scenarios, and the optimum of each by enumerating every plan.

Used by tests/test_random_bruteforce.py (a seeded CI run), tests/test_no_elastic.py (the CLI on
the same files) and benchmarks/random_bruteforce.py (larger runs). One seed gives one
(instance, scenario) case, so a failure reproduces from the seed it prints.

Instances: half are rectangles with attributes set directly (areas with two decimals, so
CP-SAT's scaling is exact), half are built geometry first (a jittered grid or Voronoi cells,
zones straddling plots; tests/random_geometry.py), written to a GeoPackage and loaded.
Scenarios: every target on or off, tight or loose; township targets and budgets; the balance;
elastic mode; the block rule with its priority tier and forest connectivity.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import networkx as nx
import numpy as np

from instances.instance import Instance
from optimizer.model.build import PlanModel, build_model
from optimizer.model.scenario import Contiguity, Scenario
from tests.conftest import grid_instance
from tests.random_geometry import geometric_instance
from tests.test_model_bruteforce import THRESHOLD, enumerate_plans

MAX_CANDIDATES = 9
LAYOUTS = ("grid", "jitter", "voronoi")
_FOLDER: list[Path] = []


def folder() -> Path:
    """Where the geometry-first cases write their GeoPackages (one per process)."""
    if not _FOLDER:
        _FOLDER.append(Path(tempfile.mkdtemp(prefix="greenbelt-random-")))
    return _FOLDER[0]


@dataclass
class Case:
    seed: int
    inst: Instance
    scenario: Scenario
    best: float | None  # optimum over all plans (None: no plan meets the hard rules)
    layout: str = "grid"
    path: Path | None = None  # the GeoPackage of a geometry-first case


def random_case(seed: int) -> Case:
    """The case of `seed` (a fresh copy: callers may change the scenario)."""
    return copy.deepcopy(_case(seed))


def _instance(rng: np.random.Generator, seed: int) -> tuple[Instance, str, Path | None]:
    layout = str(rng.choice(LAYOUTS, p=[0.5, 0.25, 0.25]))
    path = None if layout == "grid" else folder() / f"case_{seed}.gpkg"
    while True:
        rows, cols = int(rng.integers(2, 4)), int(rng.integers(3, 5))
        share = float(rng.uniform(0.6, 1.0))
        if path is None:
            inst = _grid(rng, rows, cols, share)
        else:
            inst = geometric_instance(rng, path, rows, cols, layout, share)
        if 5 <= len(candidates(inst)) <= MAX_CANDIDATES:
            return inst, layout, path


def _grid(rng: np.random.Generator, rows: int, cols: int, share: float) -> Instance:
    """Rectangles with attributes drawn directly: zone shares straddle (0.3, 0.7) in some
    cases, a few illegal buildings, random existing-forest neighbours."""
    inst = grid_instance(rng, rows, cols, candidate_share=share, central=True)
    p = inst.plots
    n = len(p)
    if rng.random() < 0.5:
        p["share_central_city"] = rng.choice([0.0, 0.3, 0.7, 1.0], n)
    if rng.random() < 0.3:
        p["share_plain_area"] = rng.choice([0.3, 0.7, 1.0], n)
    if rng.random() < 0.3:
        p["share_water_source"] = rng.choice([0.0, 0.0, 0.04, 0.5], n)
    if rng.random() < 0.3:
        p["illegal"] = p["collective"].to_numpy() & (rng.random(n) < 0.2)
    p["touches_forest"] = rng.random(n) < 0.3
    p["share_green_wedges"] = np.where(rng.random(n) < 0.2, p["share_priority"], 0.0)
    p["township"] = [f"T{k % int(rng.integers(1, 4))}" for k in range(n)]
    return inst


@cache
def _case(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    inst, layout, path = _instance(rng, seed)
    a = inst.plots["area_mu"].to_numpy()
    pr = inst.plots["share_priority"].to_numpy()
    town = inst.plots["township"].astype(str).to_numpy()
    s = Scenario()
    s.eligibility.low_efficiency_max_wan_per_mu = THRESHOLD
    t = s.targets

    def level(on: float, tight: tuple[float, float], loose: tuple[float, float]) -> float:
        if rng.random() >= on:
            return 0.0
        lo, hi = tight if rng.random() < 0.5 else loose
        return float(rng.uniform(lo, hi))

    existing = inst.stats.get("farmland_in_priority_mu", 0.0)
    t.total_reduction_mu = float(round(level(0.8, (0.4, 0.7), (0.05, 0.3)) * a.sum(), 2))
    t.central_reduction_mu = float(round(level(0.6, (0.3, 0.6), (0.05, 0.25)) * a.sum(), 2))
    t.central_priority_share = round(level(0.7, (0.7, 0.9), (0.2, 0.5)), 2)
    t.central_priority_tolerance = 0.01 if t.central_priority_share > 0 else 0.0
    t.plain_priority_share = round(level(0.6, (0.6, 0.8), (0.1, 0.4)), 2)
    t.priority_farmland_mu = float(round(existing + level(0.6, (0.3, 0.6), (0.02, 0.2))
                                         * (a * pr).sum(), 2))
    if rng.random() < 0.3:
        for name in rng.choice(np.unique(town), int(rng.integers(1, 3))):
            here = float(a[town == name].sum())
            t.township_reduction_mu[str(name)] = float(round(
                level(1.0, (0.4, 0.7), (0.1, 0.3)) * here, 2))
    t.conversion_balance = bool(rng.random() < 0.5)
    s.budget.total_wan = float(np.round(rng.uniform(0.2, 1.2) * (a * 130).sum(), 0))
    if rng.random() < 0.25:
        name = str(rng.choice(np.unique(town)))
        s.budget.township_wan[name] = float(np.round(rng.uniform(0.1, 0.8)
                                                     * (a[town == name] * 130).sum(), 0))
    s.elastic.enabled = bool(rng.random() < 0.4)
    s.elastic.penalty = 10_000.0
    c = s.contiguity
    c.enabled = bool(rng.random() < 0.35)
    c.min_block_mu = float(rng.choice([15.0, 40.0]))
    if rng.random() < 0.35:
        c.priority_block_mu = c.min_block_mu * float(rng.choice([1.5, 3.0]))  # >= min_block
    c.forest_connected = bool(rng.random() < 0.3)
    s.solver.time_limit = 30
    s.solver.mip_gap = 0.0
    s.solver.threads = 1
    return Case(seed, inst, s, optimum(inst, s), layout, path)


def candidates(inst: Instance) -> np.ndarray:
    p = inst.plots
    eff = p["output_wan"].to_numpy() / p["area_mu"].to_numpy()
    collective = p["collective"].to_numpy(bool)
    illegal = p["illegal"].to_numpy(bool) & collective
    return np.flatnonzero(collective & ((eff <= THRESHOLD) | illegal)
                          & ~p["protected"].to_numpy(bool))


def block_rule_ok(inst: Instance, full: np.ndarray, c: Contiguity) -> np.ndarray:
    """The block rule re-stated with networkx, per plan (rows of per-plot actions):
    - each block of new farmland touches existing farmland or has >= min_block_mu;
    - priority tier: each block of new farmland among the plots mostly (>= 50%) in the priority
      zones, adjacency within them, touches existing farmland or has >= priority_block_mu;
    - forest connectivity: each block of new forest touches existing forest or a green wedge.
    Evaluated once per distinct farmland / forest set (at most 2**9 each)."""
    p = inst.plots
    g = nx.from_scipy_sparse_array(inst.adjacency)
    area = p["area_mu"].to_numpy()
    root = p["touches_farmland"].to_numpy(bool)
    tier = p["share_priority"].to_numpy() >= 0.5
    near = p["touches_forest"].to_numpy(bool) | (p["share_green_wedges"].to_numpy() > 0)

    def blocks_ok(plots: np.ndarray, touch: np.ndarray, least: float) -> bool:
        for comp in nx.connected_components(g.subgraph(plots.tolist())):
            k = list(comp)
            if not touch[k].any() and area[k].sum() < least * (1 - 1e-9):
                return False
        return True

    def farm_ok(farm: np.ndarray) -> bool:
        if not blocks_ok(np.flatnonzero(farm), root, c.min_block_mu):
            return False
        return c.priority_block_mu is None or blocks_ok(np.flatnonzero(farm & tier), root,
                                                        c.priority_block_mu)

    def forest_ok(forest: np.ndarray) -> bool:
        return not c.forest_connected or blocks_ok(np.flatnonzero(forest), near, np.inf)

    ok = np.ones(len(full), bool)
    for action, test in ((1, farm_ok), (2, forest_ok)):
        sets, inverse = np.unique(full == action, axis=0, return_inverse=True)
        ok &= np.array([test(row) for row in sets])[inverse.ravel()]
    return ok


def plan_values(inst: Instance, s: Scenario, full: np.ndarray,
                pm: PlanModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(allowed, objective) of each plan (rows of per-plot actions).

    Without elastic mode: the independent re-statement of the rules (enumerate_plans). In elastic
    mode the objective adds penalty x the least shortfall of each target row of the compiled
    model (shortfalls are continuous, so the least one is closed-form per row); the hard rules
    (column bounds, rows without shortfall) must hold.
    """
    if not s.elastic.enabled:
        ok, obj, every = enumerate_plans(inst, s)
        index = {row.tobytes(): k for k, row in enumerate(every)}
        pick = np.array([index[row.tobytes()] for row in full.astype(np.int8)])
        allowed = ok[pick]
        values = obj[pick]
    else:
        pm = pm or build_model(inst, s)
        m = pm.model
        X = np.zeros((len(full), m.num_cols))
        nc = len(pm.candidates)
        acts = full[:, pm.candidates]
        X[:, :nc], X[:, nc:2 * nc] = acts == 1, acts == 2
        short = m.col_blocks.get("shortfall", slice(0, 0))
        S = m.A[:, short].toarray()  # one +-1 per shortfall column
        act = (m.A @ X.T).T  # shortfall columns are 0 in X
        need = np.zeros((len(full), S.shape[1]))
        for j in range(S.shape[1]):
            i = int(np.flatnonzero(S[:, j])[0])
            coef = S[i, j]
            if coef > 0:  # raises a >= row
                lo = (m.row_lower[i] - act[:, i]) / coef
            else:  # lowers a <= row (a budget)
                lo = (act[:, i] - m.row_upper[i]) / -coef
            need[:, j] = np.maximum(0.0, np.nan_to_num(lo, neginf=0.0))
        X[:, short] = need
        act = (m.A @ X.T).T
        tol = 1e-7 * np.maximum(1.0, np.abs(act))
        allowed = ((act >= m.row_lower - tol) & (act <= m.row_upper + tol)).all(axis=1)
        allowed &= ((X >= m.col_lower - 1e-9) & (X <= m.col_upper + 1e-9)).all(axis=1)
        values = X @ m.c + m.offset
    if s.contiguity.enabled:
        allowed = allowed & block_rule_ok(inst, full, s.contiguity)
    return allowed, values


def all_plans(inst: Instance) -> np.ndarray:
    cand = candidates(inst)
    grids = np.meshgrid(*([np.arange(3)] * len(cand)), indexing="ij")
    acts = np.stack([g.ravel() for g in grids], axis=1).astype(np.int8)
    full = np.zeros((len(acts), len(inst.plots)), dtype=np.int8)
    full[:, cand] = acts
    return full


def optimum(inst: Instance, s: Scenario) -> float | None:
    allowed, values = plan_values(inst, s, all_plans(inst))
    return float(values[allowed].min()) if allowed.any() else None


def without_coupling_extras(inst: Instance, s0: Scenario, forest: bool = True
                            ) -> tuple[Scenario, PlanModel, object]:
    """The case's scenario, model and block rule with the compactness term off (it adds
    coupling columns) and, with forest=False, forest connectivity off too."""
    from optimizer.blocks.rule import farmland_rule

    s = copy.deepcopy(s0)
    s.compactness.weight = 0.0
    if not forest:
        s.contiguity.forest_connected = False
    pm = build_model(inst, s)
    return s, pm, farmland_rule(inst, pm, s)
