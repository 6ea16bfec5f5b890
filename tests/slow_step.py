"""A step that ignores its time limit, for tests/test_lns.py (a light module: a child process
imports it to run it)."""

from __future__ import annotations

import time

from optimizer.blocks.deadline import emit


def slow(seconds: float) -> str:
    emit("first")
    emit("second")
    time.sleep(seconds)
    return "done"
