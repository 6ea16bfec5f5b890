"""The plan stage: solving a scenario on an instance into a `Plan` with every KPI recomputed
from its actions (`solve`), and checking any plan file independently against the geometry
(`check`).

May import: `optimizer.model`, `optimizer.blocks`, `instances`, `solvers`.
"""
