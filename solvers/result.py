"""Two-level solve status, after PyOptInterface: why the solver stopped, and whether a
feasible solution exists. A time limit is never mapped to OPTIMAL."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class Termination(StrEnum):
    OPTIMAL = "optimal"            # proven within the requested gap
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    NODE_LIMIT = "node_limit"
    INTERRUPTED = "interrupted"
    NUMERICAL = "numerical_error"
    ERROR = "error"
    OTHER = "other"


@dataclass
class Result:
    solver: str
    termination: Termination
    has_solution: bool
    objective: float | None = None   # of x, including offset
    bound: float | None = None       # dual bound (minimisation: lower bound)
    gap: float | None = None         # |obj - bound| / max(1e-9, |obj|); None without solution
    x: np.ndarray | None = None
    build_time: float = 0.0          # seconds spent handing the arrays to the solver
    solve_time: float = 0.0          # seconds inside the solver
    message: str = ""
    stats: dict[str, float] = field(default_factory=dict)  # nodes, cuts, rounds, ...
    # an LP's row duals y (minimisation: reduced costs are c - A.T @ y; y >= 0 on a row at its
    # lower bound, <= 0 at its upper bound); None for a MIP or where the back-end gives none
    row_dual: np.ndarray | None = None


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """The gap every back-end reports: ``|obj - bound| / max(|obj|, 1e-9)``; None unless both
    exist and are finite (a solver's own gap formula differs between solvers)."""
    if objective is None or bound is None:
        return None
    if not (np.isfinite(objective) and np.isfinite(bound)):
        return None
    return abs(objective - bound) / max(abs(objective), 1e-9)
