"""Compact-demolition objective terms as array blocks. They discourage scattered vacated plots;
they never guarantee connectivity (that is the contiguity rule's job).

``v_cols`` is a list of column-index arrays, one entry per plot each, whose columns sum to the
plot's "vacated" indicator: ``v_i = sum_k x[v_cols[k][i]]`` (typically ``[f_cols, g_cols]``
with f_i + g_i <= 1 in the model, so v_i is binary). Forest connectivity (new forest touches
existing forest or a green wedge) uses the contiguity machinery: ``contiguity.forest_graph``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from solvers.model import ArrayModel


def _v_matrix(v_cols: list[np.ndarray], n: int, num_cols: int) -> sp.csr_matrix:
    """V (n x num_cols) with V @ x = v."""
    cols = np.concatenate([np.asarray(c, dtype=np.int64) for c in v_cols])
    rows = np.tile(np.arange(n), len(v_cols))
    return sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(n, num_cols))


def add_boundary_penalty(
    model: ArrayModel,
    v_cols: list[np.ndarray],
    adj_lengths: sp.spmatrix,
    perimeter: np.ndarray,
    weight: float,
    *,
    block: str = "compact_edge",
) -> ArrayModel:
    """Add ``weight * perimeter(vacated region)`` to the objective.

    perimeter = sum_i P_i v_i - 2 sum_{i<j} L_ij v_i v_j (a shared edge between two vacated
    plots is interior). The product is y_ij in [0, 1] with y_ij <= v_i, y_ij <= v_j; y has
    objective -2 weight L_ij < 0, so at an optimum y_ij = min(v_i, v_j) = v_i v_j for binary v
    (no y_ij >= v_i + v_j - 1 row is needed). Columns block ``block``, rows ``block + "_link"``.
    """
    if weight < 0:
        raise ValueError("a boundary penalty needs weight >= 0 (y would be pushed down)")
    n = len(perimeter)
    L = sp.triu(sp.csr_matrix(adj_lengths), k=1).tocoo()
    keep = L.data > 0
    i, j, length = L.row[keep], L.col[keep], L.data[keep]
    V = _v_matrix(v_cols, n, model.num_cols)
    # weight * P_i on every column that makes up v_i
    c = model.c + weight * (V.T @ np.asarray(perimeter, dtype=np.float64))
    model = dataclasses.replace(model, c=c)
    e = len(i)
    base = model.num_cols
    model = model.add_cols(-2.0 * weight * length, 0.0, 1.0, False, block=block)
    V = _v_matrix(v_cols, n, model.num_cols)
    Y = sp.csr_matrix((np.ones(e), (np.arange(e), base + np.arange(e))), shape=(e, model.num_cols))
    link = sp.vstack([Y - V[i], Y - V[j]], format="csr")  # y_e - v_i <= 0, y_e - v_j <= 0
    return model.add_rows(link, -np.inf, 0.0, block=f"{block}_link")


def add_isolation_penalty(
    model: ArrayModel,
    v_cols: list[np.ndarray],
    adj: sp.spmatrix,
    area: np.ndarray,
    weight: float,
    *,
    block: str = "compact_isolated",
) -> ArrayModel:
    """Penalise vacated plots with no vacated neighbour: z_i >= v_i - sum_{j in N(i)} v_j,
    z_i in [0, 1], objective ``weight * a_i * z_i`` (z_i = 1 exactly for an isolated vacated
    plot at an optimum). Columns block ``block``, rows ``block + "_def"``."""
    if weight < 0:
        raise ValueError("an isolation penalty needs weight >= 0")
    area = np.asarray(area, dtype=np.float64)
    n = len(area)
    A = sp.csr_matrix(adj, dtype=np.float64, copy=True)
    A.eliminate_zeros()
    A.data[:] = 1.0
    base = model.num_cols
    model = model.add_cols(weight * area, 0.0, 1.0, False, block=block)
    V = _v_matrix(v_cols, n, model.num_cols)
    Z = sp.csr_matrix((np.ones(n), (np.arange(n), base + np.arange(n))), shape=(n, model.num_cols))
    rows = (Z - V + A @ V).tocsr()  # z_i - v_i + sum_N v_j >= 0
    return model.add_rows(rows, 0.0, np.inf, block=f"{block}_def")
