"""Village granularity: collective construction land as villages of small parcels.

`layout(...)` cuts a district into a valid polygon coverage of two kinds of plots: candidate
parcels (collective construction land, clustered in villages, median a few mu) and larger
background plots (everything else). The generator then gives the background plots their land use
and every plot its attributes. All steps are vectorised (shapely 2 array operations); the only
Python loops run over merge rounds, never over plots. Distributions: instances/README.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from instances.schema import M2_PER_MU

GRID_M = 0.001  # same snapping grid as the coarse tessellation
MEDIAN_RANGE_MU = (5.0, 15.0)  # allowed median candidate parcel area
PARCELS_PER_VILLAGE = (24.0, 0.8)  # lognormal median and log-sd of parcels per village
MIN_PARCELS_PER_VILLAGE = 3
VILLAGE_SCALE_SIGMA = 0.45  # log-sd of a village's parcel size around the median
# Voronoi cells of uniform points in a disc: the median cell is smaller than the mean cell
# (measured; makes the median candidate area land on the requested median).
CELL_MEDIAN_TO_MEAN = 0.90
# Mean / median of candidate parcel areas (measured): converts a collective area into a count.
PARCEL_MEAN_TO_MEDIAN = 1.32
MIN_PARCEL_FRACTION = 0.12  # candidate parcels below this share of the median merge away
MIN_BACKGROUND_FRACTION = 0.05  # background plots below this share of their mean merge away

Density = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Layout:
    geoms: np.ndarray  # every plot (shapely Polygons): a coverage of the district
    candidate: np.ndarray  # bool: a collective parcel of a village
    village: np.ndarray  # int: village (disc) of each candidate parcel, -1 for background
    village_industrial: np.ndarray  # bool per village: an industrial cluster
    village_farm: np.ndarray  # bool per village: set among existing farmland
    village_xy: np.ndarray  # (villages, 2) centres


def _neighbour_by_edge(pieces: np.ndarray, plots: np.ndarray) -> np.ndarray:
    """For each piece, the index of the plot sharing the longest boundary with it (-1: none)."""
    best = np.full(len(pieces), -1)
    if len(pieces) == 0 or len(plots) == 0:
        return best
    tree = shapely.STRtree(plots)
    src, dst = tree.query(pieces, predicate="intersects")
    shared = shapely.length(shapely.intersection(shapely.boundary(pieces[src]),
                                                 shapely.boundary(plots[dst])))
    ok = shared > 0
    src, dst, shared = src[ok], dst[ok], shared[ok]
    order = np.lexsort((-shared, src))
    first = np.unique(src[order], return_index=True)[1]
    best[src[order][first]] = dst[order][first]
    return best


def _union_groups(parts: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """parts with each dst replaced by the coverage union of itself and its srcs (vectorised:
    one padded 2-D array, unioned along its rows)."""
    merged = parts.copy()
    if len(src) == 0:
        return merged
    order = np.argsort(dst, kind="stable")
    src, dst = src[order], dst[order]
    udst, start, counts = np.unique(dst, return_index=True, return_counts=True)
    table = np.full((len(udst), int(counts.max()) + 1), None, dtype=object)
    table[:, 0] = parts[udst]
    row = np.repeat(np.arange(len(udst)), counts)
    col = np.arange(len(src)) - np.repeat(start, counts) + 1
    table[row, col] = parts[src]
    try:
        union = shapely.coverage_union_all(table, axis=1)
    except shapely.errors.GEOSException:  # a mis-noded edge somewhere: overlay union
        union = shapely.union_all(table, axis=1, grid_size=GRID_M)
    # not a valid Polygon (inputs noded slightly differently): fall back to an overlay union
    bad = (shapely.get_type_id(union) != 3) | ~shapely.is_valid(union)
    if bad.any():
        union[bad] = shapely.union_all(table[bad], axis=1, grid_size=GRID_M)
    merged[udst] = union
    return merged


def _merge(parts: np.ndarray, kind: np.ndarray, loose: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Merge each loose part into the kept part of its own kind sharing the longest edge with
    it, else into any kept neighbour; a loose part with no kept neighbour stays (own plot)."""
    keep_idx = np.flatnonzero(~loose)
    loose_idx = np.flatnonzero(loose)
    target = np.full(len(loose_idx), -1)
    for k in np.unique(kind[loose_idx]):
        li = loose_idx[kind[loose_idx] == k]
        ki = keep_idx[kind[keep_idx] == k]
        t = _neighbour_by_edge(parts[li], parts[ki])
        target[np.searchsorted(loose_idx, li[t >= 0])] = ki[t[t >= 0]]
    orphan = target < 0
    if orphan.any():
        t = _neighbour_by_edge(parts[loose_idx[orphan]], parts[keep_idx])
        target[np.flatnonzero(orphan)[t >= 0]] = keep_idx[t[t >= 0]]
    ok = target >= 0
    merged = _union_groups(parts, loose_idx[ok], target[ok])
    survive = ~loose
    survive[loose_idx[~ok]] = True
    return merged[survive], kind[survive]


def _repair(parts: np.ndarray) -> np.ndarray:
    """Make the few edges noded differently on their two sides (snap rounding in separate
    overlays; a handful per 100,000 plots) identical: `coverage_clean` of the offending plots
    and their neighbours, the whole coverage only if that does not suffice."""
    for attempt in range(3):
        bad = np.flatnonzero(~shapely.is_empty(shapely.coverage_invalid_edges(parts)))
        if len(bad) == 0:
            return parts
        if attempt < 2:
            local = np.unique(shapely.STRtree(parts).query(parts[bad], predicate="intersects")[1])
        else:
            local = np.arange(len(parts))
        cleaned = shapely.coverage_clean(parts[local], snapping_distance=2 * GRID_M)
        ok = (shapely.get_type_id(cleaned) == 3) & shapely.is_valid(cleaned)
        parts[local[ok]] = cleaned[ok]
    return parts


def _split(cells: np.ndarray, poly: BaseGeometry, region: BaseGeometry
           ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Pieces of each cell inside the village region (kind 1) and in the rest of poly (kind 0),
    with the cell each comes from. Each cell meets only the few village outlines it touches
    (never the whole region: overlays against a citywide multipolygon would be quadratic)."""
    shapely.prepare(poly)
    outline = shapely.get_parts(region)
    c, o = shapely.STRtree(outline).query(cells, predicate="intersects")
    touched = np.unique(c)
    local = np.full(len(cells), None, dtype=object)
    local[touched] = shapely.multipolygons(outline[o], indices=np.searchsorted(touched, c))
    has = ~shapely.is_missing(local)
    whole_in = np.zeros(len(cells), bool)
    whole_in[has] = shapely.contains_properly(local[has], cells[has])
    edge = has & ~whole_in
    inside_poly = shapely.contains_properly(poly, cells)
    clip = np.flatnonzero(edge & ~inside_poly)  # touches a village and the border
    base = cells.copy()
    base[clip] = shapely.intersection(cells[clip], poly, grid_size=GRID_M)
    ins = np.concatenate((cells[whole_in],
                          shapely.intersection(base[edge], local[edge], grid_size=GRID_M)))
    ins_own = np.concatenate((np.flatnonzero(whole_in), np.flatnonzero(edge)))
    free = ~has & inside_poly
    border = ~has & ~inside_poly
    outs = np.concatenate((cells[free],
                           shapely.difference(base[edge], local[edge], grid_size=GRID_M),
                           shapely.intersection(cells[border], poly, grid_size=GRID_M)))
    out_own = np.concatenate((np.flatnonzero(free), np.flatnonzero(edge),
                              np.flatnonzero(border)))
    pieces, kinds, owners = [], [], []
    for geoms, own, kind in ((ins, ins_own, 1), (outs, out_own, 0)):
        parts, idx = shapely.get_parts(geoms, return_index=True)
        pieces.append(parts)
        owners.append(own[idx])
        kinds.append(np.full(len(parts), kind))
    return pieces, kinds, owners


def _small(area: np.ndarray, kind: np.ndarray, min_cand: float, min_bg: float) -> np.ndarray:
    return np.where(kind == 1, area < min_cand, area < min_bg)


def _centres(poly: BaseGeometry, n: int, density: Density, rng: np.random.Generator
             ) -> np.ndarray:
    """n points in poly, accepted with probability density(x, y) (in [0, 1]), in order."""
    x0, y0, x1, y1 = poly.bounds
    chunks, have = [], 0
    while have < n:
        cand = rng.uniform((x0, y0), (x1, y1), size=(max(4 * n, 4096), 2))
        cand = cand[shapely.contains_xy(poly, cand[:, 0], cand[:, 1])]
        keep = rng.uniform(size=len(cand)) < density(cand[:, 0], cand[:, 1])
        chunks.append(cand[keep])
        have += int(keep.sum())
    return np.vstack(chunks)[:n]


def _villages(poly: BaseGeometry, points_needed: int, median_mu: float, density: Density,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Village centres, radii, and each parcel seed's village and offset in the unit disc.
    Villages are drawn in random order and the list is cut once enough seeds lie inside."""
    mu, sd = PARCELS_PER_VILLAGE
    mean_k = np.exp(np.log(mu) + sd**2 / 2)
    n_v = int(1.3 * points_needed / mean_k) + 16
    while True:
        k = np.maximum(MIN_PARCELS_PER_VILLAGE,
                       np.round(rng.lognormal(np.log(mu), sd, n_v))).astype(int)
        scale = median_mu * np.exp(VILLAGE_SCALE_SIGMA * rng.normal(size=n_v))
        radius = np.sqrt(k * scale * M2_PER_MU / CELL_MEDIAN_TO_MEAN / np.pi)
        xy = _centres(poly, n_v, density, rng)
        owner = np.repeat(np.arange(n_v), k)
        r = np.sqrt(rng.uniform(size=len(owner)))
        t = rng.uniform(0, 2 * np.pi, len(owner))
        unit = np.column_stack((r * np.cos(t), r * np.sin(t)))
        pts = xy[owner] + unit * radius[owner, None]
        inside = shapely.contains_xy(poly, pts[:, 0], pts[:, 1])
        cum = np.cumsum(np.bincount(owner[inside], minlength=n_v))
        if cum[-1] >= points_needed:
            nv = int(np.searchsorted(cum, points_needed)) + 1
            keep = owner < nv
            return xy[:nv], radius[:nv], owner[keep], unit[keep]
        n_v *= 2  # a district with much border: most draws fell outside


def _spread(xy: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Radii grown so that each village keeps its own area where villages overlap: a disc
    overlapping others loses about half of each overlap to its neighbours' parcels, so it grows
    until area - overlap / 2 is its original area (pairwise overlaps, at most 1.5 x)."""
    target = np.pi * radius**2
    grown = radius.copy()
    for _ in range(3):
        discs = shapely.buffer(shapely.points(xy), grown, quad_segs=6)
        i, j = shapely.STRtree(discs).query(discs, predicate="intersects")
        m = i != j
        overlap = np.bincount(i[m], weights=shapely.area(shapely.intersection(discs[i[m]],
                                                                              discs[j[m]])),
                              minlength=len(xy))
        own = np.pi * grown**2 - 0.5 * overlap
        grown = np.minimum(grown * np.sqrt(target / np.maximum(own, 0.25 * target)),
                           1.5 * radius)
    return grown


def layout(poly: BaseGeometry, candidates: int, median_mu: float, density: Density,
           background: np.ndarray, industrial_share: Callable[[np.ndarray, np.ndarray],
                                                              np.ndarray],
           farm_share: float, rng: np.random.Generator) -> Layout:
    """Cut poly into exactly `candidates` village parcels plus background plots.

    density(x, y) in [0, 1]: acceptance probability of a village centre at (x, y);
    background: seed points of the background plots (dropped where they fall in a village);
    industrial_share(x, y): probability that a village centred there is an industrial cluster.
    """
    poly = shapely.set_precision(poly, GRID_M)
    shapely.prepare(poly)
    extra = candidates // 30 + 20
    for _ in range(4):
        xy, radius, vown, unit = _villages(poly, candidates + extra, median_mu, density, rng)
        radius = _spread(xy, radius)
        vpts = xy[vown] + unit * radius[vown, None]
        vpts = vpts[shapely.contains_xy(poly, vpts[:, 0], vpts[:, 1])]
        discs = shapely.buffer(shapely.points(xy), radius, quad_segs=6)
        # Everything on the 1 mm grid: snapped cells, overlays with that grid size (snap
        # rounding); the rare edge noded differently on its two sides is repaired at the end.
        region = shapely.intersection(shapely.union_all(discs), poly, grid_size=GRID_M)
        shapely.prepare(region)
        bpts = background[~shapely.contains_xy(region, background[:, 0], background[:, 1])]
        allpts = np.vstack((vpts, bpts))
        x0, y0, x1, y1 = poly.bounds
        frame = shapely.box(x0, y0, x1, y1).buffer(1000.0)
        cells = shapely.get_parts(shapely.voronoi_polygons(
            shapely.multipoints(allpts), extend_to=frame, ordered=True))
        cells = shapely.set_precision(cells, GRID_M)
        is_v = np.arange(len(cells)) < len(vpts)
        pieces, kinds, owners = _split(cells, poly, region)
        parts, kind, owner = (np.concatenate(pieces), np.concatenate(kinds),
                              np.concatenate(owners))
        poly_ok = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
        parts, kind, owner = parts[poly_ok], kind[poly_ok], owner[poly_ok]
        area = shapely.area(parts)
        # The main piece of a cell: its largest part in its own zone (village cells in the
        # village region, background cells outside it); every other piece merges away.
        own_zone = kind == is_v[owner].astype(int)
        order = np.lexsort((-area, ~own_zone, owner))
        main = np.zeros(len(parts), bool)
        first = order[np.unique(owner[order], return_index=True)[1]]
        main[first[own_zone[first]]] = True
        n_bg = max(int((~is_v).sum()), 1)
        min_bg = MIN_BACKGROUND_FRACTION * (poly.area - region.area) / n_bg
        min_cand = MIN_PARCEL_FRACTION * median_mu * M2_PER_MU

        loose = ~main | _small(area, kind, min_cand, min_bg)
        for _ in range(4):
            if not loose.any():
                break
            parts, kind = _merge(parts, kind, loose)
            loose = _small(shapely.area(parts), kind, min_cand, min_bg)
        if (kind == 1).sum() >= candidates:
            break
        extra *= 2
    else:
        raise RuntimeError("could not place enough village parcels")
    while (kind == 1).sum() > candidates:  # the smallest parcels merge into their neighbours
        before = len(parts)
        cand = np.flatnonzero(kind == 1)
        loose = np.zeros(len(parts), bool)
        excess = min(len(cand) - candidates, max(1, len(cand) // 10))
        loose[cand[np.argsort(shapely.area(parts[cand]), kind="stable")[:excess]]] = True
        parts, kind = _merge(parts, kind, loose)
        # a loose parcel that had only background neighbours turned background: recount
        if len(parts) == before:
            raise RuntimeError("cannot reach the candidate count: only isolated parcels left")
    if (kind == 1).sum() != candidates:
        raise RuntimeError(f"layout produced {(kind == 1).sum()} candidates, not {candidates}")
    parts = _repair(parts)
    candidate = kind == 1
    # Village of each parcel: the disc containing its representative point (nearest centre when
    # several overlap or none does).
    rep = shapely.point_on_surface(parts[candidate])
    tree = shapely.STRtree(discs)
    _, near = tree.query_nearest(rep, return_distance=False, all_matches=False)
    village = np.full(len(parts), -1)
    village[candidate] = near
    industrial = rng.uniform(size=len(xy)) < industrial_share(xy[:, 0], xy[:, 1])
    farm = rng.uniform(size=len(xy)) < farm_share
    return Layout(parts, candidate, village, industrial, farm, xy)
