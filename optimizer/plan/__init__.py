"""The plan stage: solving a scenario on an instance into a `Plan` with every KPI recomputed
from its actions (`solve`), and checking any plan file independently against the geometry
(`check`), the output folder written as one set (`runset`) and spreadsheet-safe CSV cells
(`cells`), which both the writers (reporting) and the readers (check) use.

May import: `optimizer.model`, `optimizer.blocks`, `instances`, `solvers`.
"""
