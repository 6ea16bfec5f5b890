"""Vectorised geometry for the loader: zone shares, boundary contacts, plot adjacency.

Everything works on numpy arrays of shapely geometries in a projected CRS in metres. Spatial joins
go through an STRtree and shapely's array functions on the candidate pairs only, so the cost grows
with the number of touching pairs (about 3 per plot in a tiling), not with n².
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import shapely
from numpy.typing import NDArray

# Coordinates are snap-rounded to 1 mm when intersecting boundaries: two plots sharing part of an
# edge, with a vertex of one lying on the other's edge only up to floating-point error, otherwise
# intersect in a point instead of a line.
BOUNDARY_GRID_M = 1e-3
# Zone polygons are cut into pieces of at most this many vertices, so that intersecting a small plot
# with a city-wide zone (the plain-area boundary has tens of thousands of vertices) stays cheap.
MAX_PIECE_VERTICES = 64
_POLYGON = 3  # shapely type id


def polygon_parts(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """The non-empty polygons in `geoms`: multi-parts and collections exploded, lines dropped."""
    parts = shapely.get_parts(shapely.get_parts(np.asarray(geoms, dtype=object)))
    keep = (shapely.get_type_id(parts) == _POLYGON) & (shapely.area(parts) > 0)
    return parts[keep]


def subdivide(polygons: NDArray[np.object_], max_vertices: int = MAX_PIECE_VERTICES,
              max_depth: int = 40) -> NDArray[np.object_]:
    """Cut polygons into pieces of at most `max_vertices` vertices by halving their bounding boxes.

    The pieces tile the input exactly (interiors disjoint), so areas over pieces add up.
    """
    done: list[NDArray[np.object_]] = []
    todo = polygon_parts(polygons)
    for _ in range(max_depth):
        small = shapely.get_num_coordinates(todo) <= max_vertices
        done.append(todo[small])
        big = todo[~small]
        if big.size == 0:
            break
        xmin, ymin, xmax, ymax = shapely.bounds(big).T
        wide = (xmax - xmin) >= (ymax - ymin)
        xmid = np.where(wide, (xmin + xmax) / 2, xmax)
        ymid = np.where(wide, ymax, (ymin + ymax) / 2)
        low = shapely.box(xmin, ymin, xmid, ymid)
        high = shapely.box(np.where(wide, xmid, xmin), np.where(wide, ymin, ymid), xmax, ymax)
        todo = polygon_parts(shapely.intersection(np.concatenate([big, big]),
                                                  np.concatenate([low, high])))
    else:
        done.append(todo)
    return np.concatenate(done) if done else np.empty(0, dtype=object)


def zone_pieces(geoms: NDArray[np.object_] | shapely.Geometry) -> NDArray[np.object_]:
    """A zone layer as small polygons with disjoint interiors covering the layer's union.

    Only polygons whose interiors overlap are unioned: a layer of touching polygons (parcels,
    or the parts of one multipolygon) needs no dissolve, which for a detailed city-wide layer
    takes many seconds.
    """
    # Subdivide first: testing small polygons against a huge one (a forest with thousands of
    # holes, islands in them) costs time in proportion to the huge one's vertices, each time.
    pieces = subdivide(np.atleast_1d(np.asarray(geoms, dtype=object)))
    i, j = shapely.STRtree(pieces).query(pieces, predicate="intersects")
    i, j = i[i < j], j[i < j]
    meet = ~shapely.touches(pieces[i], pieces[j])
    overlapping = np.zeros(pieces.size, dtype=bool)
    overlapping[i[meet]] = overlapping[j[meet]] = True
    if not overlapping.any():
        return pieces
    union = shapely.union_all(pieces[overlapping])
    return np.concatenate([pieces[~overlapping], subdivide(np.array([union], dtype=object))])


def intersect_pieces(a: NDArray[np.object_], b: NDArray[np.object_]) -> NDArray[np.object_]:
    """Pieces of the intersection of two zones given as pieces (still interiors disjoint)."""
    if a.size == 0 or b.size == 0:
        return np.empty(0, dtype=object)
    i, j = shapely.STRtree(b).query(a, predicate="intersects")
    return subdivide(shapely.intersection(a[i], b[j]))


def area_inside(plots: NDArray[np.object_], plot_area: NDArray[np.float64],
                pieces: NDArray[np.object_]) -> NDArray[np.float64]:
    """Area (m²) of each plot inside the zone made of `pieces`.

    A plot covered by one piece takes its own area without an intersection.
    """
    n = len(plots)
    if pieces.size == 0 or n == 0:
        return np.zeros(n)
    shapely.prepare(pieces)
    i, j = shapely.STRtree(pieces).query(plots, predicate="intersects")
    covered = shapely.covers(pieces[j], plots[i])
    inside = np.where(covered, plot_area[i], 0.0)
    # Neighbours of the zone only touch it: a predicate is 3x cheaper than an intersection.
    cut = np.flatnonzero(~covered)
    cut = cut[~shapely.touches(pieces[j[cut]], plots[i[cut]])]
    inside[cut] = shapely.area(shapely.intersection(plots[i[cut]], pieces[j[cut]]))
    return np.minimum(np.bincount(i, weights=inside, minlength=n), plot_area)


def boundary_in_zone(plots: NDArray[np.object_], pieces: NDArray[np.object_],
                     min_shared_m: float) -> NDArray[np.float64]:
    """Length (m) of each plot's boundary lying on or inside the zone made of `pieces`.

    A plot sharing an edge with the zone, overlapping it or lying within it has a positive
    length; one meeting it at a corner has 0. (An edge lying exactly on a seam between two
    pieces inside the zone counts twice; it is inside the zone either way.) Lengths are
    snap-rounded only where they would otherwise come out at most `min_shared_m`, the
    threshold the caller compares them with.
    """
    n = len(plots)
    if pieces.size == 0 or n == 0:
        return np.zeros(n)
    shapely.prepare(pieces)
    rings = shapely.boundary(plots)
    # dwithin: an edge along the zone's may lie a rounding error outside it (see plot_contacts)
    i, j = shapely.STRtree(pieces).query(rings, predicate="dwithin", distance=BOUNDARY_GRID_M)
    covered = shapely.covers(pieces[j], rings[i])
    length = np.where(covered, shapely.length(rings[i]), 0.0)
    cut = np.flatnonzero(~covered)
    length[cut] = shapely.length(shapely.intersection(rings[i[cut]], pieces[j[cut]]))
    # As in plot_contacts: snap-rounded only where a rounding error may have lost an edge.
    redo = cut[(length[cut] <= min_shared_m)
               & (_box_overlap_diagonal(rings[i[cut]], pieces[j[cut]])
                  > min_shared_m - 2 * BOUNDARY_GRID_M)]
    length[redo] = shapely.length(
        shapely.intersection(rings[i[redo]], pieces[j[redo]], grid_size=BOUNDARY_GRID_M))
    return np.bincount(i, weights=length, minlength=n)


def _box_overlap_diagonal(a: NDArray[np.object_], b: NDArray[np.object_]) -> NDArray[np.float64]:
    """Diagonal of the intersection of the bounding boxes: an upper bound on the length of any
    line the two geometries share."""
    ba, bb = shapely.bounds(a), shapely.bounds(b)
    size = np.minimum(ba[:, 2:], bb[:, 2:]) - np.maximum(ba[:, :2], bb[:, :2])
    return np.hypot(*np.clip(size, 0.0, None).T)


def shared_vertex_edges(boundaries: NDArray[np.object_]) -> tuple[sp.csr_matrix,
                                                                   NDArray[np.bool_]]:
    """Boundary shared through identical segments, found by sorting segments (no overlay).

    `boundaries`: the boundary of each plot. Returns the upper-triangular matrix of length
    shared this way per pair, and per plot whether any of its segments is not shared
    segment-for-segment with exactly one other plot (the study-area edge, a neighbour meeting it
    at a T-junction, a gap). A plot without such segments has its whole boundary accounted for.
    """
    n = len(boundaries)
    rings, owner_of_ring = shapely.get_parts(boundaries, return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring[1:] == ring[:-1]
    a, b = xy[:-1][same_ring], xy[1:][same_ring]
    owner = owner_of_ring[ring[:-1][same_ring]]
    keep = np.any(a != b, axis=1)  # repeated vertices
    a, b, owner = a[keep], b[keep], owner[keep]
    flip = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    key = np.where(flip[:, None], np.c_[b, a], np.c_[a, b])  # same segment, same key
    order = np.lexsort(key.T[::-1])
    key, owner = key[order], owner[order]
    starts = np.flatnonzero(np.r_[True, np.any(key[1:] != key[:-1], axis=1)])
    size = np.diff(np.r_[starts, len(key)])
    two = starts[size == 2]
    two = two[owner[two] != owner[two + 1]]  # exactly two segments, of two plots
    matched = np.zeros(len(key), dtype=bool)
    matched[two] = matched[two + 1] = True
    unmatched = np.zeros(n, dtype=bool)
    unmatched[owner[~matched]] = True
    lo = np.minimum(owner[two], owner[two + 1])
    hi = np.maximum(owner[two], owner[two + 1])
    length = np.hypot(key[two, 2] - key[two, 0], key[two, 3] - key[two, 1])
    return sp.csr_matrix((length, (lo, hi)), shape=(n, n)), unmatched


def plot_contacts(plots: NDArray[np.object_], min_shared_m: float
                  ) -> tuple[NDArray[np.intp], NDArray[np.intp],
                             NDArray[np.float64], NDArray[np.float64]]:
    """Every pair i < j of plots that meet: (i, j, shared boundary m, overlap area m²).

    The shared boundary is the length of the intersection of the two boundaries: a corner
    (point contact) has length 0. Pairs with identical shared segments (a clean coverage) take
    it from shared_vertex_edges; an overlay computes it only where both plots have boundary
    left unaccounted for. The overlap is only computed where the interiors meet.
    """
    n = len(plots)
    if n == 0:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty, np.empty(0), np.empty(0)
    rings = shapely.boundary(plots)
    by_segments, unmatched = shared_vertex_edges(rings)
    i, j = shapely.STRtree(plots).query(plots, predicate="intersects")
    # Plots with unaccounted boundary also pair up when 1 mm apart: a neighbour's vertex may lie
    # a rounding error outside the edge it is meant to be on.
    loose = np.flatnonzero(unmatched)
    li, lj = shapely.STRtree(plots[loose]).query(plots[loose], predicate="dwithin",
                                                  distance=BOUNDARY_GRID_M)
    i, j = np.r_[i, loose[li]], np.r_[j, loose[lj]]
    keep = i < j
    i, j = np.divmod(np.unique(i[keep] * n + j[keep]), n)
    overlap = np.zeros(len(i))
    interiors_meet = ~shapely.touches(plots[i], plots[j])
    overlap[interiors_meet] = shapely.area(
        shapely.intersection(plots[i[interiors_meet]], plots[j[interiors_meet]]))
    shared = np.asarray(by_segments[i, j]).ravel()
    both = np.flatnonzero(unmatched[i] & unmatched[j])
    ri, rj = rings[i[both]], rings[j[both]]
    # Exact intersection is 4x faster than snap-rounded; redo snap-rounded only the short pairs
    # whose bounding boxes overlap enough to hold a shared edge longer than min_shared_m (a
    # shared edge lies in both boxes), which skips the corner contacts of a regular grid.
    length = shapely.length(shapely.intersection(ri, rj))
    redo = (length <= min_shared_m) & (_box_overlap_diagonal(ri, rj)
                                       > min_shared_m - 2 * BOUNDARY_GRID_M)
    length[redo] = shapely.length(
        shapely.intersection(ri[redo], rj[redo], grid_size=BOUNDARY_GRID_M))
    shared[both] = length
    return i, j, shared, overlap


def adjacency_matrix(n: int, i: NDArray[np.intp], j: NDArray[np.intp],
                     shared_m: NDArray[np.float64], min_shared_m: float) -> sp.csr_matrix:
    """Symmetric CSR (n x n) of shared boundary length (m) for pairs sharing > min_shared_m."""
    keep = shared_m > min_shared_m
    rows = np.concatenate([i[keep], j[keep]])
    cols = np.concatenate([j[keep], i[keep]])
    data = np.concatenate([shared_m[keep], shared_m[keep]])
    adj = sp.csr_matrix((data, (rows, cols)), shape=(n, n))
    adj.sort_indices()
    return adj
