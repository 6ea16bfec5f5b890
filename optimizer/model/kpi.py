"""KPIs recomputed from a plan (per-plot actions) and the instance geometry: never from solver
values. Used by `solve` for summary.json and by `check` to verify a plan file."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

from instances.instance import Instance
from optimizer.model.scenario import Scenario
from optimizer.model.targets import PlotRules, TargetFamily

KEEP, FARMLAND, FOREST = 0, 1, 2
ACTIONS = ("keep", "farmland", "forest")
# Relative tolerance when judging a target met (solver feasibility tolerances are ~1e-6).
MET_TOLERANCE = 1e-6


@dataclass
class TargetCheck:
    key: str
    label: str
    scope: str
    unit: str
    sense: str
    required: float
    achieved: float
    slack: float  # >= 0 when met, in `unit`
    met: bool
    share_required: float | None = None  # for share targets: the ratios
    share_achieved: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RuleViolation:
    rule: str
    plot_ids: list[str]

    def describe(self) -> str:
        shown = ", ".join(self.plot_ids[:5]) + (" ..." if len(self.plot_ids) > 5 else "")
        return f"{self.rule}: {len(self.plot_ids)} plot(s) ({shown})"


def evaluate_targets(
    families: list[TargetFamily], actions: np.ndarray
) -> list[TargetCheck]:
    F = (actions == FARMLAND).astype(float)
    G = (actions == FOREST).astype(float)
    checks = []
    for fam in families:
        value = fam.value(F, G)
        if fam.ratio_num is not None and fam.ratio_den is not None:
            num = np.asarray(fam.ratio_num[0] @ F + fam.ratio_num[1] @ G).ravel()
            den = np.asarray(fam.ratio_den[0] @ F + fam.ratio_den[1] @ G).ravel()
        for k, scope in enumerate(fam.scopes):
            v, r = float(value[k]), float(fam.rhs[k])
            slack = v - r if fam.sense == ">=" else r - v
            tol = MET_TOLERANCE * max(1.0, abs(r), float(abs(fam.Wf[k]).sum()))
            check = TargetCheck(fam.key, fam.label, scope, fam.unit, fam.sense, r, v, slack,
                                slack >= -tol)
            if fam.ratio_num is not None:
                # Share targets: show the shares; a scope with nothing vacated meets it trivially.
                check.share_required = fam.ratio_required
                check.share_achieved = float(num[k] / den[k]) if den[k] > 0 else None
            checks.append(check)
    return checks


def rule_violations(
    rules: PlotRules, actions: np.ndarray, plot_ids: np.ndarray
) -> list[RuleViolation]:
    vac = actions != KEEP
    found = {
        "vacated plot is not a low-efficiency collective candidate": vac & ~rules.candidate
        & ~rules.must_vacate,
        "protected plot vacated": vac & rules.protected,
        "illegal building kept (must be vacated)": ~vac & rules.must_vacate,
        "farmland on ineligible land (polluted, unsuitable soil, water source or river channel)":
            (actions == FARMLAND) & ~rules.farmland_ok,
        "forest inside the farmland protection space": (actions == FOREST) & ~rules.forest_ok,
    }
    return [RuleViolation(rule, [str(p) for p in plot_ids[mask]])
            for rule, mask in found.items() if mask.any()]


@dataclass
class PlanTotals:
    vacated_mu: float
    farmland_mu: float
    forest_mu: float
    vacated_plots: int
    cost_wan: float
    lost_output_wan: float
    priority_vacated_mu: float
    new_priority_farmland_mu: float


def plan_totals(rules: PlotRules, actions: np.ndarray) -> PlanTotals:
    f, g = actions == FARMLAND, actions == FOREST
    v = f | g
    a = rules.area
    return PlanTotals(
        vacated_mu=float(a[v].sum()),
        farmland_mu=float(a[f].sum()),
        forest_mu=float(a[g].sum()),
        vacated_plots=int(v.sum()),
        cost_wan=float(rules.cost_farmland[f].sum() + rules.cost_forest[g].sum()),
        lost_output_wan=float(rules.lost_output[v].sum()),
        priority_vacated_mu=float((a * rules.priority)[v].sum()),
        new_priority_farmland_mu=float((a * rules.priority)[f].sum()),
    )


@dataclass
class ObjectiveParts:
    """The model's objective recomputed from a plan's actions and the instance, term by term
    (万元): never the solver's value, which may come from a scaled model (CP-SAT) or carry
    tolerances."""

    lost_output: float  # output_years x lost output of the vacated plots
    cost: float  # cost_weight x demolition + restoration
    compactness: float  # the compact-demolition term, when its weight is > 0
    shortfall_penalty: float  # elastic mode: penalty x shortfall, summed over target rows

    @property
    def total(self) -> float:
        return self.lost_output + self.cost + self.compactness + self.shortfall_penalty


def plan_objective(inst: Instance, s: Scenario, rules: PlotRules, checks: list[TargetCheck],
                   actions: np.ndarray, elastic: bool) -> ObjectiveParts:
    """`build_model`'s objective at this plan, each term evaluated on the per-plot actions (the
    auxiliary columns at their least value: perimeter products y_ij = v_i v_j, isolation z_i,
    shortfalls from the target checks)."""
    f, g = actions == FARMLAND, actions == FOREST
    v = (f | g).astype(float)
    cost = float(rules.cost_farmland[f].sum() + rules.cost_forest[g].sum())
    compact = 0.0
    w = s.compactness.weight
    if w > 0:
        adj = sp.csr_matrix(inst.adjacency, dtype=np.float64)
        if s.compactness.form == "boundary":
            shared = sp.triu(adj, k=1)
            perimeter = inst.geometry.length.to_numpy()
            compact = w * float(v @ perimeter - 2.0 * (v @ (shared @ v)))
        else:
            adj = adj.copy()
            adj.eliminate_zeros()
            adj.data[:] = 1.0
            isolated = np.maximum(0.0, v - adj @ v)
            compact = w * float(rules.area @ isolated)
    short = sum(max(0.0, -c.slack) for c in checks) if elastic else 0.0
    return ObjectiveParts(
        lost_output=s.objective.output_years * float(rules.lost_output @ v),
        cost=s.objective.cost_weight * cost,
        compactness=compact,
        shortfall_penalty=s.elastic.penalty * short,
    )
