"""An LP kept in one HiGHS object between cut rounds: rows are appended (one ``addRows`` call on
CSR arrays) and the next solve starts from the last basis, so a round costs a few dual simplex
pivots instead of a cold solve (the back-ends' ``solve`` builds a new model each call)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from solvers.highs import use_threads
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

        self._hs = highspy
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        use_threads(h, 1)
        csc = model.A.tocsc()
        csc.sort_indices()
        h.passModel(model.num_cols, model.num_rows, int(csc.nnz),
                    int(highspy.MatrixFormat.kColwise), int(highspy.ObjSense.kMinimize),
                    float(model.offset), np.ascontiguousarray(model.c, np.float64),
                    np.ascontiguousarray(model.col_lower, np.float64),
                    np.ascontiguousarray(model.col_upper, np.float64),
                    np.ascontiguousarray(model.row_lower, np.float64),
                    np.ascontiguousarray(model.row_upper, np.float64),
                    csc.indptr.astype(np.int32), csc.indices.astype(np.int32),
                    csc.data.astype(np.float64),
                    np.zeros(model.num_cols, np.int32))
        self._h: Any = h
        self.num_cols = model.num_cols
        self.num_rows = model.num_rows

    def add_rows(self, A: sp.spmatrix, lower: np.ndarray, upper: np.ndarray) -> None:
        csr = sp.csr_matrix(A)
        csr.sort_indices()
        if csr.shape[1] != self.num_cols:
            raise ValueError(f"rows have {csr.shape[1]} columns, the LP {self.num_cols}")
        if not csr.shape[0]:
            return
        self._h.addRows(csr.shape[0], np.ascontiguousarray(lower, np.float64),
                        np.ascontiguousarray(upper, np.float64), int(csr.nnz),
                        csr.indptr[:-1].astype(np.int32), csr.indices.astype(np.int32),
                        csr.data.astype(np.float64))
        self.num_rows += csr.shape[0]

    def delete_rows(self, rows: np.ndarray) -> None:
        """Remove rows (indices into the current rows); later rows move up."""
        rows = np.unique(np.asarray(rows, np.int32))
        if len(rows):
            self._h.deleteRows(len(rows), rows)
            self.num_rows -= len(rows)

    def row_activity(self) -> np.ndarray:
        """A x at the last solution."""
        return np.asarray(self._h.getSolution().row_value, np.float64).copy()

    def solve(self, time_limit: float | None = None) -> LPSolution:
        """Solve from the last basis; `time_limit` in seconds for this call."""
        h = self._h
        if time_limit is not None:  # HiGHS's clock runs over the object's life: extend it
            h.setOptionValue("time_limit", float(h.getRunTime() + max(0.0, time_limit)))
        t0 = time.perf_counter()
        h.run()
        self.seconds = time.perf_counter() - t0
        status = h.getModelStatus()
        if status == self._hs.HighsModelStatus.kOptimal:
            x = np.asarray(h.getSolution().col_value, np.float64).copy()
            return LPSolution(Termination.OPTIMAL, float(h.getInfo().objective_function_value), x)
        if status == self._hs.HighsModelStatus.kInfeasible:
            return LPSolution(Termination.INFEASIBLE, None, None)
        if status == self._hs.HighsModelStatus.kTimeLimit:
            return LPSolution(Termination.TIME_LIMIT, None, None)
        return LPSolution(Termination.OTHER, None, None)
