"""The block rule as the model sees it: its parts (farmland, its priority tier, forest
connectivity) on the candidate graph, one separator for all of them, the presolve rows and
fixings, the repair of a rule-breaking plan, and the blocks of any plan recomputed from the
geometry (for reports and `check`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from instances.instance import Instance
from optimizer.blocks.cuts import (
    FarmlandGraph,
    check_plan,
    forest_graph,
    make_separator,
    presolve_cuts,
    priority_tier,
    violating_components,
)
from optimizer.blocks.greedy import greedy_farmland
from optimizer.model.build import PlanModel
from optimizer.model.kpi import FARMLAND, FOREST, KEEP, evaluate_targets
from optimizer.model.presolve import Finding
from optimizer.model.scenario import Scenario
from solvers.base import Cuts
from solvers.model import ArrayModel


@dataclass
class RulePart:
    """One connectivity rule: blocks of `action` plots on `graph` must be admissible."""

    name: str  # farmland | farmland_tier | forest
    graph: FarmlandGraph
    cols: np.ndarray  # model column of each graph node
    plots: np.ndarray  # candidate index of each graph node
    action: int  # FARMLAND or FOREST


@dataclass
class Rule:
    """The farmland-block rule, its optional priority tier, and optional forest connectivity."""

    parts: list[RulePart]

    def admissible(self, x: np.ndarray) -> bool:
        """x: a model vector (only the rule's columns are read)."""
        return all(check_plan(p.graph, x[p.cols] > 0.5)[0] for p in self.parts)

    def violating(self, x: np.ndarray, action: int, num_candidates: int) -> np.ndarray:
        """Candidates in a block of `action` that breaks a rule."""
        bad = np.zeros(num_candidates, bool)
        for p in self.parts:
            if p.action == action:
                for comp in violating_components(p.graph, x[p.cols] > 0.5):
                    bad[p.plots[comp]] = True
        return bad


def farmland_rule(inst: Instance, pm: PlanModel, s: Scenario) -> Rule:
    cand = pm.candidates
    nc = len(cand)
    adj = inst.adjacency[cand][:, cand]
    area = pm.rules.area[cand]
    everyone = np.arange(nc)
    root = inst.plots["touches_farmland"].to_numpy(bool)[cand]
    c = s.contiguity
    graph = FarmlandGraph(adj, area, root, c.min_block_mu, priority=pm.rules.priority[cand],
                          big_tier=c.priority_block_mu)
    f_cols = pm.f_cols.astype(np.int64)
    parts = [RulePart("farmland", graph, f_cols, everyone, FARMLAND)]
    if c.priority_block_mu is not None:
        tier, plots = priority_tier(graph)
        parts.append(RulePart("farmland_tier", tier, f_cols[plots], plots, FARMLAND))
    if c.forest_connected:
        # new forest extends existing forest or a green wedge; no stand-alone forest blocks
        touches = (inst.plots["touches_forest"].to_numpy(bool)
                   | (inst.plots["share_green_wedges"].to_numpy(float) > 0))[cand]
        parts.append(RulePart("forest", forest_graph(adj, area, touches),
                              pm.g_cols.astype(np.int64), everyone, FOREST))
    return Rule(parts)


class CombinedSeparator:
    """The separators of every rule part as one; counts calls and rows."""

    def __init__(self, rule: Rule, fractional: bool) -> None:
        self.parts = [make_separator(p.graph, p.cols, fractional) for p in rule.parts]
        self.calls = 0
        self.rows = 0
        self.last_rejected: np.ndarray | None = None  # latest integral point that broke a rule

    def __call__(self, x: np.ndarray, integral: bool) -> Cuts | None:
        self.calls += 1
        found = [c for c in (sep(x, integral) for sep in self.parts) if c is not None and len(c)]
        if not found:
            return None
        if integral:
            self.last_rejected = np.array(x, dtype=float)
        cuts = Cuts(sp.vstack([c.A for c in found], format="csr"),
                    np.concatenate([c.lower for c in found]),
                    np.concatenate([c.upper for c in found]))
        self.rows += len(cuts)
        return cuts


def _presolve_parts(model: ArrayModel, rule: Rule, pm: PlanModel) -> tuple[np.ndarray, list[Cuts]]:
    """Column bounds with every plot that can be in no admissible block fixed, and the rows."""
    col_upper = model.col_upper.copy()  # never write into arrays other models share
    cand = pm.candidates
    ok = {FARMLAND: pm.rules.farmland_ok[cand], FOREST: pm.rules.forest_ok[cand]}
    rows = []
    for p in rule.parts:
        cuts, fix = presolve_cuts(p.graph, p.cols, ok[p.action][p.plots],
                                  num_cols=model.num_cols)
        col_upper[p.cols[fix]] = 0.0
        rows.append(cuts)
    return col_upper, rows


def _rule_locked(pm: PlanModel, col_upper: np.ndarray) -> np.ndarray:
    """Candidates (bool) the model must vacate (illegal buildings) but whose every allowed use the
    block rule closes: e.g. only farmland is allowed and no admissible block can hold the plot."""
    forced = pm.model.row_lower[pm.model.row_blocks["one_action"]] > 0
    return forced & (col_upper[pm.f_cols] <= 0) & (col_upper[pm.g_cols] <= 0)


def with_presolve(model: ArrayModel, rule: Rule, pm: PlanModel) -> ArrayModel:
    """Fix plots that cannot be in any admissible block; add the up-front rows. In elastic mode an
    illegal building the rule locks (`locked_findings`) is no longer forced: it is kept, named by
    the finding and reported as a rule violation, so a best plan still comes out."""
    col_upper, rows = _presolve_parts(model, rule, pm)
    locked = _rule_locked(pm, col_upper)
    if locked.any() and pm.shortfall_cols:
        row_lower = model.row_lower.copy()
        row_lower[np.flatnonzero(locked) + model.row_blocks["one_action"].start] = 0.0
        model = replace(model, row_lower=row_lower)
    model = replace(model, col_upper=col_upper)
    for cuts in rows:
        if len(cuts):
            model = model.add_rows(cuts.A, cuts.lower, cuts.upper, block="contiguity_presolve")
    return model


def locked_findings(inst: Instance, pm: PlanModel, s: Scenario) -> list[Finding]:
    """Rules that cannot all hold on one plot, found before solving: an illegal building (must be
    vacated) whose allowed uses the block rule all closes. Without elastic mode no plan exists."""
    rule = farmland_rule(inst, pm, s)
    col_upper, _ = _presolve_parts(pm.model, rule, pm)
    locked = pm.candidates[_rule_locked(pm, col_upper)]
    if not locked.size:
        return []
    ids = ", ".join(map(str, inst.plots["plot_id"].to_numpy()[locked][:5]))
    more = f" and {locked.size - 5} more" if locked.size > 5 else ""
    area = float(pm.rules.area[locked].sum())
    return [Finding("must_vacate", f"{locked.size} illegal building plot(s) must be vacated but "
                    f"may only become farmland and can join no farmland block that touches "
                    f"existing farmland or reaches {s.contiguity.min_block_mu:g} mu: {ids}{more} "
                    f"(elastic mode keeps them: {area:,.1f} mu short of vacating every illegal "
                    f"building)", area, 0.0)]


def repair(pm: PlanModel, rule: Rule, actions: np.ndarray) -> np.ndarray | None:
    """A rule-abiding plan near `actions`: farmland blocks that break the rule become forest
    (or are kept where forest is not allowed), forest blocks that break it are kept, then greedy
    farmland grown from existing farmland and the surviving blocks restores the farmland target.
    None if the plan then misses a target or breaks a rule."""
    cand, r = pm.candidates, pm.rules
    nc = len(cand)
    act = actions.copy()
    bad = rule.violating(pm.vector(act), FARMLAND, nc)
    act[cand[bad]] = np.where(r.forest_ok[cand[bad]] & ~r.protected[cand[bad]], FOREST, KEEP)
    act[cand[rule.violating(pm.vector(act), FOREST, nc)]] = KEEP
    fam = next(f for f in pm.families if f.key == "priority_farmland")
    F, G = (act == FARMLAND).astype(float), (act == FOREST).astype(float)
    need = float(fam.rhs[0] - fam.value(F, G)[0])
    if need > 0:
        chosen = act[cand] == FARMLAND
        g = rule.parts[0].graph
        grow_from = FarmlandGraph(g.adj, g.area, g.root | chosen, g.min_size)
        current = np.select([act[cand] == FARMLAND, act[cand] == FOREST],
                            [pm.model.c[pm.f_cols], pm.model.c[pm.g_cols]], 0.0)
        extra = np.maximum(pm.model.c[pm.f_cols] - current, 0.0)
        eligible = r.farmland_ok[cand] & ~chosen & (pm.model.col_upper[pm.f_cols] > 0)
        add = greedy_farmland(grow_from, eligible, extra, r.area[cand] * r.priority[cand], need)
        act[cand[add]] = FARMLAND
    if not rule.admissible(pm.vector(act)):
        return None
    if not all(c.met for c in evaluate_targets(pm.families, act)):
        return None
    return act


@dataclass
class BlockReport:
    ok: bool
    blocks: np.ndarray  # block id per plot, -1 where not new farmland
    block_area: np.ndarray  # mu per block
    block_touches: np.ndarray  # block touches existing farmland
    violating: int  # farmland blocks breaking the rule (either tier)
    forest_violating: int = 0  # forest blocks not extending existing forest or a wedge

    def summary(self) -> dict:
        a = self.block_area
        return {"blocks": len(a), "touching_existing_farmland": int(self.block_touches.sum()),
                "stand_alone": int((~self.block_touches).sum()),
                "violating": self.violating, "forest_violating": self.forest_violating,
                "smallest_stand_alone_mu": float(a[~self.block_touches].min())
                if (~self.block_touches).any() else None,
                "largest_mu": float(a.max()) if len(a) else None,
                "at_least_100_mu": int((a >= 100).sum()),
                "at_least_1000_mu": int((a >= 1000).sum())}


def farmland_blocks(inst: Instance, actions: np.ndarray, s: Scenario) -> BlockReport:
    """New-farmland blocks recomputed from the instance geometry (adjacency over all plots),
    and whether each meets the rule of scenario `s` (touches existing farmland or is large)."""
    area = inst.plots["area_mu"].to_numpy(float)
    root = inst.plots["touches_farmland"].to_numpy(bool)
    c = s.contiguity
    graph = FarmlandGraph(inst.adjacency, area, root, c.min_block_mu,
                          priority=inst.plots["share_priority"].to_numpy(float),
                          big_tier=c.priority_block_mu)
    chosen = actions == FARMLAND
    ok, blocks, block_area, touches = check_plan(graph, chosen)
    bad = len(violating_components(graph, chosen))
    if c.priority_block_mu is not None:
        tier, plots = priority_tier(graph)
        bad += len(violating_components(tier, chosen[plots]))
    bad_forest = 0
    if c.forest_connected:
        near = (inst.plots["touches_forest"].to_numpy(bool)
                | (inst.plots["share_green_wedges"].to_numpy(float) > 0))
        bad_forest = len(violating_components(forest_graph(inst.adjacency, area, near),
                                              actions == FOREST))
    return BlockReport(bad + bad_forest == 0, blocks, block_area, touches, bad, bad_forest)
