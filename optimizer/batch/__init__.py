"""Many scenarios at once: scenario specs, keys and grids (`specs`), resumable sweeps on a local
pool or Dask (`sweep`), the cost frontier (`frontier`) and the comparison of two plans
(`compare`).

May import: every stage above it (`model`, `blocks`, `plan`, `reporting`), `instances`, `solvers`.
"""
