"""The restricted master: a plan assembled from one column (a rule-abiding, locally feasible
plan) per cluster, meeting the coupling rows, solved as a small HiGHS MIP.

One binary per (cluster, column), one convexity row per cluster (exactly one column each), the
coupling rows (the aggregate targets: reduction totals, shares, priority farmland, budget,
balance) over the columns' contributions, and the model's extra columns (shortfalls in elastic
mode) as they are. Every column abides by the rule on its cluster and keeps the cluster's local
rows, and no block crosses a cluster, so every solution of the master is a rule-abiding plan
meeting every row of the model (re-checked before it is handed back).

Price-and-branch: columns from the LP's duals at several scalings, then a few rounds of the
master's LP duals priced again (column generation with a greedy pricer), then the master MIP.
If the master is infeasible, more scalings are tried; if it stays infeasible, the targets the
columns cannot reach together are named.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from optimizer.blocks.construct import Construction, blocking_targets, tolerance
from optimizer.blocks.master.columns import Columns, coefficients, plan_vector, price, unique
from optimizer.blocks.master.partition import Partition, partition
from optimizer.blocks.rule import Rule
from solvers import get_backend
from solvers.base import SolveOptions
from solvers.model import ArrayModel
from solvers.result import Termination

SCALES = (0.0, 0.5, 0.8, 1.0, 1.25, 1.6, 2.5)  # π scalings of the first columns
MORE_SCALES = (4.0, 8.0, 16.0)  # when the master with the first columns is infeasible
CG_ROUNDS = 12  # master LP -> duals -> greedy pricing rounds at most
CG_STALL = 1e-3  # ... until the master LP improves by less than this (relative)
MAX_COUPLING = 200  # more coupling rows (e.g. compactness rows): the decomposition declines
MASTER_GAP = 1e-4  # the master is small: solve it nearly to optimality within its time


def master_model(model: ArrayModel, part: Partition, cols: Columns
                 ) -> tuple[ArrayModel, np.ndarray, np.ndarray]:
    """(the master, cluster of each λ column, variant of each λ column)."""
    cost, M, which, variant = coefficients(model, part, cols)
    n = len(cost)
    ex = part.extra
    A_ex = model.A.tocsr()[part.coupling][:, ex]
    conv = sp.csr_matrix((np.ones(n), (which, np.arange(n))), shape=(part.k, n))
    A = sp.vstack([sp.hstack([M, A_ex]), sp.hstack([conv, sp.csr_matrix((part.k, len(ex)))])],
                  format="csr")
    m = len(part.coupling)
    master = ArrayModel(
        c=np.concatenate([cost, model.c[ex]]), A=A,
        row_lower=np.concatenate([model.row_lower[part.coupling], np.ones(part.k)]),
        row_upper=np.concatenate([model.row_upper[part.coupling], np.ones(part.k)]),
        col_lower=np.concatenate([np.zeros(n), model.col_lower[ex]]),
        col_upper=np.concatenate([np.ones(n), model.col_upper[ex]]),
        integrality=np.concatenate([np.ones(n, bool), model.integrality[ex]]),
        offset=model.offset, row_blocks={"coupling": slice(0, m)})
    return master, which, variant


def assemble(model: ArrayModel, part: Partition, cols: Columns, which: np.ndarray,
             variant: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The model vector of a master solution y."""
    n = len(which)
    pick = np.zeros(part.k, np.int64)
    on = y[:n] > 0.5
    pick[which[on]] = variant[on]
    act = cols.acts[pick[part.comp], np.arange(part.nc)]
    x = plan_vector(act, model.num_cols)
    x[part.extra] = y[n:]
    return x


def _family_rows(part: Partition, family_rows: dict[str, slice]) -> dict[str, slice]:
    """Target rows of the model -> rows of the master (the coupling ones only)."""
    pos = np.full(int(part.coupling.max(initial=-1)) + 1, -1)
    pos[part.coupling] = np.arange(len(part.coupling))
    out = {}
    for key, sl in family_rows.items():
        r = np.arange(sl.start, sl.stop)
        r = r[r < len(pos)]
        p = pos[r]
        if len(p) and (p >= 0).all() and (np.diff(p) == 1).all():
            out[key] = slice(int(p[0]), int(p[-1]) + 1)
    return out


def first_plan(model: ArrayModel, rule: Rule, nc: int, x_lp: np.ndarray | None,
               pi: np.ndarray | None, opts: SolveOptions,
               say: Callable[[str], None] = lambda _m: None,
               family_rows: dict[str, slice] | None = None) -> Construction:
    """A rule-abiding plan meeting every row of `model` from the cluster decomposition, within
    ``opts.time_limit``; `pi`: duals of the model's rows (an LP's), `x_lp`: its point."""
    t0 = time.perf_counter()
    part = partition(model, rule, nc)

    def left(share: float = 1.0) -> float | None:
        if opts.time_limit is None:
            return None
        return max(0.2, share * (opts.time_limit - (time.perf_counter() - t0)))

    if len(part.coupling) > MAX_COUPLING:
        return Construction(None, None, f"{len(part.coupling)} coupling rows: no decomposition",
                            time.perf_counter() - t0)
    base = np.zeros(len(part.coupling))
    if pi is not None:  # duals of an LP before the last cuts: those are local rows
        have = part.coupling < len(pi)
        base[have] = pi[part.coupling[have]]
    cols = unique(price(model, rule, part, [s * base for s in SCALES], x_lp), part)
    highs = get_backend("highs")
    lp_opts = replace(opts, mip_gap=MASTER_GAP, threads=1)
    tried_more = False
    last = np.inf
    for r in range(CG_ROUNDS):
        master, *_ = master_model(model, part, cols)
        lp = highs.solve(replace(master, integrality=np.zeros(master.num_cols, bool)),
                         replace(lp_opts, time_limit=left(0.2)))
        if lp.termination is Termination.INFEASIBLE:
            if tried_more:
                break
            tried_more = True
            cols = unique(cols.extend(price(model, rule, part, [s * base for s in MORE_SCALES])),
                          part)
            continue
        if lp.row_dual is None:
            break
        y = lp.row_dual[:len(part.coupling)]
        say(f"master LP {r + 1}: {lp.objective:,.1f} over {master.num_cols} columns")
        if lp.objective is None or lp.objective > last - CG_STALL * abs(last):
            break
        last = lp.objective
        new = unique(cols.extend(price(model, rule, part, [y, 1.1 * y])), part)
        if int(new.valid.sum()) == int(cols.valid.sum()):
            break
        cols = new
        if opts.time_limit is not None and time.perf_counter() - t0 > 0.3 * opts.time_limit:
            break
    master, which, variant = master_model(model, part, cols)
    res = highs.solve(master, replace(lp_opts, time_limit=left()))
    secs = time.perf_counter() - t0
    if not res.has_solution or res.x is None:
        why = (f"the master over {master.num_cols} cluster columns has no solution "
               f"({res.termination.value})")
        missing = int((cols.valid.sum(axis=0) == 0).sum())
        if missing:
            why += f"; {missing} cluster(s) have no valid column"
        if res.termination is Termination.INFEASIBLE and family_rows:
            short = blocking_targets(master, _family_rows(part, family_rows),
                                     replace(opts, time_limit=left()))
            if short:
                why += "; the columns fall short on: " + ", ".join(
                    f"{k} (by {v:,.1f})" for k, v in short.items())
        return Construction(None, None, why, secs, res.termination)
    x = assemble(model, part, cols, which, variant, res.x)
    if not rule.admissible(x) or model.max_violation(x) > tolerance(model):
        return Construction(None, None, "decomposed plan failed the re-check", secs,
                            res.termination)
    obj = model.objective_value(x)
    say(f"decomposed first plan: objective {obj:,.1f} from {master.num_cols} cluster columns "
        f"in {secs:.1f} s")
    return Construction(x, obj, "decomposed", secs, res.termination)


def remaster(model: ArrayModel, rule: Rule, nc: int, x: np.ndarray,
             solutions: list[tuple[np.ndarray, np.ndarray]], pi: np.ndarray | None,
             opts: SolveOptions) -> np.ndarray | None:
    """A better plan than `x` (a rule-abiding plan meeting every row) from the master over the
    columns of x, of exactly solved cluster problems (`solutions`: full-model plot columns and
    their values) and of greedy pricing under π; None if none is better."""
    part = partition(model, rule, nc)
    if len(part.coupling) > MAX_COUPLING:
        return None
    current = np.zeros(nc, np.int8)
    current[x[:nc] > 0.5] = 1
    current[x[nc:2 * nc] > 0.5] = 2
    exact = current.copy()
    solved = np.zeros(part.k, bool)
    for cols, values in solutions:
        plots = cols[:len(cols) // 2]
        half = len(values) // 2
        exact[plots] = np.where(values[:half] > 0.5, 1, np.where(values[half:] > 0.5, 2, 0))
        solved[part.comp[plots]] = True
    cols = Columns(np.stack([current, exact]), np.stack([np.ones(part.k, bool), solved]))
    if pi is not None:
        base = np.zeros(len(part.coupling))
        have = part.coupling < len(pi)
        base[have] = pi[part.coupling[have]]
        cols = cols.extend(price(model, rule, part, [s * base for s in SCALES]))
    cols = unique(cols, part)
    master, which, variant = master_model(model, part, cols)
    warm = np.concatenate([(variant == 0).astype(float), x[part.extra]])
    res = get_backend("highs").solve(master, replace(opts, mip_gap=MASTER_GAP, threads=1),
                                     warm_start=warm)
    if not res.has_solution or res.x is None:
        return None
    y = assemble(model, part, cols, which, variant, res.x)
    if (model.objective_value(y) >= model.objective_value(x) - 1e-9 * max(1.0, abs(
            model.objective_value(x))) or not rule.admissible(y)
            or model.max_violation(y) > tolerance(model)):
        return None
    return y
