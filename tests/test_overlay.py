"""Derived geometry of the loader against hand-drawn plots with hand-computed answers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely import affinity

from instances import overlay
from instances.loader import load_instance
from instances.schema import CRS_EPSG, M2_PER_MU, ZONE_LAYERS

X0, Y0 = 500_000.0, 4_400_000.0  # inside EPSG:4548's area, so coordinates look like Beijing's


def box(x1: float, y1: float, x2: float, y2: float) -> shapely.Polygon:
    return shapely.box(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2)


def shifted(coords: list[tuple[float, float]]) -> shapely.Polygon:
    return shapely.Polygon([(X0 + x, Y0 + y) for x, y in coords])


def write_instance(path: Path, geoms: list[shapely.Geometry], land_use: list[str],
                   zones: dict[str, list[shapely.Geometry]]) -> Path:
    n = len(geoms)
    plots = gpd.GeoDataFrame(
        {"plot_id": [f"P{k}" for k in range(n)], "district": "chaoyang", "township": "t1",
         "land_use": land_use, "output_wan": 10.0, "demolition_wan_per_mu": 5.0,
         "reclaim_wan_per_mu": 1.0, "afforest_wan_per_mu": 0.5, "soil_suitable": True,
         "polluted": False, "illegal": False, "protected": False},
        geometry=geoms, crs=CRS_EPSG)
    plots.to_file(path, layer="plots")
    for name in ZONE_LAYERS:
        layer = gpd.GeoDataFrame(geometry=gpd.GeoSeries(zones.get(name, []), crs=CRS_EPSG))
        layer.to_file(path, layer=name)
    return path


# 3 x 3 grid of 100 m squares; cell (r, c) spans x in [100c, 100c+100], y in [100r, 100r+100].
# Plot index k = 3r + c. Each cell is 10,000 m² = 15 mu.
GRID = [box(100 * c, 100 * r, 100 * c + 100, 100 * r + 100) for r in range(3) for c in range(3)]
GRID_ZONES = {
    # x in [50, 200], y in [50, 300]: x-fractions by column 0.5, 1, 0; y-fractions by row 0.5, 1, 1
    "green_belt_1": [box(50, 50, 200, 300)],
    "green_belt_2": [box(250, 0, 300, 100)],  # half of cell (0, 2)
    "green_wedges": [box(0, 200, 100, 300)],  # all of cell (2, 0), which belt 1 half covers
    # the left column, plus a square outside the study area that must not count
    "farmland": [box(0, 0, 100, 300), box(-300, 0, -200, 100)],
    # cell (1, 1); a 60 m edge along cell (0, 2); a square meeting cell (2, 2) at a corner
    "forest": [box(100, 100, 200, 200), box(300, 40, 400, 100), box(300, 300, 400, 400)],
    "plain_area": [box(0, 0, 300, 150)],  # rows 0 (all) and 1 (half)
}
GRID_LAND_USE = ["collective_industrial"] * 4 + ["rural_settlement", "urban", "other",
                                                 "collective_industrial", "farmland"]


def rotate(geoms: list[shapely.Geometry], angle: float) -> list[shapely.Geometry]:
    return [affinity.rotate(g, angle, origin=(X0, Y0)) for g in geoms]


# Turned by 17 degrees every answer is the same, but vertices that lie on a neighbour's edge
# (the forest square's corner on cell (0, 2)) do so only up to rounding.
@pytest.fixture(scope="module", params=[0.0, 17.0])
def grid(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    path = tmp_path_factory.mktemp("grid") / "grid.gpkg"
    angle = request.param
    zones = {name: rotate(geoms, angle) for name, geoms in GRID_ZONES.items()}
    return load_instance(write_instance(path, rotate(GRID, angle), GRID_LAND_USE, zones))


def test_grid_areas_and_zone_shares(grid) -> None:
    plots = grid.plots
    close = {"atol": 1e-9}
    np.testing.assert_allclose(plots["area_mu"], 15.0)
    np.testing.assert_allclose(plots["share_green_belt_1"],
                               [0.25, 0.5, 0, 0.5, 1, 0, 0.5, 1, 0], **close)
    np.testing.assert_allclose(plots["share_green_belt_2"], [0, 0, 0.5, 0, 0, 0, 0, 0, 0],
                               **close)
    # priority = union, not sum: cell (2, 0) is half belt 1 and all wedge -> 1
    np.testing.assert_allclose(plots["share_priority"],
                               [0.25, 0.5, 0.5, 0.5, 1, 0, 1, 1, 0], **close)
    np.testing.assert_allclose(plots["share_farmland"], [1, 0, 0] * 3, **close)
    np.testing.assert_allclose(plots["share_forest"], [0, 0, 0, 0, 1, 0, 0, 0, 0], **close)
    np.testing.assert_allclose(plots["share_plain_area"], [1, 1, 1, 0.5, 0.5, 0.5, 0, 0, 0],
                               **close)
    np.testing.assert_allclose(plots["share_central_city"], 0.0)  # empty zone layer
    assert plots["collective"].tolist() == [True] * 5 + [False, False, True, False]


def test_grid_stats(grid) -> None:
    s = grid.stats
    assert s["study_area_mu"] == pytest.approx(9 * 15)
    assert s["green_belt_1_mu"] == pytest.approx(150 * 250 / M2_PER_MU)  # zone all inside
    assert s["farmland_mu"] == pytest.approx(3 * 15)  # the square outside does not count
    assert s["priority_mu"] == pytest.approx((0.25 + 0.5 + 0.5 + 0.5 + 1 + 1 + 1) * 15)
    # farmland = left column; its priority shares are 0.25, 0.5, 1
    assert s["farmland_in_priority_mu"] == pytest.approx((0.25 + 0.5 + 1) * 15)
    # forest in the study area = cell (1, 1), half of it in the plain area
    assert s["forest_mu"] == pytest.approx(15)
    assert s["forest_in_plain_mu"] == pytest.approx(7.5)
    assert s["central_city_mu"] == 0.0
    assert set(s) == {f"{z}_mu" for z in ZONE_LAYERS} | {
        "priority_mu", "farmland_in_priority_mu", "forest_in_plain_mu", "study_area_mu"}


def test_grid_rook_adjacency(grid) -> None:
    expected = np.zeros((9, 9))
    for r in range(3):
        for c in range(3):
            if c < 2:
                expected[3 * r + c, 3 * r + c + 1] = expected[3 * r + c + 1, 3 * r + c] = 100
            if r < 2:
                expected[3 * r + c, 3 * r + c + 3] = expected[3 * r + c + 3, 3 * r + c] = 100
    adj = grid.adjacency
    assert adj.shape == (9, 9) and adj.format == "csr"
    np.testing.assert_allclose(adj.toarray(), expected, atol=1e-6)
    assert adj.nnz == 24  # 12 rook pairs both ways, no diagonal corner contacts stored


def test_grid_touches(grid) -> None:
    # farmland layer = left column: the left column lies in it, the middle column shares an edge;
    # plot 8 (land use farmland) makes its rook neighbours 5 and 7 touch farmland too.
    assert grid.plots["touches_farmland"].tolist() == [
        True, True, False, True, True, True, True, True, False]
    # forest: cell 4 and its rook neighbours; cell 2 shares 60 m with the outside square;
    # cells 0, 6, 8 meet forest only at corners (8 twice: cell 4 and the outer square).
    assert grid.plots["touches_forest"].tolist() == [
        False, True, True, True, True, True, False, True, False]


# An L-shaped plot with a square in its notch, and plots touching them along partial edges.
L_PLOTS = [
    shifted([(0, 0), (200, 0), (200, 100), (100, 100), (100, 200), (0, 200)]),  # L, 45 mu
    box(100, 100, 200, 200),  # the notch: shares 100 m + 100 m with the L
    box(200, 30, 260, 170),  # 70 m along the L (y 30..100), 70 m along the notch (y 100..170)
    box(0, 200, 50, 260),  # 50 m along the L's top
    box(99.7, 200, 150, 240),  # 0.3 m along the L (below 0.5 m: not adjacent), 50 m on the notch
    box(260, 170, 300, 210),  # meets plot 2 at a corner only
]
L_EDGES = {(0, 1): 200.0, (0, 2): 70.0, (1, 2): 70.0, (0, 3): 50.0, (1, 4): 50.0}


@pytest.mark.parametrize("angle", [0.0, 17.0, 23.0])
def test_l_shape_partial_edges(tmp_path: Path, angle: float) -> None:
    # Rotated, the T-junction vertices fall on their neighbours' edges only up to rounding.
    inst = load_instance(write_instance(tmp_path / "l.gpkg", rotate(L_PLOTS, angle),
                                        ["urban"] * 6, {}))
    expected = np.zeros((6, 6))
    for (a, b), length in L_EDGES.items():
        expected[a, b] = expected[b, a] = length
    np.testing.assert_allclose(inst.adjacency.toarray(), expected, atol=1e-2)
    assert inst.plots["area_mu"][0] == pytest.approx(30_000 / M2_PER_MU)


def test_zone_pieces_tile_a_detailed_zone() -> None:
    # A 2,000-vertex wavy disc with a hole: pieces are small, disjoint and add up to it.
    t = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    r = 1000 + 80 * np.sin(17 * t)
    zone = shapely.Polygon(np.c_[X0 + r * np.cos(t), Y0 + r * np.sin(t)],
                           holes=[shapely.box(X0 - 200, Y0 - 100, X0 + 150, Y0 + 300).exterior])
    pieces = overlay.zone_pieces(zone)
    assert len(pieces) > 8
    assert shapely.get_num_coordinates(pieces).max() <= overlay.MAX_PIECE_VERTICES
    assert shapely.area(pieces).sum() == pytest.approx(zone.area, rel=1e-9)
    assert shapely.union_all(pieces).symmetric_difference(zone).area < 1e-3


def test_area_inside_matches_direct_intersection() -> None:
    # Brute force: intersect every plot with the whole (undivided) zone.
    rng = np.random.default_rng(7)
    t = np.linspace(0, 2 * np.pi, 3000, endpoint=False)
    r = 900 + 120 * np.sin(11 * t) + 30 * np.cos(53 * t)
    zone = shapely.Polygon(np.c_[X0 + r * np.cos(t), Y0 + r * np.sin(t)])
    corner = rng.uniform(-1200, 1100, size=(300, 2))
    size = rng.uniform(20, 150, size=(300, 2))
    plots = shapely.box(X0 + corner[:, 0], Y0 + corner[:, 1], X0 + corner[:, 0] + size[:, 0],
                        Y0 + corner[:, 1] + size[:, 1])
    got = overlay.area_inside(plots, shapely.area(plots), overlay.zone_pieces(zone))
    truth = shapely.area(shapely.intersection(plots, zone))
    assert (truth == 0).any() and (np.isclose(truth, shapely.area(plots))).any()
    np.testing.assert_allclose(got, truth, rtol=1e-9, atol=1e-6)


def test_intersect_pieces_is_the_intersection() -> None:
    a = overlay.zone_pieces(shapely.buffer(shapely.Point(X0, Y0), 500, quad_segs=128))
    b = overlay.zone_pieces(box(-100, -1000, 300, 1000))
    both = overlay.intersect_pieces(a, b)
    truth = shapely.intersection(shapely.union_all(a), shapely.union_all(b)).area
    assert shapely.area(both).sum() == pytest.approx(truth, rel=1e-9)


def voronoi_plots(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    side = np.sqrt(n) * 80.0
    env = box(0, 0, side, side)
    seeds = shapely.multipoints(rng.uniform(0, side, (n, 2)) + [X0, Y0])
    return shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=env)),
                                env)


def brute_force_shared(plots: np.ndarray) -> dict[tuple[int, int], float]:
    """Every pair's shared boundary by overlay, snap-rounded, O(n²)."""
    n = len(plots)
    i, j = np.triu_indices(n, 1)
    rings = shapely.boundary(plots)
    length = shapely.length(shapely.intersection(rings[i], rings[j],
                                                 grid_size=overlay.BOUNDARY_GRID_M))
    return adjacent_pairs(i, j, length)


def adjacent_pairs(i: np.ndarray, j: np.ndarray, length: np.ndarray) -> dict[tuple[int, int],
                                                                               float]:
    return {(a, b): x for a, b, x in zip(i.tolist(), j.tolist(), length.tolist(), strict=True)
            if x > 0.5}


def test_plot_contacts_match_brute_force() -> None:
    # A Voronoi tiling (shared vertices: the segment-sorting path) with the L-shaped plots set
    # beside it (T-junctions: the overlay path), and one Voronoi cell split at a T-junction.
    tiles = voronoi_plots(150, seed=3)
    cell = tiles[0]
    x1, y1, x2, y2 = cell.bounds
    halves = [shapely.intersection(cell, shapely.box(x1, y1, (x1 + x2) / 2, y2)),
              shapely.intersection(cell, shapely.box((x1 + x2) / 2, y1, x2, y2))]
    far = [affinity.translate(g, xoff=5_000) for g in rotate(L_PLOTS, 17.0)]
    plots = np.array([*halves, *tiles[1:], *far], dtype=object)
    i, j, shared, overlap = overlay.plot_contacts(plots, 0.5)
    got = adjacent_pairs(i, j, shared)
    truth = brute_force_shared(plots)
    assert got.keys() == truth.keys()
    np.testing.assert_allclose([got[k] for k in truth], list(truth.values()), atol=1e-2)
    assert overlap.max() < 1e-6
    _, unmatched = overlay.shared_vertex_edges(shapely.boundary(plots))
    assert 0 < unmatched.sum() < len(plots) / 2  # both paths were used


def test_zone_pieces_of_touching_and_of_overlapping_polygons() -> None:
    # Pieces must tile the union: disjoint interiors, so their areas add up to its area.
    tiles = voronoi_plots(60, seed=5)
    some = tiles[::2]
    blob = shapely.buffer(some[0], 30)
    for geoms in (some, np.r_[some, [blob]], np.array([shapely.union_all(some)])):
        pieces = overlay.zone_pieces(geoms)
        union = shapely.union_all(geoms)
        assert shapely.area(pieces).sum() == pytest.approx(union.area, rel=1e-9)
        assert shapely.union_all(pieces).symmetric_difference(union).area < 1e-6
