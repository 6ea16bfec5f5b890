"""The benchmark peers are fair: on tiny instances the PuLP + CBC flow model a user would write
reaches the brute-force optimum of the same scenario, and the evaluation recomputes targets and
blocks from the plan."""

from __future__ import annotations

import numpy as np

from benchmarks.peers import evaluate, pulp_flow
from optimizer.model.build import build_model
from tests.test_contiguous_solve import CASES


def test_pulp_flow_peer_reaches_the_brute_force_optimum() -> None:
    checked = 0
    for inst, s, best, _ in CASES[:6]:
        row = pulp_flow(inst, s, seconds=30, threads=1)
        if best is None:
            assert not row["plan"] or row["targets_met"] < row["targets"] \
                or row["blocks_breaking_rule"] > 0
            continue
        assert row["plan"] and row["status"] == "Optimal", row
        assert row["targets_met"] == row["targets"] and row["blocks_breaking_rule"] == 0, row
        assert abs(row["objective"] - best) <= 1e-3 * max(1.0, abs(best)), (row, best)
        checked += 1
    assert checked >= 3


def test_evaluate_counts_a_missed_target_and_a_bad_block() -> None:
    inst, s, _, _ = CASES[0]
    pm = build_model(inst, s)
    keep_all = np.zeros(inst.num_plots, dtype=np.int8)
    row = evaluate(inst, s, pm, keep_all)
    assert row["vacated_plots"] == 0 and row["targets_met"] < row["targets"]
    lone = keep_all.copy()
    roots = inst.plots["touches_farmland"].to_numpy(bool)
    area = inst.plots["area_mu"].to_numpy(float)
    small = np.flatnonzero(~roots & (area < s.contiguity.min_block_mu))
    lone[small[0]] = 1
    assert evaluate(inst, s, pm, lone)["blocks_breaking_rule"] >= 1
