"""Many scenarios at once: scenario specs, keys and grids (`specs`), resumable sweeps on a local
pool or Dask (`sweep`), the cost frontier (`frontier`), the comparison of two plans
(`compare`), near-optimal plan portfolios (`portfolio`) and the replacement cost of each vacated
plot (`importance`), both on the shared model edits, bound screen and task runner of
`alternatives`.

May import: every stage above it (`model`, `blocks`, `plan`, `reporting`), `instances`, `solvers`.
"""
