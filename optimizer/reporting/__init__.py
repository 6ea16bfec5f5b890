"""Reporting: the files a plan is written to, atomically — plan.csv, summary.json, plan.gpkg
(`export`) — the maps (`maps`), and the five-year schedule's annual tables and charts
(`annual`).

May import: `optimizer.model`, `optimizer.blocks`, `optimizer.plan`, `instances`.
"""
