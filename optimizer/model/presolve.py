"""Explain impossible scenarios before solving, in planner terms.

Each check is a relaxation (it ignores the other targets), so a finding here proves the target
cannot be met at all; passing these checks does not prove the scenario feasible (the solver
decides that).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from optimizer.model.build import PlanModel


@dataclass
class Finding:
    target: str  # TargetFamily key
    message: str
    required: float
    best_possible: float

    def to_dict(self) -> dict:
        return asdict(self)


def _best_share(area: np.ndarray, share: np.ndarray, need: float) -> float:
    """Highest priority share any vacated set of area >= need can reach (fractional prefix of the
    plots sorted by share: adding a plot with a lower share can only lower the ratio)."""
    if need <= 0:
        return float(share.max(initial=0.0))
    order = np.argsort(-share, kind="stable")
    cum = np.cumsum(area[order])
    k = int(np.searchsorted(cum, need))
    if k >= len(order):
        return float("nan")  # the area itself is out of reach; reported by the reduction check
    inside = float((area[order[:k]] * share[order[:k]]).sum())
    rest = need - (cum[k - 1] if k > 0 else 0.0)
    return (inside + rest * share[order[k]]) / need


def presolve(pm: PlanModel, stats: dict[str, float], plot_ids: np.ndarray) -> list[Finding]:
    r, dt, cand = pm.rules, pm.targets, pm.candidates
    keys = {f.key: f for f in pm.families}
    out: list[Finding] = []
    conflict = r.must_vacate & r.protected
    if conflict.any():
        ids = ", ".join(map(str, plot_ids[conflict][:5]))
        out.append(Finding("must_vacate", f"{conflict.sum()} plot(s) are both illegal (must be "
                           f"vacated) and protected (may not be vacated): {ids}", 0.0, 0.0))
    stuck = r.must_vacate & ~r.protected & ~r.farmland_ok & ~r.forest_ok
    if stuck.any():
        ids = ", ".join(map(str, plot_ids[stuck][:5]))
        out.append(Finding("must_vacate", f"{stuck.sum()} illegal building plot(s) must be vacated "
                           f"but may become neither farmland nor forest: {ids}", 0.0, 0.0))

    usable = cand[r.farmland_ok[cand] | r.forest_ok[cand]]
    a, p = r.area[usable], r.priority[usable]
    for key, scope_mask, need, where in (
        ("total_reduction", np.ones(len(usable), bool), dt.total_reduction_mu, "the instance"),
        ("central_reduction", r.central[usable], dt.central_reduction_mu, "the central city"),
    ):
        if key in keys and a[scope_mask].sum() < need:
            out.append(Finding(key, f"only {a[scope_mask].sum():,.0f} mu of low-efficiency "
                               f"collective land can be vacated in {where}, but the reduction "
                               f"target is {need:,.0f} mu", need, float(a[scope_mask].sum())))
    for key, scope_mask, need in (
        ("central_priority_share", r.central[usable], dt.central_reduction_mu),
        ("plain_priority_share", r.plain[usable], 0.0),
    ):
        fam = keys.get(key)
        if fam is None or fam.ratio_required is None:
            continue
        best = _best_share(a[scope_mask], p[scope_mask], need)
        if np.isfinite(best) and best < fam.ratio_required - 1e-9:
            out.append(Finding(key, f"at most {best:.1%} of the vacated area in the "
                               f"{fam.scopes[0]} can lie in the priority zones (too little "
                               f"candidate land there), but the target is "
                               f"{fam.ratio_required:.1%}", fam.ratio_required, best))
    fam = keys["priority_farmland"]
    f_ok = cand[r.farmland_ok[cand]]
    existing = fam.offset
    best_farm = existing + float((r.area[f_ok] * r.priority[f_ok]).sum())
    if best_farm < dt.priority_farmland_mu:
        out.append(Finding("priority_farmland", f"existing farmland in the priority zones "
                           f"({existing:,.0f} mu) plus all land eligible for reclamation there "
                           f"reaches only {best_farm:,.0f} mu, but the target is "
                           f"{dt.priority_farmland_mu:,.0f} mu", dt.priority_farmland_mu,
                           best_farm))
    # Budget: cheapest way to reach the reduction total, forced demolitions included.
    cheapest = np.minimum(np.where(r.farmland_ok, r.cost_farmland, np.inf),
                          np.where(r.forest_ok, r.cost_forest, np.inf))
    forced = cand[r.must_vacate[cand]]
    forced_cost = float(cheapest[forced][np.isfinite(cheapest[forced])].sum())
    free = np.setdiff1d(usable, forced)
    need = max(0.0, dt.total_reduction_mu - float(r.area[forced].sum()))
    unit = cheapest[free] / np.maximum(r.area[free], 1e-12)
    order = np.argsort(unit, kind="stable")
    cum = np.cumsum(r.area[free][order])
    k = int(np.searchsorted(cum, need))
    if k < len(order) and "budget" in keys:
        before = cum[k - 1] if k > 0 else 0.0
        least = forced_cost + float(cheapest[free][order[:k]].sum()) + (need - before) * unit[
            order[k]]
        if least > dt.budget_wan:
            out.append(Finding("budget", f"reaching the reduction total of "
                               f"{dt.total_reduction_mu:,.0f} mu costs at least {least:,.0f} 万元 "
                               f"(cheapest plots first), above the budget of "
                               f"{dt.budget_wan:,.0f} 万元", dt.budget_wan, least))
    fam = keys.get("plain_forest_coverage")
    if fam is not None:
        g_ok = cand[r.forest_ok[cand] & r.plain[cand]]
        best = float(r.area[g_ok].sum())
        if fam.offset + best < fam.rhs[0]:
            out.append(Finding("plain_forest_coverage", f"the plain area needs "
                               f"{fam.rhs[0]:,.0f} mu of forest; existing forest "
                               f"({fam.offset:,.0f} mu) plus all {best:,.0f} mu of candidate land "
                               f"that may become forest falls short", float(fam.rhs[0]),
                               fam.offset + best))
    return out
