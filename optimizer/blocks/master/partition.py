"""The model split along the candidate clusters: which rows are local to one cluster and which
couple clusters (the aggregate target rows), which columns are plot columns of a cluster and
which are extra columns (shortfalls, ...) that belong to no cluster.

Candidate clusters are the connected components of the candidate adjacency (the farmland part's
graph); every rule part's graph is a sub-graph of it, so no block crosses a cluster. A row is
*local* when every column it touches is a plot column of one cluster and it is no target row;
every other row (a target row, or one touching two clusters or an extra column) is a *coupling*
row. Fixing the coupling rows' duals, the model
falls apart into one problem per cluster plus one per extra column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimizer.blocks.rule import Rule
from solvers.model import ArrayModel

# named row blocks that may be local: one action per plot and the rule's own rows (presolve rows
# and cuts, valid for every rule-abiding plan); the target rows always couple
LOCAL_BLOCKS = ("one_action", "contiguity_presolve", "cuts")


@dataclass
class Partition:
    nc: int  # candidate plots; plot columns: farmland [0, nc), forest [nc, 2 nc)
    comp: np.ndarray  # cluster of each candidate plot
    k: int  # clusters
    local: np.ndarray  # local rows (model row indices)
    local_cluster: np.ndarray  # the cluster of each local row
    coupling: np.ndarray  # coupling rows (model row indices)
    extra: np.ndarray  # extra columns (model column indices >= 2 nc)
    must: np.ndarray  # candidate plots that must be vacated (one_action row lower > 0)

    @property
    def col_cluster(self) -> np.ndarray:
        """Cluster of each plot column (length 2 nc)."""
        return np.concatenate([self.comp, self.comp])

    def members(self) -> tuple[np.ndarray, np.ndarray]:
        """(candidates sorted by cluster, start of each cluster in it; length k + 1)."""
        order = np.argsort(self.comp, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(self.comp, minlength=self.k))])
        return order, starts


def partition(model: ArrayModel, rule: Rule, nc: int) -> Partition:
    comp = rule.parts[0].graph.comp
    k = int(comp.max()) + 1 if nc else 0
    n = model.num_cols
    owner = np.full(n, -1, dtype=np.int64)  # -1: an extra column
    owner[:2 * nc] = np.concatenate([comp, comp])
    A = model.A.tocsr()
    nnz_rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))
    o = owner[A.indices]
    m = A.shape[0]
    lo = np.full(m, np.iinfo(np.int64).max)
    hi = np.full(m, -1, dtype=np.int64)
    np.minimum.at(lo, nnz_rows, np.where(o < 0, -1, o))
    np.maximum.at(hi, nnz_rows, o)
    empty = np.diff(A.indptr) == 0
    local = ~empty & (lo >= 0) & (lo == hi)
    for name, sl in model.row_blocks.items():  # a target row couples even inside one cluster
        if name not in LOCAL_BLOCKS:
            local[sl] = False
    must = np.zeros(nc, bool)
    rows = model.row_blocks.get("one_action")
    if rows is not None:
        must = model.row_lower[rows] > 0.5
    return Partition(nc, comp, k, np.flatnonzero(local), lo[local], np.flatnonzero(~local & ~empty),
                     np.arange(2 * nc, n), must)


def coupling_matrix(model: ArrayModel, part: Partition) -> sp.csr_matrix:
    """The coupling rows of A (all columns)."""
    return model.A.tocsr()[part.coupling]
