"""The model stage: a scenario (TOML, seed defaults) and its district targets, every target as
one linear definition shared by the model and the checker (`targets`), the array model built
from them (`build`), the presolve that proves impossible targets, the compactness terms, the
KPIs evaluated on any plan (`kpi`), and the five-year schedule: its settings (`schedule`) and
the time-expanded model (`phasing`).

May import: `instances`, `solvers`. Nothing else of `optimizer`.
"""
