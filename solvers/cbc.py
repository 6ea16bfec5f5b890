"""CBC back-end: PuLP 3.3.2's bundled ``cbc`` binary fed a free-MPS file written from the arrays.

No PuLP model objects are built (one Python object per variable is ~100x slower at 100k plots):
``write_mps`` formats whole columns with pandas. Columns are named ``x<j>`` and rows ``r<i>`` by
their index in the ArrayModel, so the solution file maps straight back. Integer columns are moved
to the front of COLUMNS so one INTORG/INTEND marker pair covers them; every column gets explicit
bounds (readers disagree on defaults for integer columns). The objective offset is not written
(readers disagree on its sign); objectives are re-evaluated as ``c @ x + offset``.

The bound comes from CBC's final log block ("Lower bound:"); when CBC prints none for a stopped
run, the bound and gap are reported as None rather than guessed.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import ClassVar, TextIO

import numpy as np
import pandas as pd
import scipy.sparse as sp

from solvers.base import (
    Backend,
    SolveRequest,
)
from solvers.model import ArrayModel
from solvers.result import Result, Termination, relative_gap


def _emit(fh: TextIO, *fields: np.ndarray | str) -> None:
    """Write data lines, each starting with a space as MPS wants. String fields are constants;
    float arrays print as repr (shortest exact form). One %-format over the whole block runs in C,
    3x faster than DataFrame.to_csv."""
    arrays = [f for f in fields if not isinstance(f, str)]
    if not arrays or len(arrays[0]) == 0:
        return
    count = len(arrays[0])
    line = " " + " ".join(
        f.replace("%", "%%") if isinstance(f, str) else ("%r" if f.dtype.kind == "f" else "%s")
        for f in fields
    ) + "\n"
    values = np.empty(count * len(arrays), dtype=object)
    for k, arr in enumerate(arrays):
        values[k :: len(arrays)] = arr.tolist() if arr.dtype.kind == "f" else arr
    fh.write((line * count) % tuple(values.tolist()))


def _names(prefix: str, idx: np.ndarray) -> np.ndarray:
    return np.char.add(prefix, idx.astype(np.int64).astype(str))


def write_mps(model: ArrayModel, path: str | Path) -> None:
    """Write ``model`` as free MPS (minimisation, no offset). Free rows are left out."""
    n = model.num_cols
    lo, up = model.row_lower, model.row_upper
    kept = np.flatnonzero(np.isfinite(lo) | np.isfinite(up))
    lo, up = lo[kept], up[kept]
    row_names = _names("r", kept)
    eq = lo == up
    has_lo, has_up = np.isfinite(lo), np.isfinite(up)
    kind = np.where(eq, "E", np.where(has_lo, "G", "L"))
    rhs = np.where(has_lo, lo, up)
    ranged = has_lo & has_up & ~eq

    # integer columns first, so a single marker pair covers them
    order = np.concatenate([np.flatnonzero(model.integrality), np.flatnonzero(~model.integrality)])
    n_int = int(model.integrality.sum())
    csc = sp.csc_matrix(model.A[kept][:, order])
    csc.sort_indices()
    counts = np.diff(csc.indptr) + 1  # + the objective entry, which also declares the column
    total = int(counts.sum())
    obj_pos = csc.indptr[:-1] + np.arange(n)
    is_obj = np.zeros(total, dtype=bool)
    is_obj[obj_pos] = True
    entry_rows = np.empty(total, dtype=object)
    entry_rows[obj_pos] = "obj"
    entry_rows[~is_obj] = row_names[csc.indices]
    values = np.empty(total)
    values[obj_pos] = model.c[order]
    values[~is_obj] = csc.data
    entry_cols = np.repeat(_names("x", order), counts)
    split = int(csc.indptr[n_int] + n_int)  # first entry of the first continuous column

    col_names = _names("x", np.arange(n))
    with open(path, "w") as fh:
        fh.write("NAME greenbelt\nROWS\n N obj\n")
        _emit(fh, kind, row_names)
        fh.write("COLUMNS\n")
        if n_int:
            fh.write(" MARKER 'MARKER' 'INTORG'\n")
            _emit(fh, entry_cols[:split], entry_rows[:split], values[:split])
            fh.write(" MARKER 'MARKER' 'INTEND'\n")
        _emit(fh, entry_cols[split:], entry_rows[split:], values[split:])
        fh.write("RHS\n")
        _emit(fh, "RHS", row_names, rhs)
        if ranged.any():
            fh.write("RANGES\n")
            _emit(fh, "RNG", row_names[ranged], (up - lo)[ranged])
        fh.write("BOUNDS\n")
        finite_lo = np.isfinite(model.col_lower)
        finite_up = np.isfinite(model.col_upper)
        _emit(fh, "LO", "BND", col_names[finite_lo], model.col_lower[finite_lo])
        _emit(fh, "MI", "BND", col_names[~finite_lo])
        _emit(fh, "UP", "BND", col_names[finite_up], model.col_upper[finite_up])
        _emit(fh, "PL", "BND", col_names[~finite_up])
        fh.write("ENDATA\n")


def write_start(x: np.ndarray, path: str | Path) -> None:
    """A CBC solution file (the format ``-mips`` reads) holding the start values."""
    n = x.shape[0]
    with open(path, "w") as fh:
        fh.write("Stopped on time - objective value 0\n")
        _emit(fh, np.arange(n).astype(str), _names("x", np.arange(n)), x.astype(float), "0")


def read_solution(path: str | Path, n: int) -> tuple[str, np.ndarray]:
    """Header line and column values from a CBC solution file (absent columns are 0)."""
    with open(path) as fh:
        header = fh.readline().strip()
        body = fh.read()
    x = np.zeros(n)
    if body.strip():
        # infeasible rows/columns are flagged with a leading "**"
        table = pd.read_csv(
            pd.io.common.StringIO(body.replace("**", "")),
            sep=r"\s+",
            header=None,
            usecols=[1, 2],
            names=["name", "value"],
            dtype={"name": str, "value": np.float64},
            engine="c",
        )
        cols = table[table["name"].str.startswith("x")]
        x[cols["name"].str.slice(1).astype(np.int64).to_numpy()] = cols["value"].to_numpy()
    return header, x


def _log_number(log: str, label: str, *, round_down: bool = False) -> float | None:
    """Last ``label: value`` in the log. With round_down, subtract half a unit of the printed
    last digit, so a bound CBC rounded for printing (e.g. to 3 decimals) stays a valid bound."""
    matches = re.findall(rf"^{label}:\s+(\S+)", log, flags=re.MULTILINE)
    if not matches:
        return None
    text = matches[-1]
    try:
        value = float(text)
    except ValueError:
        return None
    if round_down and "e" not in text.lower():
        decimals = len(text.split(".")[1]) if "." in text else 0
        value -= 0.5 * 10.0**-decimals
    return value


def _termination(log: str, header: str) -> Termination:
    result = re.search(r"^Result - (.*)$", log, flags=re.MULTILINE)
    text = (result.group(1) if result else header).lower()
    if "infeasible" in text:
        return Termination.INFEASIBLE
    if "unbounded" in text:
        return Termination.UNBOUNDED
    if "time" in text:
        return Termination.TIME_LIMIT
    if "node" in text or "solution limit" in text or "iteration" in text:
        return Termination.NODE_LIMIT
    if "user" in text or "interrupt" in text or "stopped" in text:
        return Termination.INTERRUPTED
    if "optimal" in text:
        return Termination.OPTIMAL
    return Termination.OTHER


class CbcBackend(Backend):
    name: ClassVar[str] = "cbc"
    capabilities: ClassVar[frozenset[str]] = frozenset({"warm_start", "continuous"})

    def __init__(self, path: str | None = None) -> None:
        self._path = path

    def cbc_path(self) -> str:
        if self._path is None:
            import pulp

            # the class attribute: instantiating PULP_CBC_CMD only adds a PuLP 4 deprecation warning
            self._path = str(pulp.PULP_CBC_CMD.pulp_cbc_path)
        return self._path

    def _solve(self, req: SolveRequest) -> Result:
        model, opts = req.model, req.options
        warm_start = req.warm_start
        n = model.num_cols
        with tempfile.TemporaryDirectory(prefix="greenbelt-cbc-") as tmp:
            t0 = time.perf_counter()
            mps, sol, start = Path(tmp, "model.mps"), Path(tmp, "model.sol"), Path(tmp, "start")
            write_mps(model, mps)
            # -timeMode elapsed: CBC's -sec is CPU time by default; our limit is wall clock
            args = [self.cbc_path(), str(mps), "-timeMode", "elapsed"]
            args += ["-ratioGap", repr(float(opts.mip_gap)), "-threads", str(opts.threads)]
            # seed 0 means "time of day" to CBC and CLP: shift to keep runs reproducible
            args += ["-randomCbcSeed", str(opts.seed + 1), "-randomSeed", str(opts.seed + 1)]
            if opts.time_limit is not None:
                args += ["-sec", repr(float(opts.time_limit))]
            if warm_start is not None:
                write_start(np.asarray(warm_start, dtype=np.float64), start)
                args += ["-mips", str(start)]
            args += ["-solve" if model.integrality.any() else "-initialSolve"]
            args += ["-solution", str(sol)]
            build_time = time.perf_counter() - t0
            t1 = time.perf_counter()
            proc = subprocess.run(args, capture_output=True, text=True, check=False)
            solve_time = time.perf_counter() - t1
            log = proc.stdout + proc.stderr
            if opts.verbose:
                print(log)
            if not sol.exists():
                return Result(
                    self.name, Termination.ERROR, False, build_time=build_time,
                    solve_time=solve_time, message=log[-2000:],
                )
            header, x = read_solution(sol, n)
        return self._result(model, log, header, x, build_time, solve_time, opts.time_limit)

    def _result(
        self,
        model: ArrayModel,
        log: str,
        header: str,
        x: np.ndarray,
        build_time: float,
        solve_time: float,
        time_limit: float | None = None,
    ) -> Result:
        termination = _termination(log, header)
        if (
            termination == Termination.INFEASIBLE
            and time_limit is not None
            and solve_time >= 0.9 * time_limit
        ):
            # CBC 2.10 says "Pre-processing says infeasible" when the time limit interrupts
            # its preprocessing (seen on a feasible 40k-column model): not a proof
            termination = Termination.TIME_LIMIT
            header += " [infeasible claim at the time limit not trusted]"
        # the header says "objective value" only when the file holds a (primal) feasible point
        has_solution = termination != Termination.INFEASIBLE and "objective value" in header
        if has_solution and "no integer solution" in log.lower() and model.integrality.any():
            has_solution = termination == Termination.OPTIMAL
        x = model.round_integers(x)
        if has_solution and model.max_violation(x) > 1e-5 * max(1.0, np.abs(x).max()):
            has_solution = False
        objective = model.objective_value(x) if has_solution else None
        lower = _log_number(log, "Lower bound", round_down=True)
        bound = None if lower is None else lower + float(model.offset)
        if termination == Termination.OPTIMAL and objective is not None:
            bound = objective if bound is None else min(bound, objective)
        stats: dict[str, float] = {}
        nodes = _log_number(log, "Enumerated nodes")
        if nodes is not None:
            stats["nodes"] = nodes
        return Result(
            solver=self.name,
            termination=termination,
            has_solution=has_solution,
            objective=objective,
            bound=bound if termination != Termination.INFEASIBLE else None,
            gap=relative_gap(objective, bound),
            x=x if has_solution else None,
            build_time=build_time,
            solve_time=solve_time,
            message=header,
            stats=stats,
        )
