"""A solver step under a hard deadline: run in a child process that is stopped a moment after
its time is up, with intermediate values (incumbents) streamed back.

HiGHS 1.14's root cut separation does not look at its time limit (10 s asked, 43 s taken on an
elastic model with 9,000 candidates), so a time limit passed to it is a wish; this makes it a
promise for the large MIPs (the construction, the last row generation of `lns`).
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from solvers import get_backend
from solvers.base import SolveOptions
from solvers.model import ArrayModel
from solvers.result import Result, Termination

CHILD_MIN_COLS = 5_000  # a MIP this large runs in a child process under a hard deadline
GRACE_S = 1.0  # seconds past its limit before such a child is stopped


def run_with_deadline(fn: Callable[..., Any], args: tuple, seconds: float | None,
                      size: int, on_emit: Callable[[Any], None] | None = None
                      ) -> tuple[bool, Any, Any]:
    """(finished, fn(*args), the last value fn passed to `emit`): in a child process stopped
    `GRACE_S` after `seconds` when the model is large (`size` >= CHILD_MIN_COLS columns) and a
    limit is set — HiGHS 1.14's root cut separation does not look at its time limit (10 s asked,
    43 s taken on an elastic model with 9,000 candidates) — else here. A daemon process (a pool
    or Dask worker) cannot have children: it runs fn here. `on_emit(value)` is called in this
    process as each emitted value arrives (at once, child or not: its clock is this one's)."""
    if not forks(seconds, size):
        saved = _SINK[:]
        _SINK[:] = []
        _LISTENERS.append(on_emit)
        try:
            out = fn(*args)
            return True, out, _SINK[-1] if _SINK else None
        finally:
            _LISTENERS.pop()
            if saved and hasattr(saved[0], "send"):  # a child's connection stays its sink
                _SINK[:] = saved
    ctx = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux")
                                      else "spawn")
    recv, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(send, fn, args), daemon=True)
    child.start()
    send.close()
    deadline = time.perf_counter() + max(0.0, seconds or 0.0) + GRACE_S
    last = None
    try:
        while recv.poll(max(0.0, deadline - time.perf_counter())):
            try:
                kind, value = recv.recv()
            except EOFError:  # the child died
                return False, None, last
            if kind == "done":
                return True, value, last
            last = value
            if on_emit is not None:
                on_emit(value)
        return False, None, last
    finally:
        if child.is_alive():
            child.terminate()
        child.join(1.0)
        if child.is_alive():
            child.kill()
            child.join()
        recv.close()


_SINK: list[Any] = []  # in a child: [connection]; here: the values emitted
_LISTENERS: list[Callable[[Any], None] | None] = []  # in-process runs: their `on_emit`


def emit(value: Any) -> None:
    """Hand an intermediate value (an incumbent) to `run_with_deadline`'s caller."""
    if _SINK and hasattr(_SINK[0], "send"):
        _SINK[0].send(("emit", value))
        return
    _SINK[:] = [value]
    if _LISTENERS and _LISTENERS[-1] is not None:
        _LISTENERS[-1](value)


def solve_within(backend: str, model: ArrayModel, opts: SolveOptions,
                 warm: np.ndarray | None = None) -> Result:
    """`backend`.solve(model) that ends within `opts.time_limit` + GRACE_S: a large model (see
    `run_with_deadline`) is solved in a child process, stopped past its limit; a stopped solve
    hands back its last incumbent (TIME_LIMIT, no bound), or no solution."""
    done, res, last = run_with_deadline(_solve_emitting, (backend, model, opts, warm),
                                        opts.time_limit, model.num_cols)
    if done:
        return res
    if last is None:
        return Result(backend, Termination.TIME_LIMIT, False,
                      message="stopped at the time limit without a solution")
    x, obj = last
    return Result(backend, Termination.TIME_LIMIT, True, objective=obj, x=x,
                  message="stopped at the time limit: its last incumbent")


def _solve_emitting(backend: str, model: ArrayModel, opts: SolveOptions,
                    warm: np.ndarray | None) -> Result:
    """The solve run by `solve_within`, each incumbent emitted (x, objective)."""
    b = get_backend(backend)

    def on_incumbent(x: np.ndarray, obj: float) -> bool:
        emit((np.array(x, copy=True), float(obj)))
        return False

    return b.solve(model, opts, warm_start=warm if "warm_start" in b.capabilities else None,
                   on_incumbent=on_incumbent if "incumbents" in b.capabilities else None)


def forks(seconds: float | None, size: int) -> bool:
    """Whether `run_with_deadline` runs in a child (then its arguments must pickle)."""
    return (seconds is not None and size >= CHILD_MIN_COLS
            and not multiprocessing.current_process().daemon and main_guarded())


def quiet(_message: str) -> None:
    """A progress callback that pickles (for a child process)."""


def main_guarded() -> bool:
    """A child process re-imports the main script: only safe when it guards its work with
    ``if __name__ == "__main__"`` (or there is no script: python -m, an interactive session)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or getattr(main, "__spec__", None) is not None:
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "__main__" in fh.read()
    except OSError:
        return False


def _child(conn: Any, fn: Callable[..., Any], args: tuple) -> None:
    _SINK[:] = [conn]
    try:
        conn.send(("done", fn(*args)))
    finally:
        conn.close()


def pool_context(preload: str) -> multiprocessing.context.BaseContext:
    """Worker processes for a pool: forkserver on Linux (fork from a threaded parent can
    deadlock), with `preload` imported once in the server so each worker skips the heavy
    imports; spawn elsewhere. Shared by the sweep, the neighbourhoods and importance."""
    if sys.platform.startswith("linux"):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([preload])
        return ctx
    return multiprocessing.get_context("spawn")
