"""Reporting: the files a plan is written to, atomically — plan.csv, summary.json, plan.gpkg
(`export`, with the QGIS layers and styles of `qgis`), plan.xlsx (`excel`, tables in `tables`),
report.html (`report`), the maps (`maps`), Marxan input files / solutions (`marxan`), the
five-year schedule's annual tables and charts (`annual`), and the batch folders' report.html
pages — sweep, compare, portfolio, importance — built from plain tables and per-plot colours that
`batch` hands over (`pages`).

May import: `optimizer.model`, `optimizer.blocks`, `optimizer.plan`, `instances`.
"""
