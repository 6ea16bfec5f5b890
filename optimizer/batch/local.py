"""Plans near the examined one that meet an importance question's restriction: the plan with the
plot flipped and repaired (the screen), one found by fix-and-optimise around the plot (for 10k
candidates), and a proof of infeasibility from the restricted LP.

A question ("plot p kept", "p not farmland") changes one plot, so its answer differs from the
plan locally plus in the aggregate target rows. The neighbourhood re-solve frees the clusters
(connected components of the candidate adjacency: a block never crosses one) of p, of the plots
nearest to p, and of the plots the LP says are cheapest to bring in (smallest reduced cost of a
column the plan leaves at 0): the rest stays fixed at the plan, its share moved into the row
bounds (`optimizer.blocks.neighbourhood.sub_problems` with one group, so each row keeps its
whole slack), and the sub-model is solved by row generation with the block rule (`solve_sub`).
Its plan, put back into the plan, meets every row, bound and rule of the restricted model
(checked here): its objective is an UPPER end of the replacement cost, never an answer by
itself; the bound screen (`lp_bounds`) gives the LOWER end. `importance` calls it exact only
when the two are within the gap, and re-solves the whole model only when they are not and the
full re-solve budget allows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import numpy as np

from instances.instance import Instance
from optimizer.blocks.construct import tolerance
from optimizer.blocks.neighbourhood import SubProblem, solve_sub, sub_problems
from optimizer.blocks.rule import Rule, farmland_rule, repair
from optimizer.blocks.search import _lp, plan_vector
from optimizer.model.build import PlanModel
from optimizer.model.kpi import FOREST, KEEP
from optimizer.model.phasing import PhasedPlanModel
from optimizer.model.scenario import Scenario
from optimizer.plan.phased import phased_rule, schedule_set
from optimizer.plan.solve import options_for
from solvers import get_backend
from solvers.base import SolveOptions
from solvers.model import ArrayModel
from solvers.result import Termination

LOCAL_PLOTS = 400  # candidate plots freed per question (whole clusters; p's own cluster always)
LOCAL_LIMIT = 10.0  # seconds per neighbourhood solve at most


@dataclass
class LocalHint:
    """What the main process knows that helps every worker choose a neighbourhood."""

    cheap: np.ndarray  # per candidate: smallest LP reduced cost of a column the plan leaves at 0
    plots: int = LOCAL_PLOTS
    time_limit: float = LOCAL_LIMIT


def cheapness(model: ArrayModel, reduced: np.ndarray | None, fg: np.ndarray,
              nc: int) -> np.ndarray:
    """Per candidate: min over its f and g columns at 0 in the plan (and allowed) of the LP's
    reduced cost (the cost of bringing it in, to first order); inf where none; zeros without LP."""
    if reduced is None:
        return np.zeros(nc)
    d = np.where((fg[:2 * nc] < 0.5) & (model.col_upper[:2 * nc] > 0), reduced[:2 * nc], np.inf)
    return np.minimum(d[:nc], d[nc:2 * nc])


_CACHE: dict[int, tuple[Rule, np.ndarray, np.ndarray]] = {}
_LOCK = threading.Lock()


def _rule_and_geometry(inst: Instance, pm: PlanModel, s: Scenario
                       ) -> tuple[Rule, np.ndarray, np.ndarray]:
    """The block rule, the cluster of each candidate and candidate centroids (x, y), once per
    built model in each worker process."""
    with _LOCK:
        hit = _CACHE.get(id(pm))
    if hit is not None:
        return hit
    graph_rule = farmland_rule(inst, pm, s)  # its farmland part spans every candidate
    comp = graph_rule.parts[0].graph.comp
    rule = graph_rule if s.contiguity.enabled else Rule([])
    cent = inst.geometry.iloc[pm.candidates].centroid
    out = (rule, comp, np.c_[cent.x.to_numpy(), cent.y.to_numpy()])
    with _LOCK:
        _CACHE.clear()
        _CACHE[id(pm)] = out
    return out


def free_plots(comp: np.ndarray, xy: np.ndarray, cheap: np.ndarray, plot: int,
               size: int) -> np.ndarray:
    """Candidate indices of whole clusters: p's own, then alternately the next nearest cluster
    (centroid distance to p) and the next cheapest (min `cheap` over its plots), up to `size`
    plots (p's cluster always, however large)."""
    k = int(comp.max()) + 1
    count = np.bincount(comp, minlength=k)
    d2 = ((xy - xy[plot]) ** 2).sum(axis=1)
    near = np.full(k, np.inf)
    np.minimum.at(near, comp, d2)
    low = np.full(k, np.inf)
    np.minimum.at(low, comp, cheap)
    by_near = np.argsort(near, kind="stable")
    by_cheap = np.argsort(low, kind="stable")
    chosen = np.zeros(k, bool)
    chosen[comp[plot]] = True
    total = int(count[comp[plot]])
    i = j = 0
    while total < size and (i < k or j < k):
        for order, pos in ((by_near, "i"), (by_cheap, "j")):
            idx = i if pos == "i" else j
            while idx < k and chosen[order[idx]]:
                idx += 1
            if idx < k and total + count[order[idx]] <= size:
                chosen[order[idx]] = True
                total += int(count[order[idx]])
            idx += 1
            i, j = (idx, j) if pos == "i" else (i, idx)
    return np.flatnonzero(chosen[comp])


def fixed_elsewhere(model: ArrayModel, rule: Rule, x0: np.ndarray, group: np.ndarray,
                    num_plot_cols: int, time_limit: float, mip_gap: float) -> SubProblem:
    """`sub_problems` for one group, with each row's bounds shifted by exactly the fixed
    columns' share (row_lower - A_fixed x0): x0 may break rows (the plot just changed), and
    sub_problems measures slack from x0, which would then loosen them. Extra columns (not
    plot columns) that share a row with the group join it, as in sub_problems."""
    sub = sub_problems(model, rule, x0, [group], num_plot_cols, time_limit, mip_gap)[0]
    A = model.A.tocsc()
    rows = np.flatnonzero(np.diff(A[:, sub.cols].tocsr().indptr) > 0)
    fixed = np.ones(model.num_cols, bool)
    fixed[sub.cols] = False
    rest = A[rows][:, np.flatnonzero(fixed)] @ x0[fixed]
    sub.model = replace(sub.model, row_lower=model.row_lower[rows] - rest,
                        row_upper=model.row_upper[rows] - rest)
    return sub


def local_plan(inst: Instance, s: Scenario, base_pm: PlanModel, pm: PlanModel, x0: np.ndarray,
               plot: int, hint: LocalHint) -> np.ndarray | None:
    """A model vector meeting every row, bound and rule of `pm` (the question's restricted
    model), found by fix-and-optimise around candidate `plot`, starting from x0 (the plan with
    the plot changed: it may break rows of `pm`, the neighbourhood must repair them), or None."""
    rule, comp, xy = _rule_and_geometry(inst, base_pm, s)
    nc = len(pm.candidates)
    free = free_plots(comp, xy, hint.cheap, plot, hint.plots)
    model = pm.model
    sub = fixed_elsewhere(model, rule, x0, np.concatenate([free, nc + free]), 2 * nc,
                          hint.time_limit, s.solver.mip_gap)
    xs, _secs = solve_sub(sub)
    if xs is None:
        return None
    y = x0.copy()
    y[sub.cols] = xs
    if model.max_violation(y) > tolerance(model) or (
            s.contiguity.enabled and not rule.admissible(y)):
        return None
    return y


def flipped(inst: Instance, s: Scenario, pm: PlanModel, base: np.ndarray, plot: int,
            variant: str) -> np.ndarray | None:
    """The plan with the plot kept (or turned to forest), repaired; None if no repair works."""
    act = base.copy()
    p = pm.candidates[plot]
    forest = pm.rules.forest_ok[p] and variant == "no_farmland"
    act[p] = FOREST if forest else KEEP
    fixed = repair(pm, farmland_rule(inst, pm, s), act) if s.contiguity.enabled else act
    if fixed is None or isinstance(pm, PhasedPlanModel):  # a schedule is checked once scheduled
        return fixed
    return None if plan_vector(pm.model, pm, fixed) is None else fixed


def flipped_schedule(inst: Instance, s: Scenario, pm: PhasedPlanModel, base: np.ndarray,
                     plot: int, variant: str) -> tuple[np.ndarray, np.ndarray, float] | None:
    """[phasing]: the flipped, repaired end state scheduled anew (`schedule_set` on the edited
    model): (actions, years, objective), or None if it cannot be scheduled."""
    act = flipped(inst, s, pm, base, plot, variant)
    if act is None:
        return None
    res = schedule_set(inst, pm, s, act, options_for(s))
    if not res.has_solution or res.x is None:
        return None
    x = pm.model.round_integers(res.x)
    if pm.model.max_violation(x) > 1e-6 or (
            s.contiguity.enabled and not phased_rule(inst, pm, s).admissible(x)):
        return None
    return pm.actions(x, inst.num_plots), pm.schedule(x, inst.num_plots), \
        pm.model.objective_value(x)


def lp_infeasible(model: ArrayModel, time_limit: float | None) -> bool:
    """True only when HiGHS proves the LP relaxation of `model` infeasible (then so is the
    MIP: the question's plot is irreplaceable)."""
    r = get_backend("highs").solve(_lp(model), SolveOptions(time_limit=time_limit, threads=1))
    return r.termination is Termination.INFEASIBLE


def zeroed(x: np.ndarray, model: ArrayModel) -> np.ndarray:
    """x with every column clipped into the model's column bounds (the question's plot)."""
    return np.clip(x, model.col_lower, model.col_upper)
