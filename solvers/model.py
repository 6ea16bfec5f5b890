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

        for kind, blocks, size in (("col", self.col_blocks, n), ("row", self.row_blocks, m)):
            for name, block in blocks.items():
                start, stop, step = block.indices(size)
                if step != 1 or block.start != start or block.stop != stop:
                    raise ValueError(f"{kind} block {name!r} = {block} is not inside 0..{size}")

    def add_rows(
        self, rows: sp.spmatrix, lower: np.ndarray, upper: np.ndarray, block: str | None = None
    ) -> ArrayModel:
        """Return a new model with extra rows (e.g. cuts) appended.

        With ``block`` the new rows are named; an existing block may only be extended when it
        ends at the current last row (cut rounds appending to ``"cuts"``), so blocks stay slices.
        """
        new = sp.csr_matrix(rows, dtype=np.float64)
        k = int(new.shape[0])
        if new.shape[1] != self.num_cols:
            raise ValueError(f"rows have {new.shape[1]} columns, model has {self.num_cols}")
        lower = _as_vector(lower, k, "lower")
        upper = _as_vector(upper, k, "upper")
        m = self.num_rows
        return ArrayModel(
            c=self.c,
            A=sp.vstack([self.A, new], format="csr"),
            row_lower=np.concatenate([self.row_lower, lower]),
            row_upper=np.concatenate([self.row_upper, upper]),
            col_lower=self.col_lower,
            col_upper=self.col_upper,
            integrality=self.integrality,
            offset=self.offset,
            col_blocks=dict(self.col_blocks),
            row_blocks=_extend_blocks(self.row_blocks, block, m, k),
        )

    def add_cols(
        self,
        c: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        integrality: np.ndarray,
        block: str | None = None,
        A_cols: sp.spmatrix | None = None,
    ) -> ArrayModel:
        """Return a new model with extra columns appended.

        ``A_cols`` (rows x new columns) gives their entries in the existing rows; None = zeros.
        """
        c = np.asarray(c, dtype=np.float64).ravel()
        k = int(c.shape[0])
        m, n = self.num_rows, self.num_cols
        if A_cols is None:
            A_cols = sp.csr_matrix((m, k))
        if A_cols.shape != (m, k):
            raise ValueError(f"A_cols has shape {A_cols.shape}, expected ({m}, {k})")
        return ArrayModel(
            c=np.concatenate([self.c, c]),
            A=sp.hstack([self.A, A_cols], format="csr", dtype=np.float64),
            row_lower=self.row_lower,
            row_upper=self.row_upper,
            col_lower=np.concatenate([self.col_lower, _as_vector(lower, k, "lower")]),
            col_upper=np.concatenate([self.col_upper, _as_vector(upper, k, "upper")]),
            integrality=np.concatenate(
                [self.integrality, np.broadcast_to(np.asarray(integrality, dtype=bool), (k,))]
            ),
            offset=self.offset,
            col_blocks=_extend_blocks(self.col_blocks, block, n, k),
            row_blocks=dict(self.row_blocks),
        )

    def is_bounded(self) -> bool:
        """True when every column has finite bounds (then the objective is bounded)."""
        return bool(np.isfinite(self.col_lower).all() and np.isfinite(self.col_upper).all())

    def objective_value(self, x: np.ndarray) -> float:
        """``c @ x + offset``: the objective every back-end reports, whatever it optimised."""
        return float(self.c @ x + self.offset)

    def round_integers(self, x: np.ndarray, tol: float = 1e-6) -> np.ndarray:
        """Copy of x with integer columns within ``tol`` of an integer snapped to it (solvers
        return 0.9999999 and -0.0); farther values are left for ``max_violation`` to flag."""
        out = np.array(x, dtype=np.float64, copy=True)
        near = np.round(out)
        snap = self.integrality & (np.abs(out - near) <= tol)
        out[snap] = near[snap] + 0.0  # + 0.0 turns -0.0 into 0.0
        return out

    def max_violation(self, x: np.ndarray) -> float:
        """Largest absolute violation of a row, a column bound or integrality by x (0 if none)."""
        ax = self.A @ x
        parts = [
            self.row_lower - ax,
            ax - self.row_upper,
            self.col_lower - x,
            x - self.col_upper,
            np.abs(x - np.round(x))[self.integrality],
        ]
        worst = max((float(p.max()) for p in parts if p.size), default=0.0)
        return max(worst, 0.0)


def _as_vector(values: np.ndarray | float, size: int, name: str) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(values, dtype=np.float64), (size,)).copy()
    if arr.shape != (size,):
        raise ValueError(f"{name} has shape {arr.shape}, expected ({size},)")
    return arr


def _extend_blocks(
    blocks: dict[str, slice], block: str | None, start: int, count: int
) -> dict[str, slice]:
    out = dict(blocks)
    if block is None:
        return out
    old = out.get(block)
    if old is None:
        out[block] = slice(start, start + count)
    elif old.stop == start:
        out[block] = slice(old.start, start + count)
    else:
        raise ValueError(f"block {block!r} = {old} does not end at {start}; cannot extend it")
    return out
