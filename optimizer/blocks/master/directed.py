"""A stronger LP bound for one giant cluster's pricing problem: the block rule as arborescences.

Every farmland block of a rule-abiding plan is spanned by an arborescence rooted at one of its
plots: at a plot touching existing farmland where the block has one (*canonical* choice), else at
any plot. Variables r_v (v is a root) and f_uv per arc (u is v's parent) beside the plots' x_v:

    Σ_u f_uv + r_v = x_v        every farmland plot has one parent or is a root
    f_uv <= x_u,  f_uv + f_vu <= 1

and two cut families, separated round by round on the LP point (`directed_bound`):

- *reach*: x_v <= f(δ⁻(S)) + r(S) for every set S holding v (the path from v's root enters S
  or starts in it); checked on the weak and strong components of the LP's arc support;
- *small set*: Σ_{c ∈ S, not touching farmland} r_c <= f(δ⁺(S)) for every S of area below the
  minimum block (a root that touches no farmland roots a block with none, canonically, whose
  area is at least the minimum: the block leaves S along its own arcs, one arc per such root);
  by a minimum cut inside a ball of such area grown around each fractional root.

plus the undirected separator's rows on x. On chaoyang_c50000's 33,394-plot cluster at the LP
duals (LP 99,940), the undirected cuts stall at ~101.9k while these reach 109.6k in 90 s (SCIP
branch-and-cut with the undirected cuts: 108.3k): benchmarks/README.md. Every round's LP is a
relaxation of the pricing problem (cut rows left slack are deleted now and then), so any
optimal round's objective is a valid bound.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components, maximum_flow

from optimizer.blocks.cuts import REL_TOL, FarmlandGraph, large_enough
from optimizer.blocks.rule import CombinedSeparator, Rule, RulePart
from solvers import WarmLP
from solvers.model import ArrayModel
from solvers.result import Termination

EPS = 1e-6  # an arc in the LP's support
VIOLATION = 1e-4  # a cut is added where the LP point breaks it by more
BALLS = 400  # small-set candidates (fractional roots) per round at most
FLOW_SCALE = 1e6  # scipy's maximum_flow takes integer capacities
STALL = 1e-5  # relative: rounds that raise the bound less than this in a row stop it
STALL_ROUNDS = 3
PURGE_EVERY = 5  # rounds: cut rows slack by more than PURGE_SLACK at that LP are deleted
PURGE_SLACK = 1e-3


class Arborescence:
    """The directed extension's column layout and rows for one farmland rule part."""

    def __init__(self, model: ArrayModel, part: RulePart) -> None:
        g: FarmlandGraph = part.graph
        adj = g.adj.tocsr()
        adj.sort_indices()
        self.graph, self.n = g, g.n
        self.indptr, self.head = adj.indptr, adj.indices.astype(np.int64)
        self.tail = np.repeat(np.arange(g.n), np.diff(adj.indptr))
        self.na = len(self.head)
        ids = sp.csr_matrix((np.arange(1, self.na + 1, dtype=np.float64), adj.indices,
                             adj.indptr), shape=adj.shape).T.tocsr()
        ids.sort_indices()
        self.rev = ids.data.astype(np.int64) - 1  # arc (v, u) of arc (u, v)
        self.x = part.cols.astype(np.int64)  # model column of each plot's farmland choice
        self.base = model.num_cols
        self.r = self.base + np.arange(g.n)
        self.f = self.base + g.n + np.arange(self.na)
        self.num_cols = self.base + g.n + self.na
        self.free = ~g.root  # plots whose being a root needs a large block
        self.area: list[float] = g.area.tolist()

    def model(self, model: ArrayModel) -> ArrayModel:
        """`model` (its LP relaxation) with r, f and the arborescence rows."""
        n, na = self.n, self.na
        one = np.ones
        inflow = sp.csr_matrix((np.concatenate([one(na), one(n), -one(n)]),
                                (np.concatenate([self.head, np.arange(n), np.arange(n)]),
                                 np.concatenate([self.f, self.r, self.x]))),
                               shape=(n, self.num_cols))
        parent = sp.csr_matrix((np.concatenate([one(na), -one(na)]),
                                (np.tile(np.arange(na), 2), np.concatenate([self.f,
                                                                            self.x[self.tail]]))),
                               shape=(na, self.num_cols))
        pair = np.flatnonzero(np.arange(na) < self.rev)
        both = sp.csr_matrix((one(2 * len(pair)), (np.tile(np.arange(len(pair)), 2),
                                                   np.concatenate([self.f[pair],
                                                                   self.f[self.rev[pair]]]))),
                             shape=(len(pair), self.num_cols))
        extra = n + na
        A = sp.vstack([sp.hstack([model.A, sp.csr_matrix((model.num_rows, extra))]),
                       inflow, parent, both], format="csr")
        return ArrayModel(
            c=np.concatenate([model.c, np.zeros(extra)]), A=A,
            row_lower=np.concatenate([model.row_lower, np.zeros(n), np.full(na, -np.inf),
                                      np.full(len(pair), -np.inf)]),
            row_upper=np.concatenate([model.row_upper, np.zeros(n), np.zeros(na),
                                      np.ones(len(pair))]),
            col_lower=np.concatenate([model.col_lower, np.zeros(extra)]),
            col_upper=np.concatenate([model.col_upper, np.ones(extra)]),
            integrality=np.zeros(self.num_cols, bool), offset=model.offset)

    def reach_cuts(self, z: np.ndarray) -> sp.csr_matrix:
        """Rows (<= 0) x_v - f(δ⁻(S)) - r(S) violated at z, S the support's components."""
        x, r, f = z[self.x], z[self.r], z[self.f]
        on = f > EPS
        support = sp.csr_matrix((np.ones(int(on.sum())), (self.tail[on], self.head[on])),
                                shape=(self.n, self.n))
        rows = []
        order = np.argsort(x, kind="stable")  # the last write per label wins: its max x
        for kind in ("weak", "strong"):
            k, lab = connected_components(support, directed=True, connection=kind)
            cross = lab[self.tail] != lab[self.head]
            inflow = np.bincount(lab[self.head[cross]], f[cross], k)
            best = np.full(k, -1)
            best[lab[order]] = order
            slack = x[best] - inflow - np.bincount(lab, r, k)
            bad = np.flatnonzero(slack > VIOLATION)
            if len(bad):
                rows.append(self._sets_row(lab, bad, best[bad]))
        return sp.vstack(rows, format="csr") if rows else sp.csr_matrix((0, self.num_cols))

    def _sets_row(self, lab: np.ndarray, sets: np.ndarray, v: np.ndarray) -> sp.csr_matrix:
        row = np.full(int(lab.max()) + 1, -1)
        row[sets] = np.arange(len(sets))
        into = (row[lab[self.head]] >= 0) & (lab[self.tail] != lab[self.head])
        inside = row[lab] >= 0
        return sp.csr_matrix((
            np.concatenate([np.ones(len(v)), -np.ones(int(into.sum()) + int(inside.sum()))]),
            (np.concatenate([np.arange(len(v)), row[lab[self.head[into]]], row[lab[inside]]]),
             np.concatenate([self.x[v], self.f[into], self.r[inside]]))),
            shape=(len(sets), self.num_cols))

    def small_set_cuts(self, z: np.ndarray) -> sp.csr_matrix:
        """Rows (<= 0) Σ_{S, free} r - f(δ⁺(S)) violated at z, S of area below the minimum."""
        x, r, f = z[self.x], z[self.r], z[self.f]
        g = self.graph
        cand = np.flatnonzero(self.free & (r > EPS) & ~large_enough(g.area, g.min_size))
        cand = cand[np.argsort(-r[cand], kind="stable")][:BALLS]
        found: list[tuple[np.ndarray, np.ndarray]] = []  # (set, the arcs leaving it)
        covered = np.zeros(self.n, bool)  # in a set found this round: its cut is there
        xs = x.tolist()
        for c in cand:  # (at most BALLS small balls per round; each its own tiny max flow)
            if covered[c]:
                continue
            best = self._best_subset(self._ball(int(c), xs), r, f)
            if best is not None and not covered[best[0]].all():
                covered[best[0]] = True
                found.append(best)
        if not found:
            return sp.csr_matrix((0, self.num_cols))
        sets, leaving = zip(*found, strict=True)
        members = np.concatenate(sets)
        owner = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
        free = self.free[members]
        out = np.concatenate(leaving)
        arc_owner = np.repeat(np.arange(len(sets)), [len(a) for a in leaving])
        return sp.csr_matrix((np.concatenate([np.ones(int(free.sum())), -np.ones(len(out))]),
                              (np.concatenate([owner[free], arc_owner]),
                               np.concatenate([self.r[members[free]], self.f[out]]))),
                             shape=(len(sets), self.num_cols))

    def _ball(self, c: int, x: list[float]) -> np.ndarray:
        """c and its neighbours by largest x while the area stays below the minimum block (in
        plain Python: a ball holds a dozen plots, numpy's per-call cost would dominate)."""
        area, cap = self.area, self.graph.min_size * (1.0 - REL_TOL)  # (as `large_enough`)
        ball, inside, total = [c], {c}, area[c]
        frontier: dict[int, float] = {}
        u = c
        while True:
            for w in self.head[self.indptr[u]:self.indptr[u + 1]].tolist():
                if w not in inside and x[w] > EPS:
                    frontier[w] = x[w]
            for w in [w for w in frontier if total + area[w] >= cap]:
                del frontier[w]  # (the ball only grows: it never fits later)
            if not frontier:
                return np.array(ball)
            u = max(frontier, key=frontier.__getitem__)
            del frontier[u]
            ball.append(u)
            inside.add(u)
            total += area[u]

    def _best_subset(self, ball: np.ndarray, r: np.ndarray, f: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray] | None:
        """The subset S of `ball` most violating Σ_{S, free} r <= f(δ⁺(S)), by a minimum cut
        (source -> u: r_u of free plots, u -> w: f_uw inside, u -> sink: f leaving the ball):
        (S, the arcs leaving S), or None where none is violated."""
        b = len(ball)
        pos = np.full(self.n, -1)
        pos[ball] = np.arange(b)
        a = np.concatenate([np.arange(self.indptr[u], self.indptr[u + 1]) for u in ball])
        inner = pos[self.head[a]] >= 0
        src, snk = b, b + 1
        supply = np.where(self.free[ball], r[ball], 0.0)
        heads = np.concatenate([pos[self.head[a[inner]]], np.arange(b),
                                np.full(int((~inner).sum()), snk)])
        tails = np.concatenate([pos[self.tail[a[inner]]], np.full(b, src),
                                pos[self.tail[a[~inner]]]])
        caps = np.concatenate([f[a[inner]], supply, f[a[~inner]]])
        cap = sp.csr_matrix((np.round(caps * FLOW_SCALE).astype(np.int64), (tails, heads)),
                            shape=(b + 2, b + 2))
        cap.sum_duplicates()
        flow = maximum_flow(cap.astype(np.int32), src, snk).flow
        residual = (cap - flow).tocsr()
        residual.data = (residual.data > 0).astype(np.float64)
        residual.eliminate_zeros()
        side = breadth_first_order(residual, src, directed=True, return_predecessors=False)
        s = np.sort(ball[side[side < b]])
        if not len(s):
            return None
        out = np.concatenate([np.arange(self.indptr[u], self.indptr[u + 1]) for u in s])
        out = out[~np.isin(self.head[out], s)]
        return (s, out) if r[s][self.free[s]].sum() - f[out].sum() > VIOLATION else None


def farmland_part(rule: Rule) -> RulePart | None:
    return next((p for p in rule.parts if p.name == "farmland"), None)


def directed_bound(model: ArrayModel, rule: Rule, time_limit: float
                   ) -> tuple[float | None, list[float], np.ndarray | None]:
    """The best bound of LP rounds on the directed extension of `model` (a cluster's pricing
    problem, minimised) within `time_limit` seconds: (bound or None where no round's LP was
    solved to optimality, each round's bound, `model`'s columns at that best round's LP point —
    a guide for the plan's neighbourhoods). A rule without a farmland part: (None, [], None)."""
    t0 = time.perf_counter()
    part = farmland_part(rule)
    if part is None:
        return None, [], None
    arb = Arborescence(model, part)
    lp = WarmLP(arb.model(model))
    sep = CombinedSeparator(rule, fractional=True)
    fixed = lp.num_rows  # the rows before any cut
    history: list[float] = []
    best: float | None = None
    point: np.ndarray | None = None
    while True:
        left = time_limit - (time.perf_counter() - t0)
        if left <= 0.0:
            break
        sol = lp.solve(left)
        if sol.termination is not Termination.OPTIMAL or sol.x is None or sol.objective is None:
            break  # (infeasible: the caller's other bounds decide; time: the last round stands)
        history.append(sol.objective)
        if best is None or sol.objective > best:
            best, point = sol.objective, sol.x[:model.num_cols]
        if len(history) > STALL_ROUNDS and history[-1] - history[-1 - STALL_ROUNDS] <= STALL * max(
                1.0, abs(history[-1])):
            break
        if time.perf_counter() - t0 >= time_limit:
            break
        if PURGE_EVERY and len(history) % PURGE_EVERY == 0:
            lp.delete_slack(fixed, PURGE_SLACK)  # cut rows no longer binding
        z = sol.x
        directed = sp.vstack([arb.reach_cuts(z), arb.small_set_cuts(z)], format="csr")
        undirected = sep(z[:model.num_cols], False)
        if not directed.shape[0] and (undirected is None or not len(undirected)):
            break
        lp.add_rows(directed, -np.inf, 0.0)
        if undirected is not None and len(undirected):
            lp.add_rows(sp.hstack([undirected.A, sp.csr_matrix(
                (len(undirected), arb.num_cols - model.num_cols))], format="csr"),
                undirected.lower, undirected.upper)
    return best, history, point
