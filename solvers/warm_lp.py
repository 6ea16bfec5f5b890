"""An LP kept in one HiGHS object between cut rounds: rows are appended (one ``addRows`` call on
CSR arrays) and the next solve starts from the last basis, so a round costs a few dual simplex
pivots instead of a cold solve (the back-ends' ``solve`` builds a new model each call)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from solvers.highs import pass_model, status_map, use_threads
from solvers.model import ArrayModel
from solvers.result import Termination


@dataclass
class LPSolution:
    termination: Termination
    objective: float | None  # only where OPTIMAL
    x: np.ndarray | None  # only where OPTIMAL


class WarmLP:
    """The LP relaxation of `model` (integrality dropped), single-threaded."""

    def __init__(self, model: ArrayModel) -> None:
        import highspy

        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        use_threads(h, 1)
        pass_model(h, model, np.zeros(model.num_cols, bool))
        self._h: Any = h
        self.num_cols = model.num_cols
        self._lower = np.asarray(model.row_lower, np.float64)  # the rows' bounds, as now
        self._upper = np.asarray(model.row_upper, np.float64)

    @property
    def num_rows(self) -> int:
        return len(self._lower)

    def add_rows(self, A: sp.spmatrix, lower: np.ndarray, upper: np.ndarray) -> None:
        csr = sp.csr_matrix(A)
        csr.sort_indices()
        if csr.shape[1] != self.num_cols:
            raise ValueError(f"rows have {csr.shape[1]} columns, the LP {self.num_cols}")
        if not csr.shape[0]:
            return
        lower = np.broadcast_to(np.asarray(lower, np.float64), csr.shape[0])
        upper = np.broadcast_to(np.asarray(upper, np.float64), csr.shape[0])
        self._h.addRows(csr.shape[0], np.ascontiguousarray(lower), np.ascontiguousarray(upper),
                        int(csr.nnz), csr.indptr[:-1].astype(np.int32),
                        csr.indices.astype(np.int32), csr.data.astype(np.float64))
        self._lower = np.concatenate([self._lower, lower])
        self._upper = np.concatenate([self._upper, upper])

    def delete_rows(self, rows: np.ndarray) -> None:
        """Remove rows (indices into the current rows); later rows move up."""
        rows = np.unique(np.asarray(rows, np.int32))
        if len(rows):
            self._h.deleteRows(len(rows), rows)
            keep = np.ones(self.num_rows, bool)
            keep[rows] = False
            self._lower, self._upper = self._lower[keep], self._upper[keep]

    def delete_slack(self, first: int, slack: float) -> int:
        """Delete the rows from `first` on that the last solution leaves slack by more than
        `slack` on both sides (cut rows no longer binding); how many."""
        act = self.row_activity()[first:]
        loose = np.minimum(act - self._lower[first:], self._upper[first:] - act) > slack
        self.delete_rows(first + np.flatnonzero(loose))
        return int(loose.sum())

    def row_activity(self) -> np.ndarray:
        """A x at the last solution."""
        return np.asarray(self._h.getSolution().row_value, np.float64).copy()

    def solve(self, time_limit: float | None = None) -> LPSolution:
        """Solve from the last basis; `time_limit` in seconds for this call."""
        h = self._h
        if time_limit is not None:  # HiGHS's clock runs over the object's life: extend it
            h.setOptionValue("time_limit", float(h.getRunTime() + max(0.0, time_limit)))
        h.run()
        termination = status_map().get(h.getModelStatus(), Termination.OTHER)
        if termination is not Termination.OPTIMAL:
            return LPSolution(termination, None, None)
        x = np.asarray(h.getSolution().col_value, np.float64).copy()
        return LPSolution(termination, float(h.getInfo().objective_function_value), x)
