"""The plan's tables for people: targets, farmland blocks, townships (the plot table is
`export.plan_table`). Every figure is recomputed from the plan's actions and the instance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from instances.instance import Instance

# English column keys -> Chinese headers; action words. Shared by plan.xlsx and report.html.
ZH = {
    "plot_id": "地块编号", "action": "处置方式", "area_mu": "面积（亩）",
    "demolition_cost_wan": "拆除成本（万元）", "restoration_cost_wan": "复垦/造林成本（万元）",
    "total_cost_wan": "总成本（万元）", "lost_output_wan": "减少产值（万元/年）",
    "priority_share": "重点地区占比", "district": "区", "township": "乡镇",
    "block_id": "耕地集中连片编号", "block_mu": "连片面积（亩）",
    "target": "指标", "scope": "范围", "unit": "单位", "sense": "要求", "required": "要求值",
    "achieved": "实现值", "slack": "余量", "met": "是否达标",
    "plots": "地块数", "touches_existing_farmland": "与现状耕地相连",
    "townships": "涉及乡镇", "candidate_plots": "集体建设用地地块数",
    "vacated_mu": "腾退面积（亩）", "farmland_mu": "复垦为耕地（亩）", "forest_mu": "造林（亩）",
    "cost_wan": "成本（万元）", "target_mu": "减量任务（亩）", "budget_wan": "预算（万元）",
}
ACTION_ZH = {"keep": "保留", "farmland": "复垦为耕地", "forest": "造林"}
YES_NO_ZH = {True: "是", False: "否"}
SHEET_ZH = {"plan": "地块方案", "targets": "指标", "blocks": "耕地连片", "townships": "乡镇"}


def targets_table(plan) -> pd.DataFrame:
    rows = []
    for c in plan.checks:
        share = c.share_required is not None
        rows.append({
            "target": c.label, "scope": c.scope, "unit": "share" if share else c.unit,
            "sense": c.sense,
            "required": c.share_required if share else c.required,
            "achieved": c.share_achieved if share else c.achieved,
            "slack": c.slack, "met": bool(c.met)})
    return pd.DataFrame(rows, columns=["target", "scope", "unit", "sense", "required",
                                       "achieved", "slack", "met"])


def blocks_table(inst: Instance, plan, table: pd.DataFrame) -> pd.DataFrame:
    """One row per block of new farmland: plots, area, townships, whether it touches existing
    farmland (the block rule's first way to be admissible)."""
    cols = ["block_id", "plots", "area_mu", "touches_existing_farmland", "townships"]
    inb = table["block_id"].to_numpy() >= 0
    if not inb.any():
        return pd.DataFrame(columns=cols)
    touches = inst.plots["touches_farmland"].to_numpy(bool)
    sub = pd.DataFrame({"block_id": table["block_id"].to_numpy()[inb],
                        "area_mu": table["area_mu"].to_numpy()[inb],
                        "touch": touches[inb], "township": table["township"].to_numpy()[inb]})
    g = sub.groupby("block_id")
    out = pd.DataFrame({
        "plots": g.size(), "area_mu": g["area_mu"].sum().round(3),
        "touches_existing_farmland": g["touch"].any(),
        "townships": g["township"].agg(lambda s: "、".join(sorted(set(s)))),
    }).reset_index()
    return out[cols].sort_values("area_mu", ascending=False, ignore_index=True)


def townships_table(inst: Instance, plan, table: pd.DataFrame) -> pd.DataFrame:
    act = plan.actions
    area = table["area_mu"].to_numpy(float)
    frame = pd.DataFrame({
        "township": table["township"].to_numpy(), "plots": 1,
        "candidate_plots": inst.plots["collective"].to_numpy(bool).astype(int),
        "vacated_mu": np.where(act > 0, area, 0.0), "farmland_mu": np.where(act == 1, area, 0.0),
        "forest_mu": np.where(act == 2, area, 0.0),
        "cost_wan": table["total_cost_wan"].to_numpy(float),
        "lost_output_wan": table["lost_output_wan"].to_numpy(float)})
    out = frame.groupby("township").sum().round(3).reset_index()
    s = plan.scenario
    out["target_mu"] = out["township"].map(s.targets.township_reduction_mu)
    out["budget_wan"] = out["township"].map(s.budget.township_wan)
    return out


def translate(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Headers and action / yes-no words for `lang`: en, zh, or both (中文 English)."""
    if lang == "en":
        return df
    df = df.copy()
    if "action" in df.columns:
        words = df["action"].map(ACTION_ZH).fillna(df["action"])
        df["action"] = words if lang == "zh" else words + " " + df["action"]
    for col in ("met", "touches_existing_farmland"):
        if col in df.columns:
            zh = df[col].map(YES_NO_ZH)
            df[col] = zh if lang == "zh" else zh + " " + df[col].map({True: "yes", False: "no"})
    names = {c: ZH.get(c, c) if lang == "zh" else f"{ZH[c]} {c}" if c in ZH else c
             for c in df.columns}
    return df.rename(columns=names)
