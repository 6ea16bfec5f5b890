"""Reporting: the files a plan is written to, atomically — plan.csv, summary.json, plan.gpkg
(`export`, with the QGIS layers and styles of `qgis`), plan.xlsx (`excel`, tables in `tables`),
report.html (`report`), the maps (`maps`) — and Marxan input files / solutions (`marxan`).

May import: `optimizer.model`, `optimizer.blocks`, `optimizer.plan`, `instances`.
"""
