"""A rule-abiding plan meeting every target at once: the model restricted to plans whose blocks
are admissible by construction (an *inner approximation* of the block rule), solved as one MIP.

The restriction, per rule part (farmland, its priority tier, forest connectivity), on the plots
the part's column may still choose:

- *seed blocks*: connected pieces of area >= min_size grown greedily (Prim, cheapest per mu)
  from many seeds, overlapping; each gets a 0/1 column ``y_b`` with ``y_b <= x_i`` for its
  plots, so a chosen seed block is whole and large enough;
- *layers*: ``d(i)`` = hops from the nearest root or seed-block plot (multi-source BFS). A plot
  at ``d > 0`` may be chosen only with a chosen neighbour earlier in the strict order
  ``(d, index)``, ``x_i <= sum_{k in N(i), (d(k), k) < (d(i), i)} x_k``; a seed-block plot that is
  no root only with one of its blocks, ``x_i <= sum_{b ∋ i} y_b``; plots out of reach
  (``d = inf``) are fixed to 0. A seed block may also be a block of a hint plan (a relaxation's
  solution) that is admissible as it is (holds a root or is large enough).

Why every plan of the restriction abides by the rule: follow a chosen plot down the order; each
step lands on a chosen neighbour strictly earlier, so the walk stays inside one block and ends at
a root or at a plot of a chosen seed block; a block holding a root is admissible, and one holding
a whole seed block holds a root or has area >= min_size. The target rows are the model's own
rows (TargetFamily), untouched, so a plan found meets every target jointly: reduction per
scope, shares, priority farmland, budgets, balance, must-vacate plots. The restriction only
removes plans: its optimum is >= the true optimum (never a bound), and it may be infeasible
where the true problem is not.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from optimizer.blocks.cuts import REL_TOL, FarmlandGraph
from optimizer.blocks.deadline import emit, run_with_deadline
from optimizer.blocks.rule import Rule
from solvers import get_backend
from solvers.base import SolveOptions
from solvers.model import ArrayModel
from solvers.result import Result, Termination

COVER = 3  # seed blocks per plot at most: overlapping pieces give the MIP a choice
CONSTRUCT_GAP = 0.01  # the construction is a starting point: 1% of its own optimum is plenty


@dataclass
class Construction:
    x: np.ndarray | None  # a rule-abiding plan of the model (its own columns), or None
    objective: float | None
    message: str
    seconds: float = 0.0
    termination: Termination | None = None
    first_s: float | None = None  # seconds from the start of `construct` to its first plan


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
    # predecessors: neighbours earlier in the order (d, index), a strict order, so every walk
    # down ends at a source
    down = np.isfinite(d[i]) & (d[i] > 0) & ((d[k] < d[i]) | ((d[k] == d[i]) & (k < i)))
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


def hint_blocks(graph: FarmlandGraph, live: np.ndarray, cost: np.ndarray,
                chosen: np.ndarray) -> list[np.ndarray]:
    """Seed blocks from a plan that may break the rule (a relaxation's solution): each of its
    blocks, the root-free ones below min_size grown (Prim, cheapest per mu over live plots)."""
    if not np.isfinite(graph.min_size):
        return []
    idx = np.flatnonzero(chosen & live)
    if not len(idx):
        return []
    k, lab = csgraph.connected_components(graph.adj[idx][:, idx], directed=False)
    rooted = np.bincount(lab, graph.root[idx], k) > 0
    need = graph.min_size * (1 - REL_TOL)
    per_mu = np.divide(cost, graph.area, out=np.full(graph.n, np.inf), where=graph.area > 0)
    adj = graph.adj
    # blocks admissible as they are (rooted or large) join whole
    ok = rooted | (np.bincount(lab, graph.area[idx], k) >= need)
    order = np.argsort(lab, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(lab, minlength=k))])
    out = [idx[order[starts[b]:starts[b + 1]]] for b in np.flatnonzero(ok)]
    for b in np.flatnonzero(~rooted):
        piece = idx[lab == b].tolist()
        total = float(graph.area[piece].sum())
        inside = set(piece)
        heap = [(per_mu[w], int(w)) for v in piece for w in adj.indices[
            adj.indptr[v]:adj.indptr[v + 1]] if live[w] and w not in inside]
        heapq.heapify(heap)
        while heap and total < need:
            v = heapq.heappop(heap)[1]
            if v in inside:
                continue
            inside.add(v)
            piece.append(v)
            total += graph.area[v]
            heap.extend((per_mu[w], int(w)) for w in adj.indices[adj.indptr[v]:adj.indptr[v + 1]]
                        if live[w] and w not in inside)
            heapq.heapify(heap)
        if total >= need:
            out.append(np.array(piece))
    return out


def restricted_model(model: ArrayModel, rule: Rule,
                     hint: np.ndarray | list[np.ndarray] | None = None) -> ArrayModel:
    """`model` plus the inner approximation of every rule part: block columns appended after
    the model's own columns (so ``x[:model.num_cols]`` is a plan of `model`). `hint`: model
    vectors (one or a list) whose blocks, grown to min_size, join the seed blocks; a
    rule-abiding hint is then a plan of the restriction (its blocks are seed blocks)."""
    col_upper = model.col_upper.copy()
    hints = [] if hint is None else [hint] if isinstance(hint, np.ndarray) else list(hint)
    parts = []
    for p in rule.parts:
        live = col_upper[p.cols] > 0
        blocks = seed_blocks(p.graph, live, model.c[p.cols])
        for h in hints:
            blocks += hint_blocks(p.graph, live, model.c[p.cols], h[p.cols] > 0.5)
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


def blocking_targets(inner: ArrayModel, family_rows: dict[str, slice],
                     opts: SolveOptions) -> dict[str, float]:
    """The target rows a restricted model cannot meet together: one shortfall column per row
    (scaled by its bound), the least total relative shortfall; target key -> its shortfall."""
    rows = np.concatenate([np.arange(sl.start, sl.stop) for sl in family_rows.values()]
                          or [np.zeros(0, np.int64)])
    if not len(rows):
        return {}
    lower_side = np.isfinite(inner.row_lower[rows])
    sign = np.where(lower_side, 1.0, -1.0)
    bound = np.where(lower_side, inner.row_lower[rows], inner.row_upper[rows])
    k = len(rows)
    cols = sp.csr_matrix((sign, (rows, np.arange(k))), shape=(inner.num_rows, k))
    relaxed = replace(inner.add_cols(1.0 / np.maximum(1.0, np.abs(bound)), np.zeros(k),
                                     np.full(k, np.inf), np.zeros(k, bool), A_cols=cols),
                      c=np.concatenate([np.zeros(inner.num_cols),
                                        1.0 / np.maximum(1.0, np.abs(bound))]))
    res = get_backend("highs").solve(relaxed, opts)
    if not res.has_solution or res.x is None:
        return {}
    short = res.x[inner.num_cols:]
    out: dict[str, float] = {}
    at = 0
    for key, sl in family_rows.items():
        n = sl.stop - sl.start
        v = float(short[at:at + n].sum())
        at += n
        if v > 1e-6 * max(1.0, float(np.abs(bound[at - n:at]).max())):
            out[key] = v
    return out


def tolerance(model: ArrayModel) -> float:
    """Absolute row tolerance scaled to the largest finite row bound (budgets run to 1e6)."""
    b = np.concatenate([model.row_lower, model.row_upper])
    b = np.abs(b[np.isfinite(b)])
    return 1e-6 * max(1.0, float(b.max()) if len(b) else 1.0)


def _inner_point(inner: ArrayModel, model: ArrayModel, rule: Rule,
                 x: np.ndarray) -> np.ndarray | None:
    """A plan of `model` as a point of its restriction: each block column 1 where its whole
    block is chosen (None if that point breaks a row of the restriction)."""
    pt = np.zeros(inner.num_cols)
    pt[:model.num_cols] = x[:model.num_cols]
    extra = inner.A[model.num_rows:, model.num_cols:]  # layer rows x block columns
    if extra.shape[1]:
        # a block column b appears with +1 in the rows y_b <= x_i of its plots: chosen iff all
        # of those plots are chosen
        rows_x = inner.A[model.num_rows:, :model.num_cols] @ pt[:model.num_cols]
        pos = (extra > 0).astype(float).tocsc()
        need = np.asarray(pos.sum(axis=0)).ravel()
        met = pos.T @ (rows_x <= -0.5).astype(float)
        pt[model.num_cols:] = (need > 0) & (met >= need)
    return pt if inner.max_violation(pt) <= tolerance(inner) else None


def _solve_inner(inner: ArrayModel, opts: SolveOptions, report: bool,
                 warm: np.ndarray | None = None, enough: float | None = None
                 ) -> tuple[Any, float | None]:
    """HiGHS on the restriction: (result, seconds to its first incumbent or None), stopped at
    an incumbent with objective <= `enough`."""
    t0 = time.perf_counter()
    first: list[float] = []

    def on_incumbent(x: np.ndarray, obj: float) -> bool:
        if not first:
            first.append(time.perf_counter() - t0)
        emit((x, first[0]))
        return enough is not None and obj <= enough

    res = get_backend("highs").solve(inner, opts, warm_start=warm,
                                     on_incumbent=on_incumbent if report else None)
    return res, (first[0] if first else None)


def minimal_start(inner: ArrayModel, model: ArrayModel, opts: SolveOptions) -> np.ndarray | None:
    """A point of the restriction with no farmland: illegal buildings that must go become forest
    (farmland where forest is not allowed), the other columns (shortfalls in elastic mode,
    compactness) completed by an LP. None where that is not feasible (the usual case outside
    elastic mode): then HiGHS starts from nothing."""
    farm, forest = model.col_blocks.get("farmland"), model.col_blocks.get("forest")
    rows = model.row_blocks.get("one_action")
    if farm is None or forest is None or rows is None:
        return None
    n = farm.stop - farm.start
    must = model.row_lower[rows] >= 0.5
    x0 = np.zeros(inner.num_cols)
    to_forest = must & (inner.col_upper[forest] > 0)
    to_farm = must & ~to_forest & (inner.col_upper[farm] > 0)
    x0[forest.start + np.flatnonzero(to_forest)] = 1.0
    x0[farm.start + np.flatnonzero(to_farm)] = 1.0
    fixed = np.zeros(inner.num_cols, bool)
    fixed[farm.start:farm.start + n] = fixed[forest.start:forest.start + n] = True
    fixed[model.num_cols:] = True  # seed-block columns stay 0
    if fixed.all():
        return x0 if inner.max_violation(x0) <= tolerance(inner) else None
    lower = np.where(fixed, x0, inner.col_lower)
    upper = np.where(fixed, x0, inner.col_upper)
    lp = get_backend("highs").solve(
        replace(inner, col_lower=lower, col_upper=upper,
                integrality=np.zeros(inner.num_cols, bool)), opts)
    if not lp.has_solution or lp.x is None:
        return None
    x = inner.round_integers(lp.x)
    x[fixed] = x0[fixed]
    return x if inner.max_violation(x) <= tolerance(inner) else None


def construct(model: ArrayModel, rule: Rule, opts: SolveOptions,
              say: Callable[[str], None] = lambda _m: None,
              family_rows: dict[str, slice] | None = None,
              hint: np.ndarray | list[np.ndarray] | None = None,
              start: np.ndarray | None = None, enough: float | None = None) -> Construction:
    """Solve the restriction with HiGHS within ``opts.time_limit``: a plan of `model` that
    abides by the rule and meets every row of `model`, or None with the reason (with
    `family_rows`, the target rows by key, the reason names the targets that block it).
    `start`: a rule-abiding plan of `model`, made a hint and the warm start (so the plan found
    is no worse than it); then the step improves a plan, and the gap asked is `opts.mip_gap`
    (CONSTRUCT_GAP would stop it at once when the start is within 1% of the restriction).
    `enough`: stop at the first plan with an objective this low (a known bound proves it)."""
    t0 = time.perf_counter()
    if start is not None:
        hint = [start] + ([] if hint is None else [hint] if isinstance(hint, np.ndarray)
                          else list(hint))
    inner = restricted_model(model, rule, hint)
    left = None if opts.time_limit is None else max(0.0, opts.time_limit - (time.perf_counter()
                                                                          - t0))
    warm = None if start is None else _inner_point(inner, model, rule, start)
    if warm is None:
        warm = minimal_start(inner, model, replace(opts, time_limit=left))
    # when each plan was found, on this process's clock (the MIP may run in a child process)
    seen: list[float] = [] if warm is None else [time.perf_counter() - t0]

    def on_emit(_value: Any) -> None:
        if len(seen) < 2:
            seen.append(time.perf_counter() - t0)

    done, out, last = run_with_deadline(
        _solve_inner, (inner, replace(opts, mip_gap=opts.mip_gap if start is not None
                                      else max(opts.mip_gap, CONSTRUCT_GAP),
                                      time_limit=left), True, warm, enough), left, inner.num_cols,
        on_emit)
    secs = time.perf_counter() - t0
    first_s = min(seen) if seen else None
    if not done:  # stopped: its last incumbent, else the minimal start, else nothing
        x = last[0] if last is not None else warm
        if x is None:
            return Construction(None, None, "no constructed plan within the time given "
                                "(stopped)", secs, Termination.TIME_LIMIT)
        res = Result("highs", Termination.TIME_LIMIT, True, x=x, solve_time=secs)
        out = (res, None if last is None else last[1])
    elif warm is not None and not out[0].has_solution:
        out = (Result("highs", Termination.TIME_LIMIT, True, x=warm), None)
    res, _first = out
    if first_s is not None:  # every incumbent of the restriction is a rule-abiding plan
        say(f"first constructed plan found {secs - first_s:.1f} s ago")
    if not res.has_solution or res.x is None:
        if res.termination is not Termination.INFEASIBLE:
            return Construction(None, None, f"no constructed plan within the time given "
                                f"({res.termination.value})", secs, res.termination)
        why = "no plan with blocks grown from existing farmland and seed blocks meets every target"
        if family_rows and (opts.time_limit is None or opts.time_limit > secs + 1.0):
            left = None if opts.time_limit is None else opts.time_limit - secs
            short = blocking_targets(inner, family_rows or {}, replace(opts, time_limit=left))
            if short:
                why += "; together they fail on: " + ", ".join(
                    f"{k} (short by {v:,.1f})" for k, v in short.items())
        return Construction(None, None, why, time.perf_counter() - t0, res.termination)
    x = model.round_integers(res.x[:model.num_cols])
    if not rule.admissible(x) or model.max_violation(x) > tolerance(model):
        return Construction(None, None, "constructed plan failed the re-check", secs,
                            res.termination)
    obj = model.objective_value(x)
    say(f"constructed a rule-abiding plan meeting every row of the model: objective {obj:,.1f}")
    return Construction(x, obj, "constructed", secs, res.termination,
                        secs if first_s is None else first_s)
