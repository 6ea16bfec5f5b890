"""Reporting: the files a plan is written to, atomically — plan.csv, summary.json, plan.gpkg
(`export`) — and the maps (`maps`).

May import: `optimizer.model`, `optimizer.blocks`, `optimizer.plan`, `instances`.
"""
