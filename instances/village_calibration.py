"""Calibration figures of the village mode, one README table row per run:

    python -m instances.village_calibration DISTRICT CANDIDATES [OUT.gpkg]

(one process per row, so that the peak memory is that of the row; seed 1).
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from instances import generator as gen
from instances.schema import CANDIDATE_LAND_USES, M2_PER_MU, PRIORITY_LAYERS


def row(district: str, candidates: int, out: str) -> str:
    start = time.time()
    layers = gen.build(district, None, 1, candidates=candidates)
    built = time.time() - start
    gen.write_layers(layers, out)
    written = time.time() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    p = layers["plots"]
    g = p.geometry.values
    area = shapely.area(g) / M2_PER_MU
    use = p["land_use"].to_numpy()
    cand = np.isin(use, CANDIDATE_LAND_USES)
    prio = shapely.union_all([x for z in PRIORITY_LAYERS for x in layers[z].geometry.values])
    share = gen.area_share(g, prio)
    i, j = shapely.STRtree(g).query(g, predicate="intersects")
    i, j = i[i < j], j[i < j]
    edge = shapely.length(shapely.intersection(shapely.boundary(g[i]), shapely.boundary(g[j]))) > 0
    i, j = i[edge], j[edge]
    both = cand[i] & cand[j]
    n = len(g)
    _, label = connected_components(
        sp.coo_matrix((np.ones(both.sum()), (i[both], j[both])), shape=(n, n)), directed=False)
    neighbour = np.zeros(n, bool)
    neighbour[i[both]] = neighbour[j[both]] = True
    farm = use == "farmland"
    touch = np.zeros(n, bool)
    touch[i[cand[i] & farm[j]]] = True
    touch[j[farm[i] & cand[j]]] = True
    villages = np.unique(label[cand])
    touching = np.zeros(label.max() + 1, bool)
    touching[label[touch & cand]] = True
    v_area = np.bincount(label[cand], weights=area[cand], minlength=label.max() + 1)
    meta = dict(layers["meta"][["key", "value"]].values)
    return (f"| {district} | {candidates:,} | {meta['median_mu']} | {n:,} | "
            f"{np.median(area[cand]):.1f} / {area[cand].mean():.1f} | {area[cand].sum():,.0f} | "
            f"{(area * share)[cand].sum() / area[cand].sum():.0%} | {neighbour[cand].mean():.1%} | "
            f"{len(villages):,} | {touching[villages].mean():.0%} / "
            f"{(touching * v_area)[villages].sum() / v_area[villages].sum():.0%} | "
            f"{np.median(area[~cand]):.0f} | {built:.1f} | {written:.1f} | {peak_gb:.2f} |")


if __name__ == "__main__":
    d, c = sys.argv[1], int(sys.argv[2])
    print(row(d, c, sys.argv[3] if len(sys.argv) > 3 else f"/tmp/v_{d}_{c}.gpkg"))
