"""A rule-abiding plan meeting every target at once: the model restricted to plans whose blocks
are admissible by construction (an *inner approximation* of the block rule), solved as one MIP.

The restriction, per rule part (farmland, its priority tier, forest connectivity), on the plots
the part's column may still choose:

- *seed blocks*: connected pieces of area >= min_size grown greedily (Prim, cheapest per mu)
  from many seeds, overlapping; each gets a 0/1 column ``y_b`` with ``y_b <= x_i`` for its
  plots, so a chosen seed block is whole and large enough;
- *layers*: ``d(i)`` = hops from the nearest root or seed-block plot (multi-source BFS). A plot
  at ``d > 0`` may be chosen only with a chosen neighbour one layer closer,
  ``x_i <= sum_{k in N(i), d(k) < d(i)} x_k``; a seed-block plot that is no root only with one
  of its blocks, ``x_i <= sum_{b ∋ i} y_b``; plots out of reach (``d = inf``) are fixed to 0.

Why every plan of the restriction abides by the rule: follow a chosen plot down the layers; each
step lands on a chosen neighbour, so the walk stays inside one block and ends at a root or at a
plot of a chosen seed block; a block holding a root is admissible, and one holding a whole seed
block has area >= min_size. The target rows are the model's own rows (TargetFamily), untouched,
so a plan found meets every target jointly: reduction per scope, shares, priority farmland,
budgets, balance, must-vacate plots. The restriction only removes plans: its optimum is >= the
true optimum (never a bound), and it may be infeasible where the true problem is not.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from optimizer.blocks.cuts import REL_TOL, FarmlandGraph
from optimizer.blocks.rule import Rule
from solvers import get_backend
from solvers.base import SolveOptions
from solvers.model import ArrayModel
from solvers.result import Termination

COVER = 3  # seed blocks per plot at most: overlapping pieces give the MIP a choice
CONSTRUCT_GAP = 0.01  # the construction is a starting point: 1% of its own optimum is plenty


@dataclass
class Construction:
    x: np.ndarray | None  # a rule-abiding plan of the model (its own columns), or None
    objective: float | None
    message: str
    seconds: float = 0.0
    termination: Termination | None = None


def seed_blocks(graph: FarmlandGraph, live: np.ndarray, cost: np.ndarray,
                cover: int = COVER) -> list[np.ndarray]:
    """Connected pieces of live plots, each of area >= min_size: Prim growth by cost per mu from
    each live plot (cheapest per mu first) of a component large enough, skipping seeds already
    in `cover` pieces. Pieces may overlap; duplicates are dropped."""
    if not np.isfinite(graph.min_size):
        return []
    idx = np.flatnonzero(live)
    sub = graph.adj[idx][:, idx].tocsr()
    k, lab = csgraph.connected_components(sub, directed=False)
    area = graph.area[idx]
    need = graph.min_size * (1 - REL_TOL)
    where = np.flatnonzero((np.bincount(lab, area, k) >= need)[lab])
    if not len(where):
        return []
    per_mu = np.divide(cost[idx], area, out=np.full(len(idx), np.inf), where=area > 0)
    order = where[np.argsort(per_mu[where], kind="stable")].tolist()
    ptr, nb = sub.indptr.tolist(), sub.indices.tolist()
    key, ar = per_mu.tolist(), area.tolist()
    times = [0] * len(idx)
    seen_pieces: set[tuple[int, ...]] = set()
    blocks: list[np.ndarray] = []
    for s in order:
        if times[s] >= cover:
            continue
        piece, total, seen, heap = [], 0.0, {s}, [(key[s], s)]
        while heap and total < need:
            v = heapq.heappop(heap)[1]
            piece.append(v)
            total += ar[v]
            for w in nb[ptr[v]:ptr[v + 1]]:
                if w not in seen:
                    seen.add(w)
                    heapq.heappush(heap, (key[w], w))
        sig = tuple(sorted(piece))
        if total < need or sig in seen_pieces:
            times[s] = cover
            continue
        seen_pieces.add(sig)
        for v in piece:
            times[v] += 1
        blocks.append(idx[np.array(piece)])
    return blocks


def _layer_rows(graph: FarmlandGraph, cols: np.ndarray, live: np.ndarray,
                blocks: list[np.ndarray], first_block_col: int, num_cols: int
                ) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows (all `<= 0`) of one part's restriction, and the nodes out of reach."""
    n = graph.n
    in_block = np.zeros(n, bool)
    b_nodes = np.concatenate(blocks) if blocks else np.zeros(0, np.int64)
    b_ids = np.repeat(np.arange(len(blocks)), [len(b) for b in blocks])
    in_block[b_nodes] = True
    sources = np.flatnonzero(live & (graph.root | in_block))
    adj = graph.adj.multiply(live[:, None]).multiply(live[None, :]).tocsr()
    if len(sources):
        d = csgraph.dijkstra(adj, indices=sources, min_only=True, unweighted=True)
    else:
        d = np.full(n, np.inf)
    d[~live] = np.inf
    coo = adj.tocoo()
    i, k = coo.row, coo.col
    down = np.isfinite(d[i]) & (d[i] > 0) & (d[k] < d[i])
    i, k = i[down], k[down]
    layered = np.flatnonzero(np.isfinite(d) & (d > 0))
    # row r per layered node: x_i - sum_{lower nbrs} x_k <= 0
    row_of = np.full(n, -1)
    row_of[layered] = np.arange(len(layered))
    r1 = np.concatenate([row_of[layered], row_of[i]])
    c1 = np.concatenate([cols[layered], cols[k]])
    v1 = np.concatenate([np.ones(len(layered)), -np.ones(len(i))])
    base = len(layered)
    # seed-block plots that are no root: x_i - sum_{b ∋ i} y_b <= 0
    holders = np.flatnonzero(in_block & ~graph.root)
    row2 = np.full(n, -1)
    row2[holders] = base + np.arange(len(holders))
    bp = ~graph.root[b_nodes]
    r2 = np.concatenate([row2[holders], row2[b_nodes[bp]]])
    c2 = np.concatenate([cols[holders], first_block_col + b_ids[bp]])
    v2 = np.concatenate([np.ones(len(holders)), -np.ones(int(bp.sum()))])
    base += len(holders)
    # y_b - x_i <= 0 for every plot of block b
    r3 = np.concatenate([base + np.arange(len(b_nodes))] * 2)
    c3 = np.concatenate([first_block_col + b_ids, cols[b_nodes]])
    v3 = np.concatenate([np.ones(len(b_nodes)), -np.ones(len(b_nodes))])
    base += len(b_nodes)
    A = sp.csr_matrix((np.concatenate([v1, v2, v3]),
                       (np.concatenate([r1, r2, r3]), np.concatenate([c1, c2, c3]))),
                      shape=(base, num_cols))
    return A, live & ~np.isfinite(d)


def restricted_model(model: ArrayModel, rule: Rule) -> ArrayModel:
    """`model` plus the inner approximation of every rule part: block columns appended after
    the model's own columns (so ``x[:model.num_cols]`` is a plan of `model`)."""
    col_upper = model.col_upper.copy()
    parts = []
    for p in rule.parts:
        live = col_upper[p.cols] > 0
        blocks = seed_blocks(p.graph, live, model.c[p.cols])
        parts.append((p, live, blocks))
    nb_total = sum(len(b) for _, _, b in parts)
    num_cols = model.num_cols + nb_total
    rows, first = [], model.num_cols
    for p, live, blocks in parts:
        A, unreachable = _layer_rows(p.graph, p.cols, live, blocks, first, num_cols)
        col_upper[p.cols[unreachable]] = 0.0
        rows.append(A)
        first += len(blocks)
    A_old = sp.hstack([model.A, sp.csr_matrix((model.num_rows, nb_total))], format="csr")
    A_new = sp.vstack(rows, format="csr") if rows else sp.csr_matrix((0, num_cols))
    k = A_new.shape[0]
    return ArrayModel(
        c=np.concatenate([model.c, np.zeros(nb_total)]),
        A=sp.vstack([A_old, A_new], format="csr"),
        row_lower=np.concatenate([model.row_lower, np.full(k, -np.inf)]),
        row_upper=np.concatenate([model.row_upper, np.zeros(k)]),
        col_lower=np.concatenate([model.col_lower, np.zeros(nb_total)]),
        col_upper=np.concatenate([col_upper, np.ones(nb_total)]),
        integrality=np.concatenate([model.integrality, np.ones(nb_total, bool)]),
        offset=model.offset,
    )


def _tolerance(model: ArrayModel) -> float:
    """Absolute row tolerance scaled to the largest finite row bound (budgets run to 1e6)."""
    b = np.concatenate([model.row_lower, model.row_upper])
    b = np.abs(b[np.isfinite(b)])
    return 1e-6 * max(1.0, float(b.max()) if len(b) else 1.0)


def construct(model: ArrayModel, rule: Rule, opts: SolveOptions,
              say: Callable[[str], None] = lambda _m: None) -> Construction:
    """Solve the restriction with HiGHS within ``opts.time_limit``: a plan of `model` that
    abides by the rule and meets every row of `model`, or None with the reason."""
    inner = restricted_model(model, rule)
    res = get_backend("highs").solve(inner, replace(opts, mip_gap=max(opts.mip_gap,
                                                                      CONSTRUCT_GAP)))
    secs = res.build_time + res.solve_time
    if not res.has_solution or res.x is None:
        why = ("no plan with blocks grown from existing farmland and seed blocks meets every "
               "target" if res.termination is Termination.INFEASIBLE
               else f"no constructed plan within the time given ({res.termination.value})")
        return Construction(None, None, why, secs, res.termination)
    x = model.round_integers(res.x[:model.num_cols])
    if not rule.admissible(x) or model.max_violation(x) > _tolerance(model):
        return Construction(None, None, "constructed plan failed the re-check", secs,
                            res.termination)
    obj = model.objective_value(x)
    say(f"constructed a rule-abiding plan meeting every target: objective {obj:,.1f}")
    return Construction(x, obj, "constructed", secs, res.termination)
