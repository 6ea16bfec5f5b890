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
MAX_PIECE_VERTICES = 256
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


def dissolve(geoms: NDArray[np.object_]) -> shapely.Geometry:
    """Union of valid polygons as one (multi)polygon; an empty polygon when there are none."""
    parts = polygon_parts(geoms)
    if parts.size == 0:
        return shapely.Polygon()
    return shapely.union_all(parts)


def zone_pieces(zone: shapely.Geometry) -> NDArray[np.object_]:
    """A dissolved zone as small pieces (interiors disjoint, union = zone) for spatial joins."""
    return subdivide(np.array([zone], dtype=object))


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
    cut = ~covered
    inside[cut] = shapely.area(shapely.intersection(plots[i[cut]], pieces[j[cut]]))
    return np.minimum(np.bincount(i, weights=inside, minlength=n), plot_area)


def boundary_in_zone(plots: NDArray[np.object_],
                     pieces: NDArray[np.object_]) -> NDArray[np.float64]:
    """Length (m) of each plot's boundary lying on or inside the zone made of `pieces`.

    A plot sharing an edge with the zone, overlapping it or lying within it has a positive
    length; one meeting it at a corner has 0. (An edge lying exactly on a seam between two
    pieces inside the zone counts twice; it is inside the zone either way.)
    """
    n = len(plots)
    if pieces.size == 0 or n == 0:
        return np.zeros(n)
    shapely.prepare(pieces)
    rings = shapely.boundary(plots)
    i, j = shapely.STRtree(pieces).query(rings, predicate="intersects")
    covered = shapely.covers(pieces[j], rings[i])
    length = np.where(covered, shapely.length(rings[i]), 0.0)
    cut = ~covered
    length[cut] = shapely.length(
        shapely.intersection(rings[i[cut]], pieces[j[cut]], grid_size=BOUNDARY_GRID_M))
    return np.bincount(i, weights=length, minlength=n)


def plot_contacts(plots: NDArray[np.object_], min_shared_m: float
                  ) -> tuple[NDArray[np.intp], NDArray[np.intp],
                             NDArray[np.float64], NDArray[np.float64]]:
    """Every pair i < j of plots within 1 mm: (i, j, shared boundary m, overlap area m²).

    The shared boundary is the length of the intersection of the two boundaries: a corner
    (point contact) has length 0. The overlap is only computed where the interiors meet.
    """
    if len(plots) == 0:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty, np.empty(0), np.empty(0)
    # dwithin, not intersects: a neighbour whose vertex lies a rounding error outside the edge.
    i, j = shapely.STRtree(plots).query(plots, predicate="dwithin", distance=BOUNDARY_GRID_M)
    keep = i < j
    i, j = i[keep], j[keep]
    overlap = np.zeros(len(i))
    interiors_meet = ~shapely.touches(plots[i], plots[j])
    overlap[interiors_meet] = shapely.area(
        shapely.intersection(plots[i[interiors_meet]], plots[j[interiors_meet]]))
    rings = shapely.boundary(plots)
    # Exact intersection is 4x faster than snap-rounded; redo snap-rounded only the short pairs
    # whose bounding boxes overlap enough to hold a shared edge longer than min_shared_m (a
    # shared edge lies in both boxes), which skips the corner contacts of a regular grid.
    shared = shapely.length(shapely.intersection(rings[i], rings[j]))
    bounds = shapely.bounds(plots)
    lo = np.maximum(bounds[i, :2], bounds[j, :2])
    hi = np.minimum(bounds[i, 2:], bounds[j, 2:])
    box_diagonal = np.hypot(*np.clip(hi - lo, 0.0, None).T)
    redo = (shared <= min_shared_m) & (box_diagonal > min_shared_m - 2 * BOUNDARY_GRID_M)
    shared[redo] = shapely.length(
        shapely.intersection(rings[i[redo]], rings[j[redo]], grid_size=BOUNDARY_GRID_M))
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
