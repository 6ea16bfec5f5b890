"""The outputs of a five-year schedule (`[phasing]`), all recomputed from the plan's actions and
years and the instance: the per-year table of summary.json, annual_plan.csv (the annual
reduction plan, township x year), projects.csv (the project library 减量腾退项目库: one row per
project, a connected group of plots vacated in the same year to the same use), years_map.png (one
panel per year) and milestones.png (cumulative reduction against the milestones)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from scipy.sparse import csgraph  # noqa: E402

from instances.instance import Instance  # noqa: E402
from optimizer.model.kpi import ACTIONS, FARMLAND, FOREST, KEEP  # noqa: E402
from optimizer.model.targets import instance_targets, plot_rules  # noqa: E402
from optimizer.plan.solve import Plan  # noqa: E402
from optimizer.reporting.maps import COLOURS  # noqa: E402

EARLIER = "#8c8c8c"  # vacated in an earlier year


def _plot_cost(inst: Instance, plan: Plan) -> np.ndarray:
    r = plot_rules(inst, plan.scenario)
    return np.select([plan.actions == FARMLAND, plan.actions == FOREST],
                     [r.cost_farmland, r.cost_forest], 0.0)


def year_table(inst: Instance, plan: Plan) -> list[dict]:
    """summary.json's per-year rows: vacated, farmland, forest, cost; budget; milestone, met."""
    s, years = plan.scenario, plan.years
    assert years is not None
    ph = s.phasing
    dt = instance_targets(inst, s)
    area, cost = inst.plots["area_mu"].to_numpy(float), _plot_cost(inst, plan)
    budgets, shares = ph.budgets(dt.budget_wan), ph.milestone_shares()
    rows, cum_budget = [], 0.0
    for k, year in enumerate(ph.years):
        now, by = years == year, (years > 0) & (years <= year)
        cum_budget += budgets[k]
        need = shares[k] * dt.total_reduction_mu
        cum_mu = float(area[by].sum())
        spent, cum_spent = float(cost[now].sum()), float(cost[by].sum())
        budget_met = (cum_spent <= cum_budget * (1 + 1e-6) + 1e-6 if ph.carry_over
                      else spent <= budgets[k] * (1 + 1e-6) + 1e-6)
        rows.append({
            "year": year, "vacated_mu": float(area[now].sum()), "plots": int(now.sum()),
            "farmland_mu": float(area[now & (plan.actions == FARMLAND)].sum()),
            "forest_mu": float(area[now & (plan.actions == FOREST)].sum()),
            "cost_wan": spent, "budget_wan": budgets[k], "cumulative_cost_wan": cum_spent,
            "cumulative_budget_wan": cum_budget, "budget_met": bool(budget_met),
            "cumulative_vacated_mu": cum_mu, "milestone_share": shares[k],
            "milestone_mu": need, "milestone_met": bool(cum_mu >= need * (1 - 1e-6) - 1e-6),
        })
    return rows


def annual_plan(inst: Instance, plan: Plan) -> pd.DataFrame:
    """Township x year: vacated mu (farmland, forest), plots and cost."""
    years = plan.years
    assert years is not None
    vac = years > 0
    p = inst.plots
    cost = _plot_cost(inst, plan)
    area = p["area_mu"].to_numpy(float)
    df = pd.DataFrame({"township": p["township"].astype(str).to_numpy()[vac],
                       "year": years[vac], "mu": area[vac],
                       "farmland_mu": np.where(plan.actions == FARMLAND, area, 0.0)[vac],
                       "forest_mu": np.where(plan.actions == FOREST, area, 0.0)[vac],
                       "plots": 1, "cost_wan": cost[vac]})
    out = df.groupby(["township", "year"], as_index=False).sum()
    return out.round({"mu": 3, "farmland_mu": 3, "forest_mu": 3, "cost_wan": 2})


def project_ids(inst: Instance, actions: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Project per plot (-1 kept): connected plots vacated in the same year to the same use."""
    vac = np.flatnonzero(actions != KEEP)
    proj = np.full(len(actions), -1)
    if not len(vac):
        return proj
    sub = inst.adjacency[vac][:, vac].tocoo()
    same = (years[vac][sub.row] == years[vac][sub.col]) & (actions[vac][sub.row]
                                                           == actions[vac][sub.col])
    g = sp.csr_matrix((np.ones(same.sum()), (sub.row[same], sub.col[same])),
                      shape=(len(vac), len(vac)))
    _, lab = csgraph.connected_components(g, directed=False)
    # number projects by year, then by size
    key = pd.DataFrame({"lab": lab, "year": years[vac], "area": inst.plots["area_mu"]
                        .to_numpy(float)[vac]}).groupby("lab").agg(year=("year", "first"),
                                                                    area=("area", "sum"))
    order = key.sort_values(["year", "area"], ascending=[True, False]).index.to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    proj[vac] = rank[lab]
    return proj


def projects(inst: Instance, plan: Plan) -> pd.DataFrame:
    """The project library: one row per project, with its year, use, township(s) and size."""
    years = plan.years
    assert years is not None
    proj = project_ids(inst, plan.actions, years)
    vac = proj >= 0
    p = inst.plots
    area = p["area_mu"].to_numpy(float)
    df = pd.DataFrame({"project": proj[vac], "year": years[vac],
                       "action": np.asarray(ACTIONS)[plan.actions[vac]],
                       "township": p["township"].astype(str).to_numpy()[vac],
                       "area_mu": area[vac], "cost_wan": _plot_cost(inst, plan)[vac],
                       "lost_output_wan": p["output_wan"].to_numpy(float)[vac],
                       "plot_id": p["plot_id"].astype(str).to_numpy()[vac]})
    main_town = (df.groupby(["project", "township"])["area_mu"].sum().reset_index()
                 .sort_values("area_mu", ascending=False).drop_duplicates("project")
                 .set_index("project")["township"])
    out = df.groupby("project").agg(
        year=("year", "first"), action=("action", "first"), plots=("plot_id", "size"),
        area_mu=("area_mu", "sum"), cost_wan=("cost_wan", "sum"),
        lost_output_wan=("lost_output_wan", "sum"), townships=("township", "nunique"),
        plot_ids=("plot_id", lambda s: " ".join(s)))
    out.insert(2, "township", main_town.reindex(out.index).to_numpy())
    out = out.reset_index().round({"area_mu": 3, "cost_wan": 2, "lost_output_wan": 2})
    out["project"] = [f"P{y}-{k + 1:04d}" for k, y in enumerate(out["year"])]
    return out


def draw_years_map(inst: Instance, plan: Plan, path: Path) -> None:
    """Small multiples: one panel per year, that year's plots in colour, earlier ones grey."""
    years = plan.years
    assert years is not None
    ys = plan.scenario.phasing.years
    cols = min(3, len(ys))
    rows = -(-len(ys) // cols)
    x0, y0, x1, y1 = inst.geometry.total_bounds
    aspect = min(2.0, max(0.5, (y1 - y0) / max(x1 - x0, 1.0)))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.2 * aspect * rows + 0.6),
                             dpi=100, squeeze=False)
    lu = inst.plots["land_use"].to_numpy()
    for ax, year in zip(axes.ravel(), ys, strict=False):
        colours = np.full(len(years), COLOURS["other"], dtype=object)
        colours[lu == "farmland"] = COLOURS["existing_farmland"]
        colours[(years > 0) & (years < year)] = EARLIER
        now = years == year
        colours[now & (plan.actions == FARMLAND)] = COLOURS["farmland"]
        colours[now & (plan.actions == FOREST)] = COLOURS["forest"]
        inst.geometry.plot(ax=ax, color=list(colours), linewidth=0)
        area = inst.plots["area_mu"].to_numpy(float)[now].sum()
        ax.set_title(f"{year}: {area:,.0f} mu, {now.sum():,} plots", fontsize=9)
        ax.set_axis_off()
        ax.set_aspect("equal")
    for ax in axes.ravel()[len(ys):]:
        ax.set_axis_off()
    fig.suptitle(f"{inst.name}: vacated each year (farmland yellow, forest green, earlier grey)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def draw_milestones(table: list[dict], path: Path, title: str) -> None:
    years = [r["year"] for r in table]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.bar(years, [r["vacated_mu"] for r in table], color="#bdbdbd", label="vacated in the year")
    ax.plot(years, [r["cumulative_vacated_mu"] for r in table], "o-", color="#2166ac",
            label="cumulative reduction")
    ax.plot(years, [r["milestone_mu"] for r in table], "s--", color="#d6604d",
            label="milestone (cumulative)")
    ax.set_xticks(years)
    ax.set_ylabel("mu")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
