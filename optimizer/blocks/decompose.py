"""The decomposition method (``[contiguity] method = "lns"``): a constructed plan, improved
cluster by cluster, against a bound from the LP relaxation with the block-rule cuts.

1. first plan: from DECOMPOSE_FROM candidates the decomposed one (`master.restricted`: greedy
   rule-abiding columns per cluster priced with the first LP's duals, one small master MIP),
   else — or where that finds none — the construction (`construct`): one MIP over an inner
   approximation of the rule; either is rule-abiding and meets every target (or the message
   names the targets that cannot be met together);
2. bound: LP cut rounds (the separator's valid inequalities; past LP_ROUNDS while the time used is
   below LP_MORE_SHARE of the limit) give a lower bound, and the LP point
   says where the plan may be improved; then the Lagrangian bound of the clusters at the last
   LP's duals (`master.bound`, LAGRANGE_SHARE of the time; a giant cluster's problem by SCIP
   branch-and-cut in DEEP_SHARE more), whose exact cluster solutions go back into the master
   for a better plan; once the best bound proves the plan within `mip_gap`, the method stops
   there;
3. fix-and-optimise (`neighbourhood`): candidate clusters (connected components of the candidate
   adjacency) interact only through the aggregate target rows; groups of clusters, those where
   the LP point and the plan disagree most first, are freed with the rest fixed and re-solved
   (the restriction seeded with the LP point's and the plan's blocks, then row generation
   from there; where a giant cluster is cut into regions — about REGION_PLOTS / 2 plots, several
   scattered ones per neighbourhood — the restriction alone, in 1-3 s, until LNS_REGION_SHARE of
   the time, then one neighbourhood of the plots where the plan and the LP point differ,
   `_near_lp`, instead of the restriction around the LP point — first at the LP point with each
   giant cluster's part replaced by its directed LP point from the Lagrangian bound, which
   also guides the regions, then at the LP point itself),
   several at once on a process pool or a Dask cluster (each group owns a share of every
   row's slack), improvements kept;
4. the rest of the time (from LNS_SHARE of it; none where SCIP has bounded giant clusters that hold
   most candidates, `_skip_last`: the neighbourhoods go on to NEAR_LP_AT, then the near-LP ones,
   then the neighbourhoods again to LNS_DEEP_SHARE, and that plan is the answer against the
   Lagrangian bound): the whole model, warm-started from the
   best plan with the LP cuts; every rule-breaking optimum of a relaxation is repaired by
   `restrict_into` (the restriction seeded with its blocks and the best plan's: on Daxing 10k it
   took the plan from 1.5% to 0.5-0.7% above the bound, where the greedy repair found nothing
   better). The search: SCIP branch-and-cut with the restriction as its heuristic (back-end scip,
   and method "auto" where SCIP is installed, given a plan: its bound is the better one,
   `scip_final`), else row generation in a child process (each round a relaxation, so its bound is
   valid too). The best bound of all is reported and the plan is called optimal only when that bound
   proves it within the requested gap; the plan's distance from the Lagrangian bound, split by
   target rows and clusters (`gap_anatomy`), goes into the result's stats.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np

from instances.instance import Instance
from optimizer.blocks.construct import Construction, blocking_targets, construct, tolerance
from optimizer.blocks.deadline import forks, quiet, run_with_deadline
from optimizer.blocks.master.bound import (
    LagrangianBound,
    clusters_problem,
    decomposition_bound,
    gap_anatomy,
)
from optimizer.blocks.master.partition import partition
from optimizer.blocks.master.restricted import first_plan, remaster
from optimizer.blocks.neighbourhood import (
    Runner,
    auto_workers,
    branch_and_cut_from,
    free_regions,
    region_units,
    restrict_into,
    scip_final,
    sub_problems,
)
from optimizer.blocks.rule import CombinedSeparator, Rule, farmland_rule, repair, with_presolve
from optimizer.blocks.search import (
    LP_ROUNDS,
    ContiguousSolve,
    _expired,
    _full_x,
    _left,
    _lp,
    _row_generation,
)
from optimizer.model.build import PlanModel
from optimizer.model.scenario import Scenario
from solvers import get_backend
from solvers.base import SolveOptions
from solvers.model import ArrayModel
from solvers.result import Result, Termination, relative_gap

AUTO_LNS_CANDIDATES = 2_000  # method "auto": lns from this many candidate plots (measured)
DECOMPOSE_FROM = 1_000  # candidates: from here the decomposed first plan comes first (measured)
LAGRANGE_SHARE = 0.15  # the Lagrangian bound's cluster problems: up to this share of the time
DEEP_SHARE = 0.15  # ... and SCIP branch-and-cut on the giant clusters' (`bound.DEEP_FROM`)
LP_MORE_ROUNDS = 40  # cut rounds beyond LP_ROUNDS, while the time used is below LP_MORE_SHARE
LP_MORE_SHARE = 0.05  # of the limit
LNS_CONSTRUCT_SHARE = 0.5  # without a plan the rest matters little: the construction's share
LNS_SHARE = 0.3  # construction, bound and neighbourhoods: up to this share of the time
LNS_REGION_SHARE = 0.6  # ... where a giant cluster is cut into regions (restriction-only
# neighbourhoods: chaoyang_c50000 went 2,800,885 -> 2,731,894 in 200 s where row-generation
# neighbourhoods reached 2,762,495; with 0.7 of 600 s the plan was better but the last phase,
# short of time, left the bound 0.17% lower: measured)
LNS_DEEP_SHARE = 0.995  # ... where the last phase is left out (`_skip_last`): the
# neighbourhoods to NEAR_LP_AT, the near-LP neighbourhoods, then the neighbourhoods to here (each
# solve within what is left: a 600-s run ends ~597 s; at 0.98 it ended at 587 s, measured)
NEAR_LP_AT = 0.9  # of the time: the near-LP neighbourhoods of a giant cluster start (they gain
# several times what the regions gain in the same seconds by then: chaoyang_c50000, 600 s,
# 1,241-1,617 in 20-30 s at the directed point, where the regions gained ~200; measured)
SKIP_LAST_SHARE = 0.5  # giant clusters holding more of the candidates: no last phase after
# their branch-and-cut (chaoyang_c50000, 75%: that phase gave a lower bound and no better plan;
# daxing_c50000, 31%: it gave the better bound, 0.195% with it against 0.237% without; measured)
GROUP_PLOTS = 600  # candidate plots per neighbourhood (several clusters)
REGION_PLOTS = 200  # a giant cluster's regions: about half this each, so a neighbourhood holds
# several, scattered (chaoyang_c50000, 400 s of neighbourhoods from one plan: 2,720,433 against
# 2,723,489 with 300-plot regions; 600-plot regions in 1,200-plot groups: 2,724,686; measured)
SPLIT_FROM = 2_000  # plots: a larger cluster is cut into regions (a smaller one stays whole:
# on daxing_c10000, clusters of ~1,000 plots whole ended 0.08% better than cut, measured)
SUB_LIMIT = 10.0  # seconds per neighbourhood solve at most
NEAR_LP_LIMIT = 30.0  # seconds for the neighbourhood of the plots where plan and LP point differ
# at most (the restriction alone: on chaoyang_c50000 at 540 s it found its 3,508 in <= 6 s, and
# 30 or 60 s, with row generation after it, found not one more; measured)
NEAR_LP_EVERY = 60.0  # seconds of region neighbourhoods between near-LP passes at the guide
PRICED_AT = 0.25  # of the time: the giant clusters' Lagrangian problem is searched from here
PRICED_UNTIL = 0.55  # ... to here (`_priced`)
STALL_ROUNDS = 3  # without a time limit: stop the neighbourhoods after this many idle passes


def _infeasible(model: ArrayModel, family_rows: dict[str, slice], opts: SolveOptions,
                t0: float) -> ContiguousSolve:
    """No plan exists (the LP with valid cuts is infeasible): name the targets that cannot be
    met together, from the least relative shortfall of that LP (a relaxation, so every plan
    falls short of them at least as much in total)."""
    msg = "LP relaxation with the block-rule cuts is infeasible: no plan meets every target"
    if not _expired(opts, t0):
        short = blocking_targets(_lp(model), family_rows, replace(opts, time_limit=_left(opts, t0)))
        if short:
            msg += "; they fail together on: " + ", ".join(
                f"{k} (short by {v:,.1f})" for k, v in short.items())
    return ContiguousSolve(Result("highs", Termination.INFEASIBLE, False, message=msg), model,
                           "lns", [])


def lp_bound(model: ArrayModel, rule: Rule, opts: SolveOptions, t0: float, share: float,
             say: Callable[[str], None], rounds: int = LP_ROUNDS,
             duals: list[np.ndarray] | None = None, more: int = 0
             ) -> tuple[ArrayModel, float, np.ndarray | None, bool]:
    """LP cut rounds: (model with the cuts, best valid bound, last LP point, LP infeasible);
    each optimal LP's row duals are appended to `duals`. After `rounds`, up to `more` further
    rounds while the time used is below LP_MORE_SHARE of the limit."""
    sep = CombinedSeparator(rule, fractional=True)
    highs = get_backend("highs")
    bound, x = -np.inf, None
    for k in range(rounds + more):
        if _expired(opts, t0) or (k >= rounds and (opts.time_limit is None or time.perf_counter()
                                                   - t0 > LP_MORE_SHARE * opts.time_limit)):
            break
        lp = highs.solve(_lp(model), replace(opts, time_limit=_left(opts, t0, share)))
        if lp.termination is Termination.INFEASIBLE:
            return model, np.inf, None, True
        if not lp.has_solution or lp.x is None:
            break
        x = lp.x
        if lp.termination is Termination.OPTIMAL and lp.objective is not None:
            bound = max(bound, lp.objective)
        if duals is not None and lp.row_dual is not None:
            duals.append(lp.row_dual)
        cuts = sep(lp.x, False)
        if cuts is None:
            break
        model = model.add_rows(cuts.A, cuts.lower, cuts.upper, block="cuts")
        say(f"LP round {k + 1}: bound {lp.objective:,.1f}, {len(cuts)} cuts")
    return model, bound, x, False


def neighbourhoods(comp: np.ndarray, live: np.ndarray, score: np.ndarray, count: int,
                   rng: np.random.Generator, size: int = GROUP_PLOTS) -> list[np.ndarray]:
    """`count` disjoint groups of whole clusters (candidate indices), each up to `size` plots
    (a larger cluster alone), clusters drawn with probability growing with `score`."""
    k = int(comp.max()) + 1 if len(comp) else 0
    plots = np.bincount(comp, minlength=k)
    ok = np.flatnonzero(np.bincount(comp, live, minlength=k) > 0)
    if not len(ok):
        return []
    weight = score[ok] + 1e-9 + 1e-3 * score[ok].max(initial=0.0)
    order = ok[np.argsort(-rng.exponential(1.0, len(ok)) * weight, kind="stable")]
    groups: list[list[int]] = [[] for _ in range(count)]
    fill = np.zeros(count)
    for c in order:
        g = int(np.argmin(fill))
        if fill[g] and fill[g] + plots[c] > size:
            if fill.min() >= size:
                break
            continue
        groups[g].append(int(c))
        fill[g] += plots[c]
    members = np.argsort(comp, kind="stable")
    starts = np.concatenate([[0], np.cumsum(plots)])
    return [np.concatenate([members[starts[c]:starts[c + 1]] for c in g])
            for g in groups if g]


def solve_decomposed(inst: Instance, pm: PlanModel, s: Scenario, backend_name: str,
                     opts: SolveOptions, say: Callable[[str], None], *, workers: int = 1,
                     scheduler: str | None = None) -> ContiguousSolve:
    t0 = time.perf_counter()
    rule = farmland_rule(inst, pm, s)
    model = with_presolve(pm.model, rule, pm)
    nc = len(pm.candidates)
    # one LP first: an infeasible one proves no plan exists (elastic mode takes over)
    duals: list[np.ndarray] = []
    cut_model, bound, x_lp, lp_infeasible = lp_bound(model, rule, opts, t0, 0.1, say, 1, duals)
    if lp_infeasible:
        return _infeasible(cut_model, pm.family_rows, opts, t0)
    built = first_construction(cut_model, model, rule, nc, x_lp, duals, opts, t0, say,
                               pm.family_rows)
    # seconds to the first rule-abiding plan: now, less the time since the construction found it
    first = [] if built.x is None else [time.perf_counter() - t0 - (
        built.seconds - built.first_s if built.first_s is not None else 0.0)]
    cut_model, more, x_more, lp_infeasible = lp_bound(cut_model, rule, opts, t0, 0.2, say,
                                                      duals=duals, more=LP_MORE_ROUNDS)
    if lp_infeasible:  # the LP with valid cuts proves no plan exists
        return _infeasible(cut_model, pm.family_rows, opts, t0)
    bound, x_lp = max(bound, more), (x_more if x_more is not None else x_lp)
    rounds: list[dict] = [{"phase": "construct", "objective": built.objective,
                           "seconds": built.seconds}]
    x = built.x
    if x is None:
        say(built.message)
        x = _repaired_lp(inst, pm, rule, model, x_lp, opts, t0)
        first += [] if x is None else [time.perf_counter() - t0]
    with Runner(auto_workers(workers, nc), scheduler) as runner:
        bound, x, lag = _lagrangian(cut_model, rule, nc, x, duals, opts, t0, bound, runner,
                                    rounds, say)
        guide = _guide(x_lp, lag)
        near = _points(guide, x_lp)[:1] if _giant(rule) else None
        if x is not None and _giant(rule):
            x = _improve(cut_model, rule, x, guide, nc, opts, t0, bound, runner, rounds, say,
                         PRICED_AT, near)
            x = _priced(cut_model, rule, nc, x, lag, duals, opts, t0, bound, runner, rounds, say)
        if x is not None:
            x = _improve(cut_model, rule, x, guide, nc, opts, t0, bound, runner, rounds, say,
                         NEAR_LP_AT, near)
        if x is not None and _giant(rule):
            for point, label in _points(guide, x_lp):
                x = _near_lp(cut_model, rule, x, point, nc, opts, t0, bound, runner, rounds,
                             say, label)
            x = _improve(cut_model, rule, x, guide, nc, opts, t0, bound, runner, rounds, say)
    anatomy = partial(_anatomy, cut_model, rule, nc, lag, say)
    if (proven := _proven(cut_model, x, bound, opts, rounds, say)) is not None:
        if first:
            proven.result.stats["first_plan_s"] = first[0]
        return anatomy(proven)
    if x is not None and _skip_last(rule, rounds):  # it would add neither plan nor bound
        return anatomy(_unproven(cut_model, x, bound, rounds, first))
    backend = get_backend(backend_name if backend_name in ("highs", "scip") else "highs")

    end = None if opts.time_limit is None else t0 + opts.time_limit
    enough = bound + opts.mip_gap * abs(bound) if np.isfinite(bound) else None
    repaired = partial(restrict_into, pm, rule, inst.num_plots, end, opts.mip_gap, enough)
    # the restriction around the LP point with the cuts: a better start for the last phase —
    # unless the region neighbourhoods were that restriction already (chaoyang_c50000 after
    # them: nothing in 92 s; the time goes to the last phase's bound)
    if x is not None and x_lp is not None and not _giant(rule) and not _expired(opts, t0):
        t = time.perf_counter()
        near = restrict_into(pm, rule, inst.num_plots, end, opts.mip_gap, enough, x_lp,
                             cut_model, x)
        if near is not None and cut_model.objective_value(near) < cut_model.objective_value(x):
            x = near
            say(f"restriction around the LP point: objective {cut_model.objective_value(x):,.1f}")
        rounds.append({"phase": "restrict", "objective": cut_model.objective_value(x),
                       "seconds": time.perf_counter() - t})
    warm = None if x is None else _full_x(cut_model, pm, pm.actions(x, inst.num_plots),
                                          _left(opts, t0))
    left = None if opts.time_limit is None else opts.time_limit - (time.perf_counter() - t0)
    child = forks(left, cut_model.num_cols)
    if warm is not None and scip_final(backend_name, s.contiguity.method):
        final = branch_and_cut_from(pm, inst.num_plots, cut_model, rule, warm, opts, t0, enough,
                                    say, first)
        done, last = True, None
    else:
        done, final, last = run_with_deadline(
            _row_generation, (cut_model, rule, backend, opts, t0, warm, quiet if child else say,
                              repaired), left, cut_model.num_cols,
            lambda _x: first.append(time.perf_counter() - t0) if not first else None)
    if not done:  # stopped at the deadline: the best plan so far against the LP bound
        final = ContiguousSolve(Result("highs", Termination.TIME_LIMIT, False,
                                       message="row generation stopped at the time limit"),
                                cut_model, "rowgen")
        if last is not None and (x is None or cut_model.objective_value(last[:len(x)])
                                 < cut_model.objective_value(x)):
            x = last  # the last plan its repairs produced
    res = final.result
    if res.has_solution and res.x is not None and res.objective is not None:
        x, obj = res.x, res.objective
    elif x is not None:
        obj = cut_model.objective_value(x)
    else:
        msg = res.message + ("; " + built.message if built.x is None else "")
        return ContiguousSolve(replace(res, message=msg), final.model, "lns",
                               rounds + final.rounds)
    best = max(bound, res.bound if res.bound is not None else -np.inf)
    best_bound = float(best) if np.isfinite(best) else None
    gap = relative_gap(obj, best_bound)
    proven = gap is not None and gap <= opts.mip_gap + 1e-12
    res = replace(res, has_solution=True, x=x[:final.model.num_cols], objective=obj,
                  bound=best_bound, gap=gap,
                  termination=Termination.OPTIMAL if proven else (
                      res.termination if res.termination is not Termination.OPTIMAL
                      else Termination.TIME_LIMIT))
    res.stats.update({"lns_rounds": sum(r.get("phase") == "lns" for r in rounds)})
    if first:  # seconds from the start of this solve to its first rule-abiding plan
        res.stats["first_plan_s"] = first[0]
    return anatomy(ContiguousSolve(res, final.model, "lns", rounds + final.rounds))


def first_construction(cut_model: ArrayModel, model: ArrayModel, rule: Rule, nc: int,
                       x_lp: np.ndarray | None, duals: list[np.ndarray], opts: SolveOptions,
                       t0: float, say: Callable[[str], None], family_rows: dict[str, slice]
                       ) -> Construction:
    """The first plan: from DECOMPOSE_FROM candidates the decomposed one (cluster columns in a
    small master) first and the whole-model construction only if it finds none; below, the
    other way round."""
    share = replace(opts, time_limit=_left(opts, t0, LNS_CONSTRUCT_SHARE))

    def decomposed() -> Construction:
        pi = duals[-1] if duals else None
        return first_plan(cut_model, rule, nc, x_lp, pi, replace(
            opts, time_limit=_left(opts, t0, LNS_CONSTRUCT_SHARE)), say, family_rows)

    built = decomposed() if nc >= DECOMPOSE_FROM else construct(model, rule, share, say,
                                                                 family_rows)
    if built.x is None and not _expired(opts, t0):
        say(built.message)
        built = construct(model, rule, replace(opts, time_limit=_left(
            opts, t0, LNS_CONSTRUCT_SHARE)), say, family_rows) if nc >= DECOMPOSE_FROM \
            else decomposed()
    return built


def _proven(model: ArrayModel, x: np.ndarray | None, bound: float, opts: SolveOptions,
            rounds: list[dict], say: Callable[[str], None]) -> ContiguousSolve | None:
    """The plan, optimal, where the bound already proves it within the requested gap (the
    final row generation would only repeat the proof); else None."""
    if x is None or not np.isfinite(bound):
        return None
    obj = model.objective_value(x)
    gap = relative_gap(obj, float(bound))
    if gap is None or gap > opts.mip_gap + 1e-12:
        return None
    say(f"the bound {bound:,.1f} proves the plan within {100 * gap:.3f}%")
    res = Result("highs", Termination.OPTIMAL, True, objective=obj, bound=float(bound), gap=gap,
                 x=x, message="proven within the gap by the LP / Lagrangian bound")
    res.stats["lns_rounds"] = sum(r.get("phase") == "lns" for r in rounds)
    return ContiguousSolve(res, model, "lns", rounds)


def _lagrangian(model: ArrayModel, rule: Rule, nc: int, x: np.ndarray | None,
                duals: list[np.ndarray], opts: SolveOptions, t0: float, bound: float,
                runner: Runner, rounds: list[dict], say: Callable[[str], None]
                ) -> tuple[float, np.ndarray | None, LagrangianBound | None]:
    """The Lagrangian bound of the cluster decomposition at the last LP's duals (within
    LAGRANGE_SHARE of the time), and the plan improved by the master over the clusters' exact
    solutions: (the better bound, the plan, the Lagrangian bound or None)."""
    if not duals or _expired(opts, t0):
        return bound, x, None
    t = time.perf_counter()
    limit = None if opts.time_limit is None else min(  # half of what is left, at most
        LAGRANGE_SHARE * opts.time_limit, 0.5 * (opts.time_limit - (t - t0)))
    deep = None if not _deep(rule, opts) else min(  # the giant clusters, as much again
        DEEP_SHARE * opts.time_limit, 0.5 * (opts.time_limit - (t - t0)) - limit)
    lag = decomposition_bound(model, rule, nc, duals[-1], runner, limit, deep)
    if lag is None:
        return bound, x, None
    say(f"Lagrangian bound {lag.value:,.1f} (LP bound {bound:,.1f}; {lag.solved} cluster "
        f"problems solved, {int(lag.exact.sum())} of {len(lag.exact)} clusters exact)")
    if x is not None and lag.columns and not _expired(opts, t0):
        y = remaster(model, rule, nc, x, lag.columns, duals[-1],
                     replace(opts, time_limit=_left(opts, t0, 0.5)))
        if y is not None:
            x = y
            say(f"master over the exact cluster columns: objective {model.objective_value(x):,.1f}")
    rounds.append({"phase": "lagrangian", "bound": lag.value, "solved": lag.solved,
                   "deep": lag.deep, "seconds": time.perf_counter() - t})
    return max(bound, lag.value), x, lag


def _priced(model: ArrayModel, rule: Rule, nc: int, x: np.ndarray, lag: LagrangianBound | None,
            duals: list[np.ndarray], opts: SolveOptions, t0: float, bound: float,
            runner: Runner, rounds: list[dict], say: Callable[[str], None]) -> np.ndarray:
    """The region neighbourhoods on the giant clusters' Lagrangian problem (the target rows
    priced by π, not kept), from the plan's part there, until PRICED_UNTIL of the time; that
    solution then a master column beside the clusters' exact ones. The whole model's
    neighbourhoods each keep the targets with the rest of the plan fixed, so priority farmland
    cannot move between a giant cluster's regions; priced, it can, and the master re-balances
    the targets over the other clusters (chaoyang_c50000 at 12 LP rounds' duals: 200 s of this
    took the giant cluster's part from 211,636 to 133,762 in reduced costs, and the master's
    plan from 2,784,347 to 2,704,660, where 600-s runs end near 2,714,600; measured)."""
    gap = relative_gap(model.objective_value(x), bound)
    if (lag is None or lag.pi is None or not duals or opts.time_limit is None
            or _left(opts, t0, PRICED_UNTIL) < 1.0 or (gap is not None and gap <= opts.mip_gap)):
        return x
    t = time.perf_counter()
    comp = rule.parts[0].graph.comp
    giants = np.flatnonzero(np.bincount(comp) > SPLIT_FROM)
    part = partition(model, rule, nc)
    sub, sub_rule, cols = clusters_problem(model, rule, part, lag.pi, giants)
    pos = np.full(model.num_cols, -1)
    pos[cols] = np.arange(len(cols))
    guide = x[cols].astype(float)
    for pc, values in lag.points:  # the directed LP point, where one was solved
        inside = pos[pc] >= 0
        guide[pos[pc[inside]]] = values[inside]
    near = [(guide, "the directed LP point")] if lag.points else None
    start = sub.objective_value(x[cols])
    y = _improve(sub, sub_rule, x[cols], guide, len(cols) // 2, opts, t0,
                 float(lag.lb[giants].sum()), runner, [], quiet, PRICED_UNTIL, near)
    z = remaster(model, rule, nc, x, [*lag.columns, (cols, y)], duals[-1],
                 replace(opts, time_limit=_left(opts, t0, 0.9)))
    say(f"the giant clusters' Lagrangian problem {start:,.1f} -> {sub.objective_value(y):,.1f}"
        f" in reduced costs; the master over it: "
        + ("no better plan" if z is None else f"objective {model.objective_value(z):,.1f}"))
    x = x if z is None else z
    rounds.append({"phase": "priced", "objective": model.objective_value(x),
                   "seconds": time.perf_counter() - t})
    return x


def _guide(x_lp: np.ndarray | None, lag: LagrangianBound | None) -> np.ndarray | None:
    """The LP point that guides the neighbourhoods, a giant cluster's part replaced by its
    directed LP point where the Lagrangian bound solved one (closer to a rule-abiding plan: the
    rule's islands priced in)."""
    if x_lp is None or lag is None or not lag.points:
        return x_lp
    guide = x_lp.copy()
    for cols, values in lag.points:
        guide[cols] = values
    return guide


def _points(guide: np.ndarray | None, x_lp: np.ndarray | None
            ) -> list[tuple[np.ndarray, str]]:
    """The points for the near-LP neighbourhoods, one after the other, named: the guide, then
    the LP point where they differ (each frees other plots)."""
    if guide is None or x_lp is None:
        return []
    if np.array_equal(guide, x_lp):
        return [(x_lp, "the LP point")]
    return [(guide, "the directed LP point"), (x_lp, "the LP point")]


def _anatomy(model: ArrayModel, rule: Rule, nc: int, lag: LagrangianBound | None,
             say: Callable[[str], None], out: ContiguousSolve) -> ContiguousSolve:
    """The returned plan's distance from the Lagrangian bound, split (`gap_anatomy`) into
    the solver stats: where a gap lies says what would close it (chaoyang_c50000: ~90% in its
    one giant cluster, measured)."""
    res = out.result
    if lag is None or not np.isfinite(lag.value) or not res.has_solution or res.x is None:
        return out
    g = gap_anatomy(model, rule, nc, lag, res.x)
    top = int(np.argmax(g.clusters))  # (a Lagrangian bound comes only with >= 2 clusters)
    res.stats.update({"lagrangian_bound": lag.value, "lagrangian_gap": g.total,
                      "lagrangian_gap_rows": g.rows, "lagrangian_gap_extra": g.extra,
                      "lagrangian_gap_clusters": float(g.clusters.sum()),
                      "lagrangian_gap_top_cluster": float(g.clusters[top]),
                      "lagrangian_gap_top_cluster_plots": float(g.plots[top])})
    if g.total > 0:
        say(f"the plan is {g.total:,.1f} above the Lagrangian bound {lag.value:,.1f}: "
            f"{g.clusters[top]:,.1f} ({g.clusters[top] / g.total:.0%}) in one cluster of "
            f"{int(g.plots[top]):,} plots, {g.clusters.sum() - g.clusters[top]:,.1f} in the "
            f"other {len(g.clusters) - 1:,}, {g.rows + g.extra:,.1f} in the target rows' slack")
    return out


def _repaired_lp(inst: Instance, pm: PlanModel, rule: Rule, model: ArrayModel,
                 x_lp: np.ndarray | None, opts: SolveOptions, t0: float) -> np.ndarray | None:
    """No constructed plan: the greedy repair of the rounded LP point, if it meets every target."""
    if x_lp is None or _expired(opts, t0):
        return None
    fixed = repair(pm, rule, pm.actions(np.round(x_lp), inst.num_plots))
    return None if fixed is None else _full_x(model, pm, fixed, _left(opts, t0))


def _improve(model: ArrayModel, rule: Rule, x: np.ndarray, x_lp: np.ndarray | None, nc: int,
             opts: SolveOptions, t0: float, bound: float, runner: Runner, rounds: list[dict],
             say: Callable[[str], None], until: float = 1.0,
             near: list[tuple[np.ndarray, str]] | None = None) -> np.ndarray:
    """Fix-and-optimise over groups of clusters, and regions of clusters larger than SPLIT_FROM
    (`region_units`, cut free by `free_regions`), until LNS_SHARE of the time is used (or the
    phase's other share, at most `until`; without a time limit, until STALL_ROUNDS passes improve
    nothing); with `near` (a point and its name), a near-LP neighbourhood there first and every
    NEAR_LP_EVERY seconds (the regions move the plan, and the pass finds more again)."""
    graph = rule.parts[0].graph  # the farmland part spans every candidate
    live = (model.col_upper[:nc] > model.col_lower[:nc]) | (
        model.col_upper[nc:2 * nc] > model.col_lower[nc:2 * nc])
    rng = np.random.default_rng(opts.seed)
    k = int(region_units(graph, GROUP_PLOTS, rng, SPLIT_FROM).max()) + 1 if nc else 0
    visits = np.zeros(nc)  # per candidate: how often it was free
    # a giant cluster's regions: the restriction alone per neighbourhood, so many more of them
    # fit (each 1-3 s instead of SUB_LIMIT); whole clusters: row generation polishes after it
    polish, deep = not _giant(rule), _skip_last(rule, rounds)
    idle, obj, last_near = 0, model.objective_value(x), -np.inf
    while nc and idle < STALL_ROUNDS * max(1, k // max(1, runner.workers)):
        share = min(until, LNS_SHARE if polish else LNS_DEEP_SHARE if deep else LNS_REGION_SHARE)
        left = None if opts.time_limit is None else (
            share * opts.time_limit - (time.perf_counter() - t0))
        if left is not None and left < 1.0:
            break
        if (gap := relative_gap(obj, bound)) is not None and gap <= opts.mip_gap:
            break
        if near and left is not None and time.perf_counter() - last_near >= NEAR_LP_EVERY:
            point, label = near[0]
            x = _near_lp(model, rule, x, point, nc, opts, t0, bound, runner, rounds, say,
                         label, left)
            obj, last_near = model.objective_value(x), time.perf_counter()
            continue
        unit = region_units(graph, REGION_PLOTS, rng, SPLIT_FROM)  # big clusters: regions
        units = int(unit.max()) + 1
        seen = np.bincount(unit, visits, units) / np.maximum(np.bincount(unit, None, units), 1)
        score = _disagreement(model, x, x_lp, nc, unit, units) / (1.0 + seen)
        groups = [g for g in free_regions(rule, x, neighbourhoods(
            unit, live, score, runner.workers, rng, GROUP_PLOTS), graph.adj, nc) if len(g)]
        for g in groups:
            visits[g] += 1
        cols = [np.concatenate([g, nc + g]) for g in groups]
        limit = SUB_LIMIT if left is None else max(0.5, min(SUB_LIMIT, left))
        t = time.perf_counter()
        subs = sub_problems(model, rule, x, cols, 2 * nc, limit, opts.mip_gap, x_lp, polish)
        found = runner.map(subs)
        y = x.copy()
        for sub, (xs, _secs) in zip(subs, found, strict=True):
            if xs is not None:
                y[sub.cols] = xs
        if _improves(model, rule, y, obj):
            x, obj, idle = y, model.objective_value(y), 0
            say(f"neighbourhoods: objective {obj:,.1f}")
        else:
            idle += 1
        rounds.append({"phase": "lns", "objective": obj, "groups": len(groups),
                       "seconds": time.perf_counter() - t})
        if left is None and idle >= STALL_ROUNDS:
            break
    return x


def _near_lp(model: ArrayModel, rule: Rule, x: np.ndarray, x_lp: np.ndarray, nc: int,
             opts: SolveOptions, t0: float, bound: float, runner: Runner, rounds: list[dict],
             say: Callable[[str], None], label: str = "the LP point",
             within: float | None = None) -> np.ndarray:
    """One neighbourhood of the plots where the plan and the LP point differ, every plot where
    they agree fixed (RINS), solved by the restriction, then row generation: the regions miss
    it, as it is scattered over the whole cluster (chaoyang_c50000 after 400 s of region
    neighbourhoods: 2,453 better in 3.8 s, where the regions gained ~350 per 10 s; a second
    pass at the same LP point finds nothing; measured); not once `bound` proves the plan; within
    `within` seconds (and the time limit)."""
    gap = relative_gap(model.objective_value(x), bound)
    if _expired(opts, t0) or (gap is not None and gap <= opts.mip_gap):
        return x
    t = time.perf_counter()
    differ = (np.abs(x_lp[:nc] - x[:nc]) > 1e-6) | (np.abs(x_lp[nc:2 * nc] - x[nc:2 * nc]) > 1e-6)
    free = free_regions(rule, x, [np.flatnonzero(differ)], rule.parts[0].graph.adj, nc)[0]
    if not len(free):
        return x
    left = min(v for v in (_left(opts, t0), within, NEAR_LP_LIMIT) if v is not None)
    sub = sub_problems(model, rule, x, [np.concatenate([free, nc + free])], 2 * nc, left,
                       opts.mip_gap, x_lp, polish=False)[0]
    found, _secs = runner.map([sub])[0]
    if found is not None:
        y = x.copy()
        y[sub.cols] = found
        if _improves(model, rule, y, model.objective_value(x)):
            x = y
            say(f"plots where the plan and {label} differ ({len(free):,} free): objective "
                f"{model.objective_value(x):,.1f}")
    rounds.append({"phase": "near_lp", "objective": model.objective_value(x), "free": len(free),
                   "point": label, "seconds": time.perf_counter() - t})
    return x


def _improves(model: ArrayModel, rule: Rule, y: np.ndarray, obj: float) -> bool:
    """Whether the combined plan y costs less than `obj`, abides by the rule and keeps every
    row (each neighbourhood's answer does; the check guards their combination)."""
    return model.objective_value(y) < obj - 1e-9 * max(1.0, abs(obj)) and rule.admissible(y) \
        and model.max_violation(y) <= tolerance(model)


def _unproven(model: ArrayModel, x: np.ndarray, bound: float, rounds: list[dict],
              first: list[float]) -> ContiguousSolve:
    """The best plan at the time limit against the best bound: not proven."""
    obj = model.objective_value(x)
    best = float(bound) if np.isfinite(bound) else None
    res = Result("highs", Termination.TIME_LIMIT, True, objective=obj, bound=best,
                 gap=relative_gap(obj, best), x=x,
                 message="neighbourhoods stopped at the time limit")
    res.stats["lns_rounds"] = sum(r.get("phase") == "lns" for r in rounds)
    if first:
        res.stats["first_plan_s"] = first[0]
    return ContiguousSolve(res, model, "lns", rounds)


def _deep(rule: Rule, opts: SolveOptions) -> bool:
    """Whether the giant clusters get SCIP branch-and-cut in the Lagrangian bound (chaoyang_c50000:
    the whole-model last phase then gave 2,672,680 in 240 s, below that bound, and no better
    plan; `_skip_last` decides on that phase; measured)."""
    return _giant(rule) and opts.time_limit is not None  # (`bound` checks that SCIP is there)


def _deep_ran(rounds: list[dict]) -> bool:
    """Whether the Lagrangian bound solved a giant cluster by branch-and-cut."""
    return any(r.get("deep") for r in rounds)


def _skip_last(rule: Rule, rounds: list[dict]) -> bool:
    """Whether the whole-model last phase is left out: after branch-and-cut on giant clusters
    that hold more than SKIP_LAST_SHARE of the candidates (the whole model is then mostly what
    SCIP has bounded already)."""
    comp = rule.parts[0].graph.comp
    sizes = np.bincount(comp)
    share = sizes[sizes > SPLIT_FROM].sum() / max(1, len(comp))
    return _deep_ran(rounds) and share > SKIP_LAST_SHARE


def _giant(rule: Rule) -> bool:
    """Whether a cluster exceeds SPLIT_FROM plots (its neighbourhoods are regions)."""
    return bool((np.bincount(rule.parts[0].graph.comp) > SPLIT_FROM).any())


def _disagreement(model: ArrayModel, x: np.ndarray, x_lp: np.ndarray | None, nc: int,
                  comp: np.ndarray, k: int) -> np.ndarray:
    """Per cluster: the cost-weighted distance of the LP point from the plan (1 without LP)."""
    if x_lp is None:
        return np.ones(k)
    d = np.abs(x_lp[:2 * nc] - x[:2 * nc]) * np.abs(model.c[:2 * nc])
    return np.bincount(comp, d[:nc] + d[nc:], minlength=k)
