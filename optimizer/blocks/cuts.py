"""Farmland contiguity: the rule, a plan checker, and cut generation (pure graph algorithms).

The rule. ``f`` marks the candidate plots that become new farmland. A *block* is a connected
component of ``{i : f_i = 1}`` in the candidate adjacency ``adj``. A plan is admissible iff every
block contains a *root* plot (one touching existing protected farmland, so the block extends
existing farmland) or has total area >= ``min_size`` mu (a stand-alone 百亩园).

Optional second tier (``big_tier``): the *priority tier* is the sub-graph of the plots whose
priority-zone share ``priority_i >= PRIORITY_THRESHOLD`` (0.5: mostly inside the zones). Its
blocks (components of the chosen priority-tier plots, adjacency restricted to the tier) must touch
existing farmland (contain a root) or have area >= ``big_tier`` (e.g. 千亩方 1,000 mu). Plots
outside the zones do not help an in-zone block reach the tier size. ``priority_tier`` returns that
sub-graph as another ``FarmlandGraph``, so every function here (cuts, flow, checks) applies to it
unchanged, with ``col_index[plots]``.

The cut family. For any plot set ``S`` that holds no root and has ``area(S) < min_size``, and any
``b in S``, every admissible plan satisfies::

    x_b <= sum_{u in N(S)} x_u          N(S) = candidate neighbours of S outside S

Proof: let F be admissible with ``b in F`` and ``F ∩ N(S) = ∅``. A path in F from b that left S
would enter N(S) first, so b's block K lies inside S; then K has no root and area(K) <= area(S)
< min_size (areas are >= 0): K violates the rule, contradiction. ``S`` need not be connected, and
only the *whole* neighbourhood works: a minimal b-root separator C ⊂ N(S) is not valid, because
b's block may grow through N(S) \\ C to reach min_size without touching a root (see the tests).
With ``min_size = inf`` (pure rooted connectivity) every b-root vertex separator is valid.

Integer separation takes S = a violating block (its neighbours are all unchosen, so every row is
violated by 1). Fractional separation takes S = a root-free, small support component, or the
b-side region R of a minimum node-capacitated vertex cut inside a root-free "ball" B ∋ b with
area(B) < min_size (so R ⊆ B is valid whatever the cut): see ``fractional_cuts``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from solvers.base import Cuts

PRIORITY_THRESHOLD = 0.5
REL_TOL = 1e-9  # areas come from geometry: a block of 99.99999999 mu counts as 100


def large_enough(area: np.ndarray | float, min_size: float) -> np.ndarray:
    """Whether a block of this area may stand alone (min_size = inf: never)."""
    return np.asarray(area) >= min_size * (1.0 - REL_TOL)


@dataclass
class FarmlandGraph:
    """Candidate plots as a graph. ``adj`` is symmetric (any nonzero = adjacent; its values are
    ignored), ``area`` in mu, ``root`` = touches existing protected farmland."""

    adj: sp.csr_matrix
    area: np.ndarray
    root: np.ndarray
    min_size: float = 100.0
    priority: np.ndarray | None = None  # share of each plot's area inside the priority zones
    big_tier: float | None = None  # min block size of the priority tier; None = no tier rule
    comp: np.ndarray = field(init=False, repr=False)  # component of the whole candidate graph
    comp_area: np.ndarray = field(init=False, repr=False)
    comp_root: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        adj = sp.csr_matrix(self.adj, dtype=np.float64, copy=True)
        adj.eliminate_zeros()
        adj.data[:] = 1.0
        adj.sort_indices()
        n = adj.shape[0]
        if adj.shape != (n, n):
            raise ValueError(f"adjacency must be square, got {adj.shape}")
        if adj.diagonal().any():
            raise ValueError("adjacency has self-loops")
        if (adj != adj.T).nnz:
            raise ValueError("adjacency must be symmetric")
        self.adj = adj
        self.area = np.asarray(self.area, dtype=np.float64)
        self.root = np.asarray(self.root, dtype=bool)
        if self.area.shape != (n,) or self.root.shape != (n,):
            raise ValueError("area and root need one entry per plot")
        if (self.area < 0).any():
            raise ValueError("negative plot area")
        if self.priority is not None:
            self.priority = np.asarray(self.priority, dtype=np.float64)
        self.min_size = float(self.min_size)
        k, self.comp = csgraph.connected_components(adj, directed=False)
        self.comp_area = np.bincount(self.comp, self.area, k)
        self.comp_root = np.bincount(self.comp, self.root, k) > 0

    @property
    def n(self) -> int:
        return int(self.adj.shape[0])

    def neighbours(self, i: int) -> np.ndarray:
        return self.adj.indices[self.adj.indptr[i] : self.adj.indptr[i + 1]]


def priority_tier(
    graph: FarmlandGraph, threshold: float = PRIORITY_THRESHOLD
) -> tuple[FarmlandGraph, np.ndarray]:
    """The priority-tier graph (plots with priority >= threshold, min_size = big_tier) and the
    plot index of each of its nodes; use ``col_index[plots]`` with it."""
    if graph.priority is None or graph.big_tier is None:
        raise ValueError("the graph has no priority shares / big_tier")
    plots = np.flatnonzero(graph.priority >= threshold)
    sub = graph.adj[plots][:, plots]
    tier = FarmlandGraph(sub, graph.area[plots], graph.root[plots], graph.big_tier)
    return tier, plots


def _blocks(graph: FarmlandGraph, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Chosen plot indices, their block label, and the number of blocks."""
    idx = np.flatnonzero(chosen)
    sub = graph.adj[idx][:, idx]
    k, lab = csgraph.connected_components(sub, directed=False)
    return idx, lab, k


def _bad_blocks(
    graph: FarmlandGraph, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    idx, lab, k = _blocks(graph, chosen)
    b_area = np.bincount(lab, graph.area[idx], k).astype(np.float64)
    b_root = np.bincount(lab, graph.root[idx], k) > 0
    bad = ~b_root & ~large_enough(b_area, graph.min_size)
    return idx, lab, b_area, b_root, bad


def check_plan(
    graph: FarmlandGraph, chosen: np.ndarray
) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray]:
    """(admissible, block id per plot (-1 = not farmland), area per block, block touches root)."""
    chosen = np.asarray(chosen, dtype=bool)
    idx, lab, b_area, b_root, bad = _bad_blocks(graph, chosen)
    blocks = np.full(graph.n, -1, dtype=np.int64)
    blocks[idx] = lab
    return (not bad.any()), blocks, b_area, b_root


def _split(idx: np.ndarray, lab: np.ndarray, keep: np.ndarray) -> list[np.ndarray]:
    """Members of each kept label, as a list of sorted index arrays."""
    sel = keep[lab]
    idx, lab = idx[sel], lab[sel]
    order = np.argsort(lab, kind="stable")
    idx, lab = idx[order], lab[order]
    cut = (np.flatnonzero(np.diff(lab)) + 1).tolist()
    return [idx[a:b] for a, b in zip([0, *cut], [*cut, len(idx)], strict=True)] if len(idx) else []


def violating_components(graph: FarmlandGraph, chosen: np.ndarray) -> list[np.ndarray]:
    """The blocks of ``chosen`` that break the rule (no root, area < min_size)."""
    idx, lab, _, _, bad = _bad_blocks(graph, np.asarray(chosen, dtype=bool))
    return _split(idx, lab, bad)


def _flatten(sets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(members, owner): all set members concatenated, and the set each belongs to."""
    sizes = np.fromiter((len(s) for s in sets), dtype=np.int64, count=len(sets))
    members = np.concatenate(sets).astype(np.int64) if sets else np.zeros(0, dtype=np.int64)
    return members, np.repeat(np.arange(len(sets)), sizes)


def _neighbourhoods(adj: sp.csr_matrix, sets: list[np.ndarray]) -> sp.csr_matrix:
    """Row s = indicator of N(S_s) (neighbours of S_s outside S_s) in ``adj``."""
    members, owner = _flatten(sets)
    M = sp.csr_matrix((np.ones(len(members)), (owner, members)), shape=(len(sets), adj.shape[0]))
    nb = (M @ adj).tocsr()
    nb.data[:] = 1.0
    nb = (nb - nb.multiply(M)).tocsr()
    nb.eliminate_zeros()
    nb.sort_indices()
    return nb


def _ragged(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) over (s, c) pairs."""
    offs = np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + (np.arange(int(counts.sum())) - offs)


def _rows(
    nb: sp.csr_matrix, set_of: np.ndarray, b: np.ndarray, col_index: np.ndarray, num_cols: int
) -> Cuts:
    """Rows x_b - x(N(S_set)) <= 0, one per (set_of[r], b[r])."""
    counts = np.diff(nb.indptr)[set_of]
    r = len(b)
    rows = np.concatenate([np.arange(r), np.repeat(np.arange(r), counts)])
    plots = np.concatenate([b, nb.indices[_ragged(nb.indptr[set_of], counts)]])
    data = np.concatenate([np.ones(r), -np.ones(int(counts.sum()))])
    A = sp.csr_matrix((data, (rows, col_index[plots])), shape=(r, num_cols))
    return Cuts(A, np.full(r, -np.inf), np.zeros(r))


def _num_cols(col_index: np.ndarray, num_cols: int | None) -> int:
    return int(col_index.max()) + 1 if num_cols is None else int(num_cols)


def empty_cuts(num_cols: int) -> Cuts:
    return Cuts(sp.csr_matrix((0, num_cols)), np.zeros(0), np.zeros(0))


def component_cuts(
    graph: FarmlandGraph,
    components: list[np.ndarray],
    col_index: np.ndarray,
    *,
    num_cols: int | None = None,
    per_component: int | None = None,
) -> Cuts:
    """For each root-free set S of area < min_size (e.g. a violating block) and b in S, the row
    ``x_b - sum_{u in N(S)} x_u <= 0`` over model columns (``col_index[i]`` = column of f_i).

    All b in S by default: each row is valid and cuts the block off, and together they forbid
    every plan that uses a plot of S but no plot of N(S). ``per_component`` keeps only the
    largest-area plots of each S (the ones a cheap plan least wants to drop). ``num_cols``
    defaults to ``col_index.max() + 1``.
    """
    col_index = np.asarray(col_index, dtype=np.int64)
    n_cols = _num_cols(col_index, num_cols)
    if not components:
        return empty_cuts(n_cols)
    return _component_rows(graph.adj, graph.area, components, col_index, n_cols, per_component)


def _component_rows(
    adj: sp.csr_matrix,
    area: np.ndarray,
    components: list[np.ndarray],
    col_index: np.ndarray,
    n_cols: int,
    per_component: int | None,
) -> Cuts:
    nb = _neighbourhoods(adj, components)
    members, owner = _flatten(components)
    sizes = np.bincount(owner, minlength=len(components))
    if per_component is not None:
        order = np.lexsort((-area[members], owner))
        members, owner = members[order], owner[order]
        rank = np.arange(len(members)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        keep = rank < per_component
        members, owner = members[keep], owner[keep]
    return _rows(nb, owner, members, col_index, n_cols)


def presolve_cuts(
    graph: FarmlandGraph,
    col_index: np.ndarray,
    eligible: np.ndarray | None = None,
    *,
    num_cols: int | None = None,
) -> tuple[Cuts, np.ndarray]:
    """Up-front rows and fixings. Returns (cuts, fix) where ``fix`` marks plots whose f must be
    0: ineligible ones, and those whose whole component of the eligible candidate graph has no
    root and area < min_size (no admissible block can hold them). The cuts are the singleton
    case S = {i} of the family: a non-root plot with a_i < min_size needs a chosen (eligible,
    unfixed) neighbour, ``x_i <= sum_{u in N(i)} x_u``."""
    col_index = np.asarray(col_index, dtype=np.int64)
    eligible = np.ones(graph.n, bool) if eligible is None else np.asarray(eligible, bool)
    idx, lab, _, _, bad = _bad_blocks(graph, eligible)
    fix = ~eligible
    fix[idx[bad[lab]]] = True
    live = ~fix
    small = np.flatnonzero(live & ~graph.root & ~large_enough(graph.area, graph.min_size))
    # x_i - sum of live neighbours (a fixed neighbour contributes x_u = 0 anyway)
    k = len(small)
    pick = sp.csr_matrix((np.ones(k), (np.arange(k), small)), shape=(k, graph.n))
    rows = (pick - pick @ graph.adj @ sp.diags(live.astype(np.float64))).tocoo()
    rows.eliminate_zeros()
    n_cols = _num_cols(col_index, num_cols)
    A = sp.csr_matrix((rows.data, (rows.row, col_index[rows.col])), shape=(k, n_cols))
    return Cuts(A, np.full(k, -np.inf), np.zeros(k)), fix


def _plot_values(x: np.ndarray, col_index: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.float64)[col_index], 0.0, 1.0)


def _grow_ball(graph: FarmlandGraph, b: int, xs: np.ndarray, max_ball: int) -> np.ndarray:
    """Root-free connected set B ∋ b with area(B) < min_size, grown by largest x first."""
    area = graph.area[b]
    ball = [b]
    seen = {b}
    heap: list[tuple[float, int]] = []
    for v in graph.neighbours(b):
        seen.add(int(v))
        if not graph.root[v]:
            heapq.heappush(heap, (-xs[v], int(v)))
    while heap and len(ball) < max_ball:
        _, v = heapq.heappop(heap)
        if large_enough(area + graph.area[v], graph.min_size):
            continue
        area += graph.area[v]
        ball.append(v)
        for w in graph.neighbours(v):
            if int(w) not in seen:
                seen.add(int(w))
                if not graph.root[w]:
                    heapq.heappush(heap, (-xs[w], int(w)))
    return np.array(ball, dtype=np.int64)


def _min_cut_region(graph: FarmlandGraph, b: int, ball: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """b's side R ⊆ ball of a minimum vertex cut (capacities x) between b and everything outside
    the ball, on the split-node graph: in_u -> out_u (cap x_u), out_u -> in_v (inf) per edge."""
    adj = graph.adj
    rows = adj[ball]
    outside = np.setdiff1d(rows.indices, ball)
    local = np.concatenate([ball, outside])
    order = np.argsort(local)
    pos = order[np.searchsorted(local[order], rows.indices)]  # local id of each edge head
    k, nb_ = len(ball), len(outside)
    L = k + nb_
    sink = 2 * L
    scale = min(1e6, (2**30) / (L + 2))
    cap_x = np.rint(xs[local] * scale).astype(np.int64)
    big = int(cap_x.sum()) + 1
    cap_x[0] = big  # b itself cannot be cut (local id 0 = b)
    tails = np.repeat(np.arange(k), np.diff(rows.indptr))
    src = np.concatenate([2 * np.arange(L), 2 * tails + 1, 2 * np.arange(k, L) + 1])
    dst = np.concatenate([2 * np.arange(L) + 1, 2 * pos, np.full(nb_, sink)])
    cap = np.concatenate([cap_x, np.full(len(tails) + nb_, big)]).astype(np.int32)
    C = sp.csr_array((cap, (src, dst)), shape=(sink + 1, sink + 1))
    flow = csgraph.maximum_flow(C, 0, sink).flow
    resid = (C - flow).tocsr()
    resid.data = (resid.data > 0).astype(np.int8)
    resid.eliminate_zeros()
    reach = csgraph.breadth_first_order(resid, 0, directed=True, return_predecessors=False)
    outs = reach[reach % 2 == 1] // 2
    assert (outs < k).all(), "min cut region left the ball"
    return ball[outs]


def fractional_cuts(
    graph: FarmlandGraph,
    x: np.ndarray,
    col_index: np.ndarray,
    *,
    eps: float = 1e-6,
    tol: float = 1e-6,
    max_sources: int = 50,
    max_ball: int = 1000,
) -> Cuts:
    """Violated rows ``x_b <= x(N(R))`` at an LP point ``x`` (a model vector; f = x[col_index]).

    1. Support components: K = a component of {x > eps} with no root and area < min_size; rows
       for each b in K with x_b > x(N(K)) + tol (N(K) lies outside the support).
    2. Vertex cuts: for up to ``max_sources`` other plots b (largest x first), grow a root-free
       connected ball B ∋ b with area(B) < min_size (largest x first), then take a minimum
       vertex cut C separating b from every plot outside B (max-flow on split nodes, node
       capacity x_u). R = b's side is connected, root-free and R ⊆ B, so area(R) < min_size:
       x_b <= x(N(R)) is a member of the valid family (N(R) = C). Rows for every b' in R with
       x_b' > x(N(R)) + tol. Validity never depends on the flow values, only on R ⊆ B.
    A vertex cut C separating b from the roots alone is valid only if b's whole side has area
    < min_size; the ball guarantees that.
    """
    col_index = np.asarray(col_index, dtype=np.int64)
    num_cols = int(np.shape(x)[0])
    xs = _plot_values(x, col_index)
    support = xs > eps
    sets: list[np.ndarray] = []
    idx, lab, _, _, bad = _bad_blocks(graph, support)
    sets.extend(_split(idx, lab, bad))
    covered = np.zeros(graph.n, dtype=bool)
    for s in sets:
        covered[s] = True
    # a plot large enough to stand alone is admissible by itself: no ball of area < min_size
    # holds it, and no row x_b <= x(N(R)) is valid for it
    small = ~large_enough(graph.area, graph.min_size)
    sources = np.flatnonzero(support & ~graph.root & ~covered & small)
    sources = sources[np.argsort(-xs[sources], kind="stable")][:max_sources]
    for b in sources:
        if covered[b]:
            continue
        ball = _grow_ball(graph, int(b), xs, max_ball)
        region = _min_cut_region(graph, int(b), ball, xs)
        sets.append(region)
        covered[region] = True
    if not sets:
        return empty_cuts(num_cols)
    nb = _neighbourhoods(graph.adj, sets)
    rhs = nb @ xs
    members, owner = _flatten(sets)
    viol = xs[members] > rhs[owner] + tol
    cuts = _rows(nb, owner[viol], members[viol], col_index, num_cols)
    return _dedupe(cuts)


def _dedupe(cuts: Cuts) -> Cuts:
    """Drop repeated rows (two regions with the same b and neighbourhood)."""
    A = cuts.A.tocsr()
    A.sort_indices()
    first: dict[bytes, int] = {}
    for r in range(A.shape[0]):
        lo, hi = A.indptr[r], A.indptr[r + 1]
        first.setdefault(A.indices[lo:hi].tobytes() + A.data[lo:hi].tobytes(), r)
    keep = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    return Cuts(A[keep], cuts.lower[keep], cuts.upper[keep])


@dataclass
class ContiguitySeparator:
    """Separator for the SCIP lazy back-end and for row generation.

    integral=True: rows for every violating block of x (always cut x off when x breaks the
    rule). integral=False: ``fractional_cuts`` if ``fractional`` else None. Counts calls/rows.
    """

    graph: FarmlandGraph
    col_index: np.ndarray
    fractional: bool = False
    max_sources: int = 50
    calls: int = 0
    rows: int = 0

    def __call__(self, x: np.ndarray, integral: bool) -> Cuts | None:
        self.calls += 1
        if integral:
            chosen = np.asarray(x, dtype=np.float64)[self.col_index] > 0.5
            comps = violating_components(self.graph, chosen)
            cuts = component_cuts(self.graph, comps, self.col_index, num_cols=len(x))
        elif self.fractional:
            cuts = fractional_cuts(
                self.graph, x, self.col_index, max_sources=self.max_sources
            )
        else:
            return None
        self.rows += len(cuts)
        return cuts if len(cuts) else None


def make_separator(
    graph: FarmlandGraph, col_index: np.ndarray, fractional: bool = False
) -> ContiguitySeparator:
    return ContiguitySeparator(graph, np.asarray(col_index, dtype=np.int64), fractional)


def forest_graph(adj: sp.spmatrix, area: np.ndarray, touches: np.ndarray) -> FarmlandGraph:
    """Forest connectivity as the same rule: new forest blocks must touch existing forest or a
    green wedge (``touches``); min_size = inf means no stand-alone forest block is admissible."""
    return FarmlandGraph(adj, area, touches, np.inf)
