"""Worker processes that never outlive their sweep, and a Dask scheduler reached fast or not at all.

A sweep's local workers are forked from a forkserver, not from the sweep itself. Each worker
(`die_with_parent`, the pool's initializer) asks Linux to kill it when its parent dies
(prctl PR_SET_PDEATHSIG; the forkserver exits when the sweep does) and runs a watchdog thread
that kills it within WATCH_S seconds of the sweep's own process ending, whatever the platform.
So `kill -9` of the sweep leaves no worker computing for nobody; on Ctrl-C or an error the sweep
itself ends its workers (`stop_workers`).
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from optimizer.batch.specs import SweepError

WATCH_S = 0.5  # how often a worker looks for its sweep
PR_SET_PDEATHSIG = 1  # linux/prctl.h
DASK_CONNECT_S = 10  # seconds to reach a Dask scheduler before the sweep gives up
DASK_ADDRESS = re.compile(r"^((tcp|tls|ws|wss|ucx)://)?(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}/?$"
                          r"|^inproc://\S+$")


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a killed process not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: existence is all we can tell


def die_with_parent(sweep_pid: int) -> None:
    """In a worker: be killed when the forkserver dies (Linux) and when the sweep dies."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while alive(sweep_pid):
            time.sleep(WATCH_S)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="greenbelt-sweep-watchdog", daemon=True).start()


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's worker processes now (running scenarios are abandoned, not awaited)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.kill()
        except (OSError, ValueError):
            pass


def dask_client(address: str):  # -> distributed.Client
    """A client of the scheduler at `address`, or a one-line SweepError at once for a malformed
    address and within DASK_CONNECT_S for an unreachable one."""
    from distributed import Client

    check_dask_address(address)
    try:
        return Client(address, set_as_default=False, timeout=f"{DASK_CONNECT_S}s")
    except (OSError, TimeoutError) as err:
        raise SweepError(f"--scheduler {address}: no Dask scheduler answered within "
                         f"{DASK_CONNECT_S:g} s ({type(err).__name__})") from None


def check_dask_address(address: str) -> None:
    """The form of a scheduler address, checked before anything else is done."""
    if not DASK_ADDRESS.match(address):
        raise SweepError(f"--scheduler {address!r}: not a Dask scheduler address "
                         "(expected e.g. tcp://host:8786)")
