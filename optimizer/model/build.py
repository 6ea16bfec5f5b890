"""Compile Instance + Scenario into one ArrayModel (after linopy's matrices.py).

Columns: f (candidate -> farmland), g (candidate -> forest), then, in elastic mode, one shortfall
column per target row. Every row comes from a TargetFamily, so the checker verifies the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from instances.instance import Instance
from optimizer.model.compactness import add_boundary_penalty, add_isolation_penalty
from optimizer.model.scenario import DistrictTargets, Scenario
from optimizer.model.targets import PlotRules, TargetFamily, plot_rules, target_families
from solvers.model import ArrayModel


@dataclass
class PlanModel:
    model: ArrayModel
    candidates: np.ndarray  # plot row index of each candidate (column order of f and g)
    rules: PlotRules
    families: list[TargetFamily]
    targets: DistrictTargets
    family_rows: dict[str, slice]  # family key -> its rows in model.A
    shortfall_cols: dict[str, slice]  # family key -> its shortfall columns (elastic mode)

    @property
    def f_cols(self) -> np.ndarray:
        return np.arange(len(self.candidates))

    @property
    def g_cols(self) -> np.ndarray:
        return np.arange(len(self.candidates), 2 * len(self.candidates))

    def actions(self, x: np.ndarray, num_plots: int) -> np.ndarray:
        """Per-plot action codes (0 keep, 1 farmland, 2 forest) from a solution vector."""
        nc = len(self.candidates)
        act = np.zeros(num_plots, dtype=np.int8)
        act[self.candidates[x[:nc] > 0.5]] = 1
        act[self.candidates[x[nc:2 * nc] > 0.5]] = 2
        return act

    def vector(self, actions: np.ndarray) -> np.ndarray:
        """The f/g part of a solution vector for a per-plot plan (e.g. a warm start)."""
        a = actions[self.candidates]
        return np.concatenate([(a == 1), (a == 2)]).astype(float)


def build_model(inst: Instance, s: Scenario) -> PlanModel:
    rules = plot_rules(inst, s)
    families, dt = target_families(inst, s, rules)
    cand = np.flatnonzero(rules.candidate)
    nc = len(cand)
    w_out, w_cost = s.objective.output_years, s.objective.cost_weight
    lost = w_out * rules.lost_output[cand]
    c = np.concatenate([lost + w_cost * rules.cost_farmland[cand],
                        lost + w_cost * rules.cost_forest[cand]])
    col_upper = np.concatenate([rules.farmland_ok[cand], rules.forest_ok[cand]]).astype(float)

    # One action per plot; illegal buildings must be vacated (to whichever use is allowed).
    # One that may become neither is not forced: presolve names it, the checker flags it kept.
    eye = sp.identity(nc, format="csr")
    blocks = [sp.hstack([eye, eye], format="csr")]
    can_go = (rules.farmland_ok | rules.forest_ok)[cand]
    lower = [(rules.must_vacate[cand] & can_go).astype(float)]
    upper = [np.ones(nc)]
    family_rows: dict[str, slice] = {}
    start = nc
    for fam in families:
        blocks.append(sp.hstack([fam.Wf[:, cand], fam.Wg[:, cand]], format="csr"))
        k = len(fam.rhs)
        bound = fam.rhs.astype(float) - fam.offset
        if fam.sense == ">=":
            lower.append(bound)
            upper.append(np.full(k, np.inf))
        else:
            lower.append(np.full(k, -np.inf))
            upper.append(bound)
        family_rows[fam.key] = slice(start, start + k)
        start += k
    A = sp.vstack(blocks, format="csr")
    model = ArrayModel(
        c=c,
        A=A,
        row_lower=np.concatenate(lower),
        row_upper=np.concatenate(upper),
        col_lower=np.zeros(2 * nc),
        col_upper=col_upper,
        integrality=np.ones(2 * nc, dtype=bool),
        col_blocks={"farmland": slice(0, nc), "forest": slice(nc, 2 * nc)},
        row_blocks={"one_action": slice(0, nc), **family_rows},
    )
    if s.compactness.weight > 0:
        model = _add_compactness(model, inst, cand, rules, s)
    shortfall_cols: dict[str, slice] = {}
    if s.elastic.enabled:
        model, shortfall_cols = _add_shortfalls(model, families, family_rows, s.elastic.penalty)
    model.validate()
    return PlanModel(model, cand, rules, families, dt, family_rows, shortfall_cols)


def _add_compactness(
    model: ArrayModel, inst: Instance, cand: np.ndarray, rules: PlotRules, s: Scenario
) -> ArrayModel:
    """Compact demolition: `boundary` prices the perimeter of the vacated region (万元 per metre,
    shared edges of vacated neighbours are interior); `isolated` prices each vacated plot with no
    vacated neighbour (万元 per mu of such a plot)."""
    nc = len(cand)
    v_cols = [np.arange(nc), np.arange(nc, 2 * nc)]
    adj = inst.adjacency[cand][:, cand]
    if s.compactness.form == "boundary":
        perimeter = inst.geometry.length.to_numpy()[cand]
        return add_boundary_penalty(model, v_cols, adj, perimeter, s.compactness.weight)
    return add_isolation_penalty(model, v_cols, adj, rules.area[cand], s.compactness.weight)


def _add_shortfalls(
    model: ArrayModel,
    families: list[TargetFamily],
    family_rows: dict[str, slice],
    penalty: float,
) -> tuple[ArrayModel, dict[str, slice]]:
    """One non-negative shortfall column per target row: relaxes `>=` rows upward and `<=`
    rows (budgets) downward, priced at `penalty` per unit so targets are met whenever possible."""
    rows, vals, slices = [], [], {}
    col = 0
    for fam in families:
        r = np.arange(family_rows[fam.key].start, family_rows[fam.key].stop)
        rows.append(r)
        vals.append(np.full(len(r), 1.0 if fam.sense == ">=" else -1.0))
        slices[fam.key] = slice(model.num_cols + col, model.num_cols + col + len(r))
        col += len(r)
    r, v = np.concatenate(rows), np.concatenate(vals)
    A_cols = sp.csr_matrix((v, (r, np.arange(col))), shape=(model.num_rows, col))
    m = model.num_cols
    new = ArrayModel(
        c=np.concatenate([model.c, np.full(col, penalty)]),
        A=sp.hstack([model.A, A_cols], format="csr"),
        row_lower=model.row_lower,
        row_upper=model.row_upper,
        col_lower=np.concatenate([model.col_lower, np.zeros(col)]),
        col_upper=np.concatenate([model.col_upper, np.full(col, np.inf)]),
        integrality=np.concatenate([model.integrality, np.zeros(col, dtype=bool)]),
        offset=model.offset,
        col_blocks={**model.col_blocks, "shortfall": slice(m, m + col)},
        row_blocks=dict(model.row_blocks),
    )
    return new, slices
