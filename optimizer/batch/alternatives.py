"""What `portfolio` and `importance` share: edits of a built model (plots that may not be
vacated, extra rows), the built model cached per worker process, the LP bound screen, and tasks
run in this process, on a local process pool or on a Dask cluster, dispatched lazily so that a
task the screen has decided meanwhile is never sent.

Every solve goes through `optimizer.plan.solve.solve_built`: the scenario's own model and solve
path (block rule included), with extra rows and tightened column bounds, never a second model.
With [phasing] that model is the time-expanded schedule (`model/phasing.py`): the last year's
f/g are its first 2n columns, so an edit of the end state (a plot that may not be vacated, a
diversity row) reads the same columns as in the single-period model, and since f[i, k] <=
f[i, k+1] a plot kept at the end is kept in every year, and a plot that is not farmland at the end
is farmland in no year. The LP screen stays valid: it reads the time-expanded LP's marginals.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from instances.instance import Instance
from optimizer.blocks.rule import farmland_blocks
from optimizer.blocks.search import plan_vector
from optimizer.model.build import PlanModel, build_model
from optimizer.model.phasing import PhasedPlanModel, build_phased
from optimizer.model.scenario import Scenario, scenario_from_dict
from optimizer.plan.phased import phased_rule, schedule_vector
from optimizer.plan.solve import solve_built
from solvers.base import Cuts
from solvers.model import ArrayModel

T = TypeVar("T")


class AlternativesError(ValueError):
    """A portfolio or importance run that cannot start; the message is for planners."""


def build(inst: Instance, s: Scenario) -> PlanModel:
    """The scenario's model: the time-expanded schedule model with [phasing], else the
    single-period one. Portfolio and importance edit it and solve it through `solve_built`."""
    return build_phased(inst, s) if s.phasing.enabled else build_model(inst, s)


def plan_value(inst: Instance, s: Scenario, pm: PlanModel, actions: np.ndarray,
               years: np.ndarray | None = None) -> float | None:
    """The objective of a plan (with [phasing]: a schedule, `years` per plot) that meets every
    row, bound and rule of `pm`; None if it does not (or a schedule comes without years)."""
    if isinstance(pm, PhasedPlanModel):
        x = schedule_vector(pm, actions, years) if years is not None else None
        if x is None or (s.contiguity.enabled and not phased_rule(inst, pm, s).admissible(x)):
            return None
        return pm.model.objective_value(x)
    x = plan_vector(pm.model, pm, actions)
    if x is None or (s.contiguity.enabled and not farmland_blocks(inst, actions, s).ok):
        return None
    return pm.model.objective_value(x)


def strict(s: Scenario) -> Scenario:
    """A copy without elastic mode: alternatives must meet every target, not trade shortfalls."""
    out = copy.deepcopy(s)
    out.elastic.enabled = False
    return out


def with_rows(pm: PlanModel, rows: Cuts | None) -> PlanModel:
    if rows is None or not len(rows):
        return pm
    return replace(pm, model=pm.model.add_rows(rows.A, rows.lower, rows.upper))


def stack(parts: Iterable[Cuts | None]) -> Cuts | None:
    found = [c for c in parts if c is not None and len(c)]
    if not found:
        return None
    return Cuts(sp.vstack([c.A for c in found], format="csr"),
                np.concatenate([c.lower for c in found]), np.concatenate([c.upper for c in found]))


def forbid(pm: PlanModel, plots: np.ndarray, farmland: bool = True,
           forest: bool = True) -> PlanModel:
    """Candidates `plots` (candidate indices) may not become farmland and/or forest."""
    upper = pm.model.col_upper.copy()
    nc = len(pm.candidates)
    if farmland:
        upper[plots] = 0.0
    if forest:
        upper[nc + np.asarray(plots)] = 0.0
    return replace(pm, model=replace(pm.model, col_upper=upper))


def objective_cap(model: ArrayModel, cap: float) -> Cuts:
    """c @ x + offset <= cap."""
    return Cuts(sp.csr_matrix(model.c.reshape(1, -1)), np.array([-np.inf]),
                np.array([cap - model.offset]))


# ---------------------------------------------------------------- the plan examined


def solved_plan(inst: Instance, s: Scenario, pm: PlanModel) -> tuple[
        np.ndarray, np.ndarray | None, float, float, str, Cuts | None]:
    """The scenario's optimal plan: actions, years ([phasing]), objective, dual bound, status,
    block-rule cuts."""
    base = solve_built(inst, s, pm)
    plan, r = base.plan, base.plan.result
    if r is None or not r.has_solution or not plan.all_met or r.objective is None:
        raise AlternativesError(f"the scenario has no plan meeting every target ({plan.status}); "
                                "`greenbelt solve` reports the shortfalls")
    bound = r.bound if r.bound is not None and np.isfinite(r.bound) else -np.inf
    return plan.actions, plan.years, float(r.objective), bound, plan.status, base.rule_rows


def given_plan(inst: Instance, s: Scenario, pm: PlanModel, actions: np.ndarray,
           years: np.ndarray | None) -> tuple[
        np.ndarray, np.ndarray | None, float, float, str, Cuts | None]:
    """A plan from a file: it must meet the scenario; the bound is the LP relaxation's."""
    if isinstance(pm, PhasedPlanModel) and years is None:
        raise AlternativesError("the scenario has [phasing]: the plan needs a `year` column")
    value = plan_value(inst, s, pm, actions, years)
    if value is None:
        raise AlternativesError("the plan misses a target or breaks a rule of the scenario; "
                                "`greenbelt check` names which")
    z_lp, _ = lp_bounds(pm.model, [])
    return actions, years, value, z_lp, "given plan", None


# ---------------------------------------------------------------- LP bound screen


def lp_bounds(model: ArrayModel, forced: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """LP relaxation value z and, for each set of columns in `forced`, a lower bound on the LP
    (hence the MIP) with those columns fixed at 0: z - sum_j m_j * u_j over its columns, m_j the
    LP's marginal of column j's upper bound u_j (a subgradient of the convex value function).
    Returns (-inf, -inf...) if the LP is not solved to optimality."""
    z, low, _ = lp_screen(model, forced)
    return z, low


def lp_screen(model: ArrayModel, forced: list[np.ndarray]
              ) -> tuple[float, np.ndarray, np.ndarray | None]:
    """`lp_bounds` and the LP's reduced costs at the columns' lower bounds (None if the LP is
    not solved): where fix-and-optimise looks for a replacement first."""
    A = model.A.tocsr()
    up, lo = np.isfinite(model.row_upper), np.isfinite(model.row_lower)
    A_ub = sp.vstack([A[up], -A[lo]], format="csr")
    b_ub = np.concatenate([model.row_upper[up], -model.row_lower[lo]])
    res = linprog(model.c, A_ub=A_ub, b_ub=b_ub,
                  bounds=np.c_[model.col_lower, model.col_upper], method="highs")
    if res.status != 0:
        return -np.inf, np.full(len(forced), -np.inf), None
    z = float(res.fun) + model.offset
    m = np.minimum(np.asarray(res.upper.marginals, float), 0.0)  # <= 0 for a minimisation
    u = np.where(np.isfinite(model.col_upper), model.col_upper, 0.0)
    return z, np.array([z - float((m[cols] * u[cols]).sum()) for cols in forced]), \
        np.asarray(res.lower.marginals, float)


# ---------------------------------------------------------------- worker-side cache

_BUILT: dict[str, tuple[Instance, Scenario, PlanModel]] = {}
_LOCK = threading.Lock()


def prime(instance: str, fingerprint: str, inst: Instance) -> None:
    """Hand an instance loaded here to in-process tasks (workers=1)."""
    from optimizer.batch import sweep

    with sweep._LOAD_LOCK:
        sweep._INSTANCES.clear()
        sweep._INSTANCES[(instance, fingerprint)] = inst


def built(instance: str, fingerprint: str,
          scenario: dict[str, Any]) -> tuple[Instance, Scenario, PlanModel]:
    """The instance, scenario and built model, loaded and built once per worker process."""
    from optimizer.batch.sweep import _instance

    key = fingerprint + json.dumps(scenario, sort_keys=True, default=str)
    with _LOCK:
        hit = _BUILT.get(key)
    if hit is not None:
        return hit
    inst = _instance(instance, fingerprint)
    s = scenario_from_dict(scenario, scenario.get("name", "scenario"))
    out = (inst, s, build(inst, s))
    with _LOCK:
        _BUILT.clear()
        _BUILT[key] = out
    return out


# ---------------------------------------------------------------- running tasks


def run_tasks(
    fn: Callable[[T], dict[str, Any]],
    tasks: list[T],
    done: Callable[[T, dict[str, Any]], None],
    *,
    wanted: Callable[[T], bool] = lambda _t: True,
    workers: int = 1,
    scheduler: str | None = None,
) -> None:
    """Run fn on each task still `wanted` when its turn comes, at most `workers` at once, and
    hand each result to `done` (in this process) as it arrives. A task that raises becomes
    {"error": message}."""
    queue = iter(tasks)

    def next_task() -> T | None:
        for t in queue:
            if wanted(t):
                return t
        return None

    if scheduler:
        _run_dask(fn, next_task, done, scheduler, workers)
        return
    if workers <= 1:
        while (t := next_task()) is not None:
            done(t, _call(fn, t))
        return
    from optimizer.batch.sweep import _pool_context

    with ProcessPoolExecutor(workers, mp_context=_pool_context()) as pool:
        running: dict[Future, T] = {}

        def fill() -> None:
            while len(running) < workers and (t := next_task()) is not None:
                running[pool.submit(fn, t)] = t

        fill()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                t = running.pop(fut)
                done(t, _outcome(fut))
            fill()


def _call(fn: Callable[[T], dict[str, Any]], t: T) -> dict[str, Any]:
    try:
        return fn(t)
    except Exception as err:  # one failed re-solve must not stop the others
        return {"error": f"{type(err).__name__}: {err}"}


def _outcome(fut: Any) -> dict[str, Any]:
    try:
        return fut.result()
    except Exception as err:  # a crashed worker or a task that raised
        return {"error": f"{type(err).__name__}: {err}"}


def _run_dask(fn: Callable[[T], dict[str, Any]], next_task: Callable[[], T | None],
              done: Callable[[T, dict[str, Any]], None], address: str, workers: int) -> None:
    from distributed import Client
    from distributed import as_completed as dask_completed

    with Client(address, set_as_default=False) as client:
        slots = max(workers, len(client.scheduler_info().get("workers", {})), 1)
        running: dict[Any, T] = {}
        stream = dask_completed([], loop=client.loop)

        def submit() -> None:
            t = next_task()
            if t is not None:
                fut = client.submit(fn, t, pure=False)
                running[fut] = t
                stream.add(fut)

        for _ in range(slots):
            submit()
        for fut in stream:
            done(running.pop(fut), _outcome(fut))
            submit()
