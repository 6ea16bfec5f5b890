"""Baseline for the model build: the same ArrayModel rebuilt the way a PuLP user writes it, one
``pulp.LpVariable`` per column and one ``lpSum`` per row, then handed to a solver as PuLP does
(``writeMPS``, what ``PULP_CBC_CMD`` runs before calling cbc).

Only the PuLP side is timed here; the arrays it reads already exist. The array side measured
against it (``build_model`` + HiGHS ``passModel``) also computes the plot rules and target
families, so the ratio understates the array build's advantage, never overstates it.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pulp

from solvers.model import ArrayModel


@dataclass
class PulpBuild:
    build_s: float  # LpVariable + lpSum objects, objective and constraints added to the problem
    write_s: float  # writeMPS of the finished problem (PuLP's hand-off to CBC)
    variables: int
    constraints: int  # PuLP constraints (a ranged row counts twice)


def _variables(model: ArrayModel) -> list[pulp.LpVariable]:
    cols = []
    for j in range(model.num_cols):
        lo = float(model.col_lower[j])
        up = float(model.col_upper[j])
        cat = pulp.LpInteger if model.integrality[j] else pulp.LpContinuous
        cols.append(pulp.LpVariable(f"x{j}", lowBound=None if np.isneginf(lo) else lo,
                                    upBound=None if np.isposinf(up) else up, cat=cat))
    return cols


def build_pulp(model: ArrayModel) -> tuple[pulp.LpProblem, PulpBuild]:
    """The PuLP problem of ``model`` and how long building it took (a per-row Python loop is
    the point of the baseline)."""
    t0 = time.perf_counter()
    prob = pulp.LpProblem("baseline", pulp.LpMinimize)
    with warnings.catch_warnings():  # PuLP 3.3 warns on every LpVariable (deprecated in 4.0)
        warnings.simplefilter("ignore", DeprecationWarning)
        x = _variables(model)
    prob += pulp.lpSum(float(c) * x[j] for j, c in enumerate(model.c) if c != 0) + model.offset
    A = model.A.tocsr()
    count = 0
    for i in range(model.num_rows):
        lo, hi = A.indptr[i], A.indptr[i + 1]
        expr = pulp.lpSum(float(v) * x[j] for j, v in zip(A.indices[lo:hi], A.data[lo:hi],
                                                           strict=True))
        rl, ru = float(model.row_lower[i]), float(model.row_upper[i])
        if rl == ru:
            prob += expr == rl, f"r{i}"
            count += 1
            continue
        if np.isfinite(rl):
            prob += expr >= rl, f"r{i}_lo"
            count += 1
        if np.isfinite(ru):
            prob += expr <= ru, f"r{i}_up"
            count += 1
    build_s = time.perf_counter() - t0
    return prob, PulpBuild(build_s, 0.0, len(x), count)


def time_pulp(model: ArrayModel) -> PulpBuild:
    """Build the PuLP problem and write it as MPS (to a temporary file, removed after)."""
    prob, out = build_pulp(model)
    fd, path = tempfile.mkstemp(suffix=".mps")
    os.close(fd)
    try:
        t = time.perf_counter()
        prob.writeMPS(path)
        out.write_s = time.perf_counter() - t
    finally:
        os.unlink(path)
    return out
