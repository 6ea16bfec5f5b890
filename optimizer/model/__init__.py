"""The model stage: a scenario (TOML, seed defaults) and its district targets, every target as
one linear definition shared by the model and the checker (`targets`), the array model built
from them (`build`), the presolve that proves impossible targets, the compactness terms, and the
KPIs evaluated on any plan (`kpi`).

May import: `instances`, `solvers`. Nothing else of `optimizer`.
"""
