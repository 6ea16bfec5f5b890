"""Compact single-commodity flow formulation of the farmland contiguity rule (the baseline).

Commodity = area. Every chosen plot consumes a_i units. Supply enters a plot i as sigma_i:
  - a root plot (touching existing farmland) draws freely from the contracted existing-farmland
    super-root: ``sigma_i <= M_i f_i``;
  - a non-root plot may be a *patch root* (binary r_i, "i founds a stand-alone block"):
    ``r_i <= f_i``, ``min_size r_i <= sigma_i <= M_i r_i``; other non-root plots get no supply.
Flow moves on directed arcs (t -> h) of the adjacency, ``0 <= y_th <= M_h f_h``, and balances:
``sum_in y - sum_out y + sigma_i = a_i f_i``.

Exactness (f integral). (=>) A block K with a root: send all its area from one root down a BFS
tree of K. A root-free block with area(K) >= min_size: pick one plot as patch root,
sigma = area(K) >= min_size, same tree. (<=) Arcs carry flow only into chosen plots, and an
unchosen plot has sigma = 0 (r_i <= f_i) and no inflow, so it sends nothing: flow never leaves a
block. Summing the balances over a block K: sum_{i in K} sigma_i = area(K) > 0 (areas > 0). If K
has no root, the supply comes from patch roots, each sigma_i >= min_size, so area(K) >= min_size.
Without ``r_i <= f_i`` an unchosen plot could act as a patch root feeding a small block.

Tightening: arcs into root plots are dropped (a BFS tree from the roots never enters a root);
``M_i`` = area of i's component in the candidate graph (the most a block through i can consume);
r_i exists only for non-root plots whose component can reach min_size. The LP relaxation is weak
(big-M), as usual for flow models: this is the compact baseline the cut methods are measured
against. The priority tier is a second call on ``priority_tier(graph)`` with another prefix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from optimizer.blocks.cuts import FarmlandGraph, large_enough
from solvers.model import ArrayModel


def add_flow_formulation(
    model: ArrayModel, graph: FarmlandGraph, col_index: np.ndarray, *, prefix: str = "flow"
) -> ArrayModel:
    """Append the flow columns (``{prefix}_arc``, ``{prefix}_supply``, ``{prefix}_patch``) and
    rows (``{prefix}_balance``, ``{prefix}_arc_cap``, ``{prefix}_supply_cap``, ``{prefix}_patch``)
    to ``model``; ``col_index[i]`` is the model column of f_i."""
    col_index = np.asarray(col_index, dtype=np.int64)
    n = graph.n
    adj = graph.adj.tocoo()
    keep = ~graph.root[adj.col]  # no arcs into roots
    tail, head = adj.row[keep].astype(np.int64), adj.col[keep].astype(np.int64)
    m_plot = graph.comp_area[graph.comp]
    can_patch = ~graph.root & large_enough(m_plot, graph.min_size)
    patch = np.flatnonzero(can_patch)
    supplied = graph.root | can_patch
    n_arc, n_patch = len(tail), len(patch)

    base = model.num_cols
    model = model.add_cols(np.zeros(n_arc), 0.0, m_plot[head], False, block=f"{prefix}_arc")
    model = model.add_cols(
        np.zeros(n), 0.0, np.where(supplied, m_plot, 0.0), False, block=f"{prefix}_supply"
    )
    model = model.add_cols(np.zeros(n_patch), 0.0, 1.0, True, block=f"{prefix}_patch")
    arc_col = base + np.arange(n_arc)
    sup_col = base + n_arc + np.arange(n)
    r_col = base + n_arc + n + np.arange(n_patch)
    N = model.num_cols

    def rows(r: np.ndarray, c: np.ndarray, v: np.ndarray, k: int) -> sp.csr_matrix:
        return sp.csr_matrix((v, (r, c)), shape=(k, N))

    # balance: in - out + sigma_i - a_i f_i = 0
    bal = rows(
        np.concatenate([head, tail, np.arange(n), np.arange(n)]),
        np.concatenate([arc_col, arc_col, sup_col, col_index]),
        np.concatenate([np.ones(n_arc), -np.ones(n_arc), np.ones(n), -graph.area]),
        n,
    )
    model = model.add_rows(bal, 0.0, 0.0, block=f"{prefix}_balance")
    # arc capacity: y_th - M_h f_h <= 0
    e = np.arange(n_arc)
    cap = rows(
        np.concatenate([e, e]),
        np.concatenate([arc_col, col_index[head]]),
        np.concatenate([np.ones(n_arc), -m_plot[head]]),
        n_arc,
    )
    model = model.add_rows(cap, -np.inf, 0.0, block=f"{prefix}_arc_cap")
    # supply capacity: sigma_i - M_i f_i <= 0 (roots), sigma_i - M_i r_i <= 0 (patch roots)
    roots = np.flatnonzero(graph.root)
    who = np.concatenate([roots, patch])
    k = len(who)
    sup = rows(
        np.concatenate([np.arange(k), np.arange(k)]),
        np.concatenate([sup_col[who], col_index[roots], r_col]),
        np.concatenate([np.ones(k), -m_plot[who]]),
        k,
    )
    model = model.add_rows(sup, -np.inf, 0.0, block=f"{prefix}_supply_cap")
    # patch root: sigma_i - min_size r_i >= 0 and r_i - f_i <= 0 (rows 2j, 2j+1)
    j = np.arange(n_patch)
    pat = rows(
        np.concatenate([2 * j, 2 * j, 2 * j + 1, 2 * j + 1]),
        np.concatenate([sup_col[patch], r_col, r_col, col_index[patch]]),
        np.concatenate(
            [np.ones(n_patch), np.full(n_patch, -graph.min_size), np.ones(n_patch),
             -np.ones(n_patch)]
        ),
        2 * n_patch,
    )
    lower = np.tile([0.0, -np.inf], n_patch)
    upper = np.tile([np.inf, 0.0], n_patch)
    return model.add_rows(pat, lower, upper, block=f"{prefix}_patch")
