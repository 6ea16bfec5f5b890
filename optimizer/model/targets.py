"""Targets as linear functions of a plan, shared by the model and the checker.

A plan is two indicator vectors over ALL plots: F (vacate -> farmland) and G (vacate -> forest).
Each target family is `Wf @ F + Wg @ G  (>= or <=)  rhs`, one row per scope (township, ...).
The model restricts the columns to candidate plots; the checker evaluates the same rows on any plan,
so what is optimised and what is verified cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from instances.instance import Instance
from optimizer.model.scenario import (
    DistrictTargets,
    Scenario,
    check_townships,
    district_targets,
)


@dataclass
class TargetFamily:
    key: str  # stable id, e.g. "central_priority_share"
    label: str  # planner's words
    unit: str
    scopes: list[str]  # one label per row
    Wf: sp.csr_matrix  # rows x plots
    Wg: sp.csr_matrix
    rhs: np.ndarray
    sense: str  # ">=" or "<="
    # For ratio targets (shares): row-wise numerator/denominator weights, for display only.
    ratio_num: tuple[sp.csr_matrix, sp.csr_matrix] | None = None
    ratio_den: tuple[sp.csr_matrix, sp.csr_matrix] | None = None
    ratio_required: float | None = None
    # Constant part of the value (e.g. existing farmland): the model's row bound is rhs - offset.
    offset: float = 0.0

    def value(self, F: np.ndarray, G: np.ndarray) -> np.ndarray:
        return np.asarray(self.Wf @ F + self.Wg @ G, dtype=float).ravel() + self.offset


@dataclass
class PlotRules:
    """Per-plot facts the model and the checker both need (all arrays over all plots)."""

    area: np.ndarray
    priority: np.ndarray
    central: np.ndarray  # bool: plot lies (mostly) in the central city
    plain: np.ndarray  # bool: plot lies (mostly) in the plain area
    candidate: np.ndarray  # bool: low-efficiency collective land, not protected
    must_vacate: np.ndarray  # bool: illegal building
    protected: np.ndarray
    farmland_ok: np.ndarray  # bool: may become farmland
    forest_ok: np.ndarray  # bool: may become forest
    cost_farmland: np.ndarray  # 万元: demolition + reclamation
    cost_forest: np.ndarray  # 万元: demolition + afforestation
    lost_output: np.ndarray  # 万元/year


def plot_rules(inst: Instance, s: Scenario) -> PlotRules:
    p = inst.plots
    tol = s.eligibility.zone_overlap_tolerance
    area = p["area_mu"].to_numpy(float)
    output = p["output_wan"].to_numpy(float)
    efficiency = np.divide(output, area, out=np.zeros_like(area), where=area > 0)
    collective = p["collective"].to_numpy(bool)
    illegal = p["illegal"].to_numpy(bool)
    protected = p["protected"].to_numpy(bool)
    low = efficiency <= s.eligibility.low_efficiency_max_wan_per_mu
    candidate = collective & (low | illegal) & ~protected
    farmland_ok = (
        p["soil_suitable"].to_numpy(bool)
        & ~p["polluted"].to_numpy(bool)
        & (p["share_water_source"].to_numpy(float) <= tol)
        & (p["share_river_channel"].to_numpy(float) <= tol)
    )
    forest_ok = p["share_farmland_protection_space"].to_numpy(float) <= tol
    demolition = p["demolition_wan_per_mu"].to_numpy(float) * area
    return PlotRules(
        area=area,
        priority=p["share_priority"].to_numpy(float),
        central=p["share_central_city"].to_numpy(float) >= 0.5,
        plain=p["share_plain_area"].to_numpy(float) >= 0.5,
        candidate=candidate,
        must_vacate=illegal & collective,
        protected=protected,
        farmland_ok=farmland_ok,
        forest_ok=forest_ok,
        cost_farmland=demolition + p["reclaim_wan_per_mu"].to_numpy(float) * area,
        cost_forest=demolition + p["afforest_wan_per_mu"].to_numpy(float) * area,
        lost_output=output,
    )


def must_vacate_mu(rules: PlotRules) -> float:
    """Area (mu) of the candidate plots every plan must vacate: illegal buildings that may
    become farmland or forest (one that may become neither is not forced, see `build`)."""
    forced = rules.must_vacate & rules.candidate & (rules.farmland_ok | rules.forest_ok)
    return float(rules.area[forced].sum())


def instance_targets(inst: Instance, s: Scenario, rules: PlotRules | None = None
                     ) -> DistrictTargets:
    """The scenario's figures for this instance (`district_targets`), its forced area included."""
    rules = rules or plot_rules(inst, s)
    return district_targets(s, inst.meta, inst.stats.get("study_area_mu"),
                            must_vacate_mu(rules))


def _row(weights: np.ndarray) -> sp.csr_matrix:
    return sp.csr_matrix(weights.reshape(1, -1))


def _grouped(weights: np.ndarray, groups: pd.Series, names: list[str]) -> sp.csr_matrix:
    """One row per named group: row k holds `weights` on the plots of group names[k]."""
    codes = pd.Index(names).get_indexer(groups.astype(str))  # -1: a plot of no named group
    keep = codes >= 0
    cols = np.flatnonzero(keep)
    return sp.csr_matrix(
        (weights[keep], (codes[keep], cols)), shape=(len(names), len(weights))
    )


def target_families(
    inst: Instance, s: Scenario, rules: PlotRules | None = None
) -> tuple[list[TargetFamily], DistrictTargets]:
    rules = rules or plot_rules(inst, s)
    check_townships(s, inst.plots["township"].unique())
    t = s.targets
    dt = instance_targets(inst, s, rules)
    n = inst.num_plots
    a, pr = rules.area, rules.priority
    zero = sp.csr_matrix((1, n))
    fams: list[TargetFamily] = []

    def both(w: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        r = _row(w)
        return r, r

    if dt.total_reduction_mu > 0:
        fams.append(TargetFamily("total_reduction", "reduction total", "mu", ["whole instance"],
                                 *both(a), np.array([dt.total_reduction_mu]), ">="))
    if rules.central.any() and dt.central_reduction_mu > 0:
        fams.append(TargetFamily("central_reduction", "reduction total", "mu",
                                 ["central city"], *both(a * rules.central),
                                 np.array([dt.central_reduction_mu]), ">="))
    if t.township_reduction_mu:
        names = list(t.township_reduction_mu)
        W = _grouped(a, inst.plots["township"], names)
        fams.append(TargetFamily("township_reduction", "reduction total", "mu",
                                 names, W, W, np.array([t.township_reduction_mu[k] for k in names]),
                                 ">="))
    for key, scope, rho in (
        ("central_priority_share", rules.central,
         t.central_priority_share - t.central_priority_tolerance),
        ("plain_priority_share", rules.plain, t.plain_priority_share),
    ):
        if scope.any() and rho > 0:
            label = "central city" if key.startswith("central") else "plain area"
            num, den = _row(a * pr * scope), _row(a * scope)
            fams.append(TargetFamily(key, "vacated area in priority zones",
                                     "mu", [label], *both(a * (pr - rho) * scope), np.zeros(1),
                                     ">=", (num, num), (den, den), rho))
    existing = inst.stats.get("farmland_in_priority_mu", 0.0)
    fams.append(TargetFamily("priority_farmland", "priority farmland (existing + new)", "mu",
                             ["priority zones"], _row(a * pr), zero,
                             np.array([dt.priority_farmland_mu]), ">=", offset=existing))
    fams.append(TargetFamily("budget", "cost within budget", "万元", ["whole instance"],
                             _row(rules.cost_farmland), _row(rules.cost_forest),
                             np.array([dt.budget_wan]), "<="))
    if s.budget.township_wan:
        names = list(s.budget.township_wan)
        fams.append(TargetFamily("township_budget", "cost within budget", "万元", names,
                                 _grouped(rules.cost_farmland, inst.plots["township"], names),
                                 _grouped(rules.cost_forest, inst.plots["township"], names),
                                 np.array([s.budget.township_wan[k] for k in names]), "<="))
    if t.conversion_balance:
        fams.append(TargetFamily("conversion_balance", "farmland >= forest (conversion)", "mu",
                                 ["whole instance"], _row(a), _row(-a), np.zeros(1), ">="))
    if t.plain_forest_coverage is not None and rules.plain.any():
        need = t.plain_forest_coverage * inst.stats.get("plain_area_mu", 0.0)
        fams.append(TargetFamily("plain_forest_coverage", "plain forest (existing + new)",
                                 "mu", ["plain area"], zero, _row(a * rules.plain),
                                 np.array([need]), ">=",
                                 offset=inst.stats.get("forest_in_plain_mu", 0.0)))
    return fams, dt
