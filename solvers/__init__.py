"""Solver back-ends for the ArrayModel. Heavy libraries are imported inside each back-end's
``solve``; importing this package costs only numpy and scipy."""

from __future__ import annotations

from typing import Any

from solvers.base import (
    CAPABILITIES,
    Backend,
    Cuts,
    IncumbentCallback,
    Separator,
    SolveOptions,
    SolveRequest,
)
from solvers.cbc import CbcBackend
from solvers.cpsat import CpSatBackend
from solvers.highs import HighsBackend
from solvers.model import ArrayModel
from solvers.result import Result, Termination, relative_gap
from solvers.scip import ScipBackend
from solvers.warm_lp import LPSolution, WarmLP

BACKENDS: dict[str, type[Backend]] = {
    "highs": HighsBackend,
    "cbc": CbcBackend,
    "cpsat": CpSatBackend,
    "scip": ScipBackend,
}


def get_backend(name: str, **settings: Any) -> Backend:
    """A back-end by name; ``settings`` go to its constructor (e.g. CP-SAT's continuous_step)."""
    try:
        cls = BACKENDS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown solver back-end {name!r}; valid names: {', '.join(sorted(BACKENDS))}"
        ) from None
    return cls(**settings)


__all__ = [
    "ArrayModel",
    "BACKENDS",
    "CAPABILITIES",
    "Backend",
    "CbcBackend",
    "CpSatBackend",
    "Cuts",
    "HighsBackend",
    "IncumbentCallback",
    "LPSolution",
    "Result",
    "ScipBackend",
    "Separator",
    "SolveOptions",
    "SolveRequest",
    "Termination",
    "WarmLP",
    "get_backend",
    "relative_gap",
]
