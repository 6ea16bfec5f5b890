"""The array model: what every back-end consumes. Knows nothing of land or geometry.

Minimise ``c @ x + offset`` subject to ``row_lower <= A @ x <= row_upper`` and
``col_lower <= x <= col_upper``, with ``integrality[j]`` marking integer columns.
Named blocks let the caller map columns/rows back to meaning (e.g. ``"farmland"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass
class ArrayModel:
    c: np.ndarray
    A: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray  # bool per column
    offset: float = 0.0
    col_blocks: dict[str, slice] = field(default_factory=dict)
    row_blocks: dict[str, slice] = field(default_factory=dict)

    @property
    def num_cols(self) -> int:
        return int(self.c.shape[0])

    @property
    def num_rows(self) -> int:
        return int(self.A.shape[0])

    def validate(self) -> None:
        """Raise ValueError if shapes or bounds are inconsistent."""
        n, m = self.num_cols, self.num_rows
        if self.A.shape != (m, n):
            raise ValueError(f"A has shape {self.A.shape}, expected ({m}, {n})")
        for name, arr, size in (
            ("row_lower", self.row_lower, m),
            ("row_upper", self.row_upper, m),
            ("col_lower", self.col_lower, n),
            ("col_upper", self.col_upper, n),
            ("integrality", self.integrality, n),
        ):
            if arr.shape != (size,):
                raise ValueError(f"{name} has shape {arr.shape}, expected ({size},)")
        if np.isnan(self.c).any() or np.isnan(self.A.data).any():
            raise ValueError("objective or matrix contains NaN")
        if (self.row_lower > self.row_upper).any() or (self.col_lower > self.col_upper).any():
            raise ValueError("a lower bound exceeds its upper bound")

    def add_rows(
        self, rows: sp.spmatrix, lower: np.ndarray, upper: np.ndarray, block: str | None = None
    ) -> ArrayModel:
        """Return a new model with extra rows (e.g. cuts) appended."""
        ...

    def add_cols(
        self,
        c: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        integrality: np.ndarray,
        block: str | None = None,
        A_cols: sp.spmatrix | None = None,
    ) -> ArrayModel:
        """Return a new model with extra columns appended (A_cols gives their existing-row entries)."""
        ...
