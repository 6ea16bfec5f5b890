"""Steps that ignore their time limit, for tests/test_lns.py and tests/test_time_limits.py (a
light module: a child process imports it to run it)."""

from __future__ import annotations

import time
from typing import Any

from optimizer.blocks.deadline import emit


def slow(seconds: float) -> str:
    emit("first")
    emit("second")
    time.sleep(seconds)
    return "done"


def rowgen_stalling_on_schedules(model: Any, rule: Any, *args: Any) -> Any:
    """Row generation, except on a time-expanded model (more columns than one period's
    farmland and forest columns): there it hangs past any limit without a plan, as HiGHS 1.14's
    root cut separation did (124 s asked, 323 s taken)."""
    from optimizer.blocks.search import _row_generation

    if model.num_cols > 2 * len(rule.parts[0].cols):
        time.sleep(STALL_S)
    return _row_generation(model, rule, *args)


def solve_stalling_with_a_start(backend: str, model: Any, opts: Any, warm: Any) -> Any:
    """`deadline._solve_emitting`, except that a solve given a start (the monolithic schedule,
    warm-started from the two-stage plan) hangs past any limit without a plan."""
    from optimizer.blocks.deadline import _solve_emitting

    if warm is not None:
        time.sleep(STALL_S)
    return _solve_emitting(backend, model, opts, warm)


STALL_S = 300.0
