"""Back-end contract (after linopy's solvers.py): a back-end consumes an ArrayModel and returns a
Result. It declares its capabilities; callers check them instead of guessing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np
import scipy.sparse as sp

from solvers.model import ArrayModel
from solvers.result import Result


@dataclass
class SolveOptions:
    time_limit: float | None = None  # seconds, wall clock
    mip_gap: float = 1e-4            # relative gap at which to stop
    threads: int = 1
    verbose: bool = False
    seed: int = 0


@dataclass
class Cuts:
    """Rows to add: lower <= A @ x <= upper, A over the model's columns."""

    A: sp.csr_matrix
    lower: np.ndarray
    upper: np.ndarray

    def __len__(self) -> int:
        return int(self.A.shape[0])


class Separator(Protocol):
    """Lazy-row oracle. Given a candidate x, return violated rows, or None / empty if none.

    integral=True: x is an integer-feasible candidate; returned rows MUST cut it off (the
    back-end then rejects x). integral=False: x is a fractional LP point (optional cuts).
    """

    def __call__(self, x: np.ndarray, integral: bool) -> Cuts | None: ...


# Called with each new incumbent (x, objective). Returning True asks the solver to stop.
IncumbentCallback = Callable[[np.ndarray, float], bool | None]

# A primal heuristic: given the current LP point, a full solution vector to try, or None.
# The back-end checks the proposal (rows, bounds, integrality, lazy rows) before accepting it.
Heuristic = Callable[[np.ndarray], np.ndarray | None]

CAPABILITIES = frozenset(
    {
        "lazy_rows",      # accepts a Separator and enforces it during the search
        "warm_start",     # uses a start solution
        "incumbents",     # reports incumbents through on_incumbent
        "continuous",     # handles continuous columns exactly (CP-SAT scales them)
        "heuristic",      # calls a caller's primal heuristic during the search
    }
)


@dataclass(frozen=True)
class SolveRequest:
    """Everything one solve is asked to do; a back-end's ``_solve`` reads only what it uses."""

    model: ArrayModel
    options: SolveOptions = field(default_factory=SolveOptions)
    warm_start: np.ndarray | None = None
    separator: Separator | None = None
    on_incumbent: IncumbentCallback | None = None
    heuristic: Heuristic | None = None

    def wanted(self) -> set[str]:
        """The capabilities this request needs."""
        asked = {
            "lazy_rows": self.separator is not None,
            "incumbents": self.on_incumbent is not None,
            "warm_start": self.warm_start is not None,
            "heuristic": self.heuristic is not None,
        }
        return {c for c, on in asked.items() if on}


class Backend(ABC):
    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]

    def solve(
        self,
        model: ArrayModel,
        options: SolveOptions | None = None,
        *,
        warm_start: np.ndarray | None = None,
        separator: Separator | None = None,
        on_incumbent: IncumbentCallback | None = None,
        heuristic: Heuristic | None = None,
    ) -> Result:
        """Solve; never raise for solver outcomes (infeasible, time limit): report them.

        Raises ValueError for a request the back-end cannot honour (see ``check_request``).
        """
        req = SolveRequest(model, options or SolveOptions(), warm_start, separator, on_incumbent,
                           heuristic)
        self.check_request(req)
        return self._solve(req)

    @abstractmethod
    def _solve(self, req: SolveRequest) -> Result:
        """The back-end's own work, on a checked request (capabilities, shapes)."""

    def check_request(self, req: SolveRequest) -> None:
        """Raise ValueError for an invalid model or a feature this back-end lacks; a separator or
        callback silently ignored would give wrong plans, so it is refused instead."""
        req.model.validate()
        missing = sorted(req.wanted() - self.capabilities)
        if missing:
            raise ValueError(
                f"back-end {self.name!r} lacks {missing}; it offers {sorted(self.capabilities)}"
            )
        if req.warm_start is not None and np.shape(req.warm_start) != (req.model.num_cols,):
            raise ValueError(
                f"warm_start has shape {np.shape(req.warm_start)}, expected ({req.model.num_cols},)"
            )
