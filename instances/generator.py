"""Synthetic instances on the real district boundaries: plots, land use, costs, zones.

`generate(district, plots, seed, out)` writes a GeoPackage in the format of instances/schema.py.
Every distribution, unit and calibration figure is documented in instances/README.md; the
land-use quotas below are calibrated so that the default scenario is feasible but binding.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry.base import BaseGeometry

from instances import villages as vil
from instances import zones as zmod
from instances.geography import check_district, district_geometry, tiananmen_xy
from instances.schema import (
    CANDIDATE_LAND_USES,
    CRS_EPSG,
    M2_PER_MU,
    META_LAYER,
    PLOT_COLUMNS,
    PLOTS_LAYER,
    TOWNSHIPS_LAYER,
    ZONE_LAYERS,
)

GENERATOR_VERSION = "1.0"
MIN_PLOTS, MAX_PLOTS = 500, 200_000
MIN_AREA_FRACTION = 0.05  # no plot below this share of the mean plot area (slivers merged)
GRID_M = 0.001  # coordinates snapped to 1 mm so neighbouring plots share exact edges
DENSITY_SIGMA = 0.75  # log-sd of the point density: plot sizes become lognormal-like

Progress = Callable[[str, float], None]

# Village mode (instances/villages.py does the geometry).
MODES = ("auto", "villages", "coarse")
DEFAULT_CANDIDATES = 10_000
MIN_CANDIDATES, MAX_CANDIDATES = 200, 400_000
MAX_COLLECTIVE_SHARE = 0.5  # collective parcels may cover at most this share of a district
BACKGROUND_MEAN_MU = 60.0  # mean area of the background (non-candidate) plots ...
MAX_BACKGROUND = 50_000  # ... within [MIN_PLOTS, MAX_BACKGROUND] background plots
VILLAGE_FIELD_M, VILLAGE_FIELD_SIGMA = 4000.0, 0.8  # clustering of village centres
VILLAGE_MAJORITY = 0.85  # share of a village's parcels of its type (industrial / settlement)
FARM_VILLAGE_SHARE = 0.3  # villages set among existing farmland
FARM_VILLAGE_BONUS = 3.0  # farmland score +/- for background plots next to (non-)farm villages

# Land-use quotas: share of each stratum's area (the priority stratum by area inside the zones).
# Uses are allocated in this order, each to the highest-scoring plots left; `other` takes the rest.
STRATA = ("core", "priority", "water_source", "plain", "mountain")
QUOTAS: dict[str, dict[str, float]] = {
    #                core   priority water_source plain mountain
    "water": dict(zip(STRATA, (0.02, 0.04, 0.30, 0.04, 0.02), strict=True)),
    "urban": dict(zip(STRATA, (0.78, 0.18, 0.03, 0.30, 0.02), strict=True)),
    "farmland": dict(zip(STRATA, (0.00, 0.25, 0.08, 0.30, 0.06), strict=True)),
    "forest": dict(zip(STRATA, (0.08, 0.26, 0.45, 0.16, 0.72), strict=True)),
    "collective_industrial": dict(zip(STRATA, (0.035, 0.09, 0.01, 0.06, 0.01), strict=True)),
    "rural_settlement": dict(zip(STRATA, (0.025, 0.06, 0.04, 0.05, 0.03), strict=True)),
}
# Correlation length (m) of each land use's score field: the size of its clusters.
FIELD_LENGTH_M = {"water": 1000.0, "urban": 3000.0, "farmland": 2500.0, "forest": 2000.0,
                  "collective_industrial": 1200.0, "rural_settlement": 800.0}
# Efficiency (万元 per mu per year): lognormal median at the city edge, log-sd; the median rises
# towards the centre by (1 + CENTRE_BOOST * exp(-d / 10 km)).
EFFICIENCY = {"collective_industrial": (6.0, 1.0), "rural_settlement": (2.5, 0.8),
              "urban": (120.0, 1.0), "farmland": (0.3, 0.4)}
CENTRE_BOOST = {"collective_industrial": 1.5, "rural_settlement": 1.0, "urban": 1.0,
                "farmland": 0.0}
# Demolition cost multipliers by land use (settlements: resettlement of households).
DEMOLITION_FACTOR = {"collective_industrial": 1.0, "rural_settlement": 1.3, "urban": 3.0,
                     "farmland": 0.2, "forest": 0.2, "water": 0.2, "other": 0.5}
POLLUTED_RATE = {"collective_industrial": 0.08, "rural_settlement": 0.02}  # others 0.01
ILLEGAL_RATE, PROTECTED_RATE = 0.02, 0.03  # of collective plots, exclusive
UNSUITABLE_RATE = {"mountain": 0.60}  # soil unsuitable for farmland; elsewhere 0.05
# Village mode: the background plots take the same quotas except the collective ones (the
# villages provide that land) and a little more existing farmland in the priority zones, so that
# the new farmland needed (28.4% of the priority area) fits an outer district's budget, which the
# default scenario ties to its small reduction target (Daxing: 200 万元 x 1,796 mu).
VILLAGE_PRIORITY_FARMLAND = 0.272
VILLAGE_QUOTAS = {lu: dict(q, priority=VILLAGE_PRIORITY_FARMLAND) if lu == "farmland" else q
                  for lu, q in QUOTAS.items() if lu not in CANDIDATE_LAND_USES}
# Collective construction land's share of each stratum (the two collective quotas together):
# the reference area that sets the default median parcel area of the village mode.
COLLECTIVE_SHARE = {s: QUOTAS["collective_industrial"][s] + QUOTAS["rural_settlement"][s]
                    for s in STRATA}


def _rng(seed: int, district: str, tag: str) -> np.random.Generator:
    """Independent, reproducible streams per purpose: the landscape does not change with N."""
    return np.random.default_rng([seed, zlib.crc32(district.encode()), zlib.crc32(tag.encode())])


def _check_args(district: str, plots: int, seed: int) -> str:
    name = check_district(district)
    if isinstance(plots, bool) or not isinstance(plots, int | np.integer):
        raise ValueError(f"plots must be an integer, got {plots!r}")
    if not MIN_PLOTS <= plots <= MAX_PLOTS:
        raise ValueError(f"plots must lie in [{MIN_PLOTS}, {MAX_PLOTS}], got {plots}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return name


# --- tessellation -----------------------------------------------------------------------------

def _sample_points(poly: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points inside poly with a smooth lognormal density (rejection sampling, in order)."""
    x0, y0, x1, y1 = poly.bounds
    spacing = np.sqrt(poly.area / n)
    field_rng = np.random.default_rng(rng.integers(2**63))
    k = field_rng.normal(0.0, 1.0 / max(1500.0, 6.0 * spacing), size=(64, 2))
    phase = field_rng.uniform(0, 2 * np.pi, 64)
    shapely.prepare(poly)
    chunks, have = [], 0
    while have < n:
        cand = rng.uniform((x0, y0), (x1, y1), size=(max(4 * n, 10_000), 2))
        cand = cand[shapely.contains_xy(poly, cand[:, 0], cand[:, 1])]
        f = np.sqrt(2 / 64) * np.cos((cand - (x0, y0)) @ k.T + phase).sum(axis=1)
        keep = rng.uniform(size=len(cand)) < np.exp(DENSITY_SIGMA * (np.minimum(f, 3.0) - 3.0))
        chunks.append(cand[keep])
        have += int(keep.sum())
    return np.vstack(chunks)[:n]


def _neighbour_by_edge(pieces: np.ndarray, plots: np.ndarray) -> np.ndarray:
    """For each piece, the plot sharing the longest boundary with it (-1 when none)."""
    tree = shapely.STRtree(plots)
    src, dst = tree.query(pieces, predicate="intersects")
    shared = shapely.length(shapely.intersection(shapely.boundary(pieces[src]),
                                                 shapely.boundary(plots[dst])))
    best = np.full(len(pieces), -1)
    ok = shared > 0
    src, dst, shared = src[ok], dst[ok], shared[ok]
    order = np.lexsort((-shared, src))  # per piece, longest edge first
    first = np.unique(src[order], return_index=True)[1]
    best[src[order][first]] = dst[order][first]
    return best


def _merge(parts: np.ndarray, loose: np.ndarray) -> np.ndarray:
    """Merge each loose part into the kept neighbour sharing the longest edge with it; a loose
    part with no kept neighbour (an island) stays a plot of its own."""
    keep_idx, loose_idx = np.flatnonzero(~loose), np.flatnonzero(loose)
    target = _neighbour_by_edge(parts[loose_idx], parts[keep_idx])
    alone = target < 0
    merged = parts.copy()
    groups = pd.Series(loose_idx[~alone]).groupby(keep_idx[target[~alone]])
    for dst, srcs in groups:  # one union per receiving plot (few: boundary pieces, slivers)
        merged[dst] = shapely.coverage_union_all(np.append(parts[srcs.to_numpy()], parts[dst]))
    survive = ~loose
    survive[loose_idx[alone]] = True
    return merged[survive]


def tessellate(poly: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly n non-overlapping plots covering poly (a valid polygon coverage): clipped Voronoi
    cells of density-varying points, a few more than n; parts cut off by the boundary and slivers
    merge into a neighbour, then the smallest plots merge until n are left."""
    shapely.prepare(poly)
    x0, y0, x1, y1 = poly.bounds
    frame = shapely.box(x0, y0, x1, y1).buffer(1000.0)
    min_area = MIN_AREA_FRACTION * poly.area / n
    extra = n // 50 + 20
    for _ in range(6):
        pts = _sample_points(poly, n + extra, rng)
        cells = shapely.get_parts(shapely.voronoi_polygons(
            shapely.multipoints(pts), extend_to=frame, ordered=True))
        inside = shapely.contains_properly(poly, cells)
        cells[~inside] = shapely.intersection(cells[~inside], poly)
        cells = shapely.set_precision(cells, GRID_M)
        parts, owner = shapely.get_parts(cells, return_index=True)
        nonempty = shapely.area(parts) > 0
        parts, owner = parts[nonempty], owner[nonempty]
        area = shapely.area(parts)
        # The largest part of each cell is its plot; the other parts and slivers merge away.
        order = np.lexsort((-area, owner))
        main = np.zeros(len(parts), bool)
        main[order[np.unique(owner[order], return_index=True)[1]]] = True
        loose = ~main | (area < min_area)
        for _ in range(4):  # a sliver may join a neighbour that is itself small; repeat
            if not loose.any():
                break
            parts = _merge(parts, loose)
            loose = shapely.area(parts) < min_area
        if len(parts) >= n:
            break
        extra *= 2  # unlucky: more points lost to merging than drawn in excess
    while len(parts) > n:
        before = len(parts)
        loose = np.zeros(len(parts), bool)
        loose[np.argsort(shapely.area(parts), kind="stable")[: len(parts) - n]] = True
        parts = _merge(parts, loose)
        if len(parts) == before:
            raise RuntimeError("cannot reach the plot count: only islands are left to merge")
    if len(parts) != n:
        raise RuntimeError(f"tessellation produced {len(parts)} plots instead of {n}")
    return parts


# --- land use and attributes ------------------------------------------------------------------

def area_share(plots: np.ndarray, zone: BaseGeometry) -> np.ndarray:
    """Share of each plot's area inside zone, exact (only edge plots are intersected)."""
    share = np.zeros(len(plots))
    if zone.is_empty:
        return share
    shapely.prepare(zone)
    inside = shapely.contains_properly(zone, plots)
    share[inside] = 1.0
    edge = ~inside & shapely.intersects(zone, plots)
    share[edge] = shapely.area(shapely.intersection(plots[edge], zone)) / shapely.area(plots[edge])
    return np.clip(share, 0.0, 1.0)


def _in_zone(zone: BaseGeometry, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if zone.is_empty:
        return np.zeros(len(x), bool)
    shapely.prepare(zone)
    return shapely.contains_xy(zone, x, y)


def _strata(priority: np.ndarray, core: np.ndarray, water: np.ndarray, plain: np.ndarray
            ) -> np.ndarray:
    """Stratum index per plot (STRATA order), first match wins: core, priority (half of the
    plot or more inside the zones), water source, plain, mountain."""
    conds = [core, priority >= 0.5, water, plain]
    return np.select(conds, [0, 1, 2, 3], default=4)


def allocate_land_use(weight: np.ndarray, stratum: np.ndarray, scores: dict[str, np.ndarray],
                      preset: np.ndarray | None = None) -> np.ndarray:
    """Per stratum and in QUOTAS order, give each land use the highest-scoring plots left until
    its quota of the stratum's weight is reached; `other` takes what remains. `preset`: a land
    use per plot ("" = free); preset plots count in the stratum totals but are not reallocated,
    and land uses already preset somewhere (the village parcels) take no further plots."""
    use = np.full(len(weight), "other", dtype=object)
    free = np.ones(len(weight), bool)
    quotas = QUOTAS
    if preset is not None:
        fixed = preset != ""
        use[fixed] = preset[fixed]
        free[fixed] = False
        quotas = VILLAGE_QUOTAS
    for s, name in enumerate(STRATA):
        members = stratum == s
        total = weight[members].sum()
        for lu, quota in quotas.items():
            cand = np.flatnonzero(members & free)
            if quota[name] <= 0 or len(cand) == 0:
                continue
            order = cand[np.argsort(-scores[lu][cand], kind="stable")]
            take = order[: int(np.searchsorted(np.cumsum(weight[order]), quota[name] * total)) + 1]
            use[take] = lu
            free[take] = False
    return use


def _quantile_flag(z: np.ndarray, groups: np.ndarray, rates: dict, default: float) -> np.ndarray:
    """True for the top `rate` share (by count) of z within each group: clustered flags with
    exact rates."""
    flag = np.zeros(len(z), bool)
    for g in np.unique(groups):
        m = groups == g
        rate = rates.get(g, default)
        if rate > 0:
            flag[m] = z[m] > np.quantile(z[m], 1.0 - rate)
    return flag


def attributes(plots: np.ndarray, zones: dict[str, BaseGeometry], district: str, seed: int,
               preset: np.ndarray | None = None, farmland_bonus: np.ndarray | None = None
               ) -> pd.DataFrame:
    """Land use, output, costs and flags for every plot (see README for each distribution).

    Village mode: `preset` holds the village parcels' land use ("" elsewhere), `farmland_bonus`
    is added to the farmland score (background plots around farm / non-farm villages), and
    illegal buildings are drawn only among parcels that may become forest (outside the farmland
    protection space), so that a must-vacate parcel always has somewhere to go."""
    rng = _rng(seed, district, "attributes")
    fld = _rng(seed, district, "fields")  # smooth fields: independent of the plot count
    n = len(plots)
    area_mu = shapely.area(plots) / M2_PER_MU
    rep = shapely.get_coordinates(shapely.point_on_surface(plots))
    x, y = rep[:, 0], rep[:, 1]
    cx, cy = tiananmen_xy()
    d_km = np.hypot(x - cx, y - cy) / 1000.0
    priority = area_share(plots, zones["priority"])
    flags = {k: _in_zone(zones[k], x, y) for k in
             ("central_built_up", "plain_area", "water_source", "river_channel",
              "farmland_protection_space", "green_wedges")}
    stratum = _strata(priority, flags["central_built_up"], flags["water_source"],
                      flags["plain_area"])
    # The priority stratum is calibrated on area inside the zones, the others on plot area.
    weight = np.where(stratum == 1, area_mu * priority, area_mu)
    f = {lu: zmod.smooth_field(fld, x, y, FIELD_LENGTH_M[lu]) for lu in QUOTAS}
    noise = {lu: rng.normal(0, 0.3, n) for lu in QUOTAS}
    scores = {lu: f[lu] + noise[lu] for lu in QUOTAS}
    scores["water"] += 4.0 * flags["river_channel"] + 1.5 * flags["water_source"]
    scores["urban"] += 2.0 * np.exp(-d_km / 12.0)
    scores["farmland"] += 1.5 * flags["farmland_protection_space"] - 3.0 * flags["river_channel"]
    if farmland_bonus is not None:
        scores["farmland"] += farmland_bonus
    scores["forest"] += 0.5 * flags["green_wedges"]
    land_use = allocate_land_use(weight, stratum, scores, preset)

    # Output: area x lognormal efficiency (万元/mu/yr), higher towards the centre, correlated.
    f_eff = zmod.smooth_field(fld, x, y, 1500.0)
    eff = np.zeros(n)
    for lu, (median, sigma) in EFFICIENCY.items():
        m = land_use == lu
        centre = 1.0 + CENTRE_BOOST[lu] * np.exp(-d_km[m] / 10.0)
        mixed = 0.5 * f_eff[m] + 0.866 * rng.normal(size=m.sum())  # unit variance
        eff[m] = median * centre * np.exp(sigma * mixed)
    output = area_mu * eff
    # Costs (万元/mu): demolition rises towards the centre; restoration costs vary mildly.
    f_cost = zmod.smooth_field(fld, x, y, 3000.0)
    factor = pd.Series(land_use).map(DEMOLITION_FACTOR).to_numpy(float)
    demolition = np.clip((35.0 + 90.0 * np.exp(-d_km / 15.0)) * factor
                         * np.exp(0.15 * f_cost + 0.25 * rng.normal(size=n)), 5.0, 600.0)
    industrial = land_use == "collective_industrial"
    reclaim = np.clip(4.0 * np.where(industrial, 1.25, 1.0)
                      * np.exp(0.1 * f_cost + 0.25 * rng.normal(size=n)), 1.5, 10.0)
    afforest = np.clip(2.8 * (1.0 + 0.3 * np.exp(-d_km / 15.0))
                       * np.exp(0.1 * f_cost + 0.25 * rng.normal(size=n)), 1.0, 8.0)
    # Flags: clustered (smooth field + noise, thresholded to exact rates per group).
    region = np.where(stratum == 4, "mountain", "lowland")
    unsuitable = _quantile_flag(zmod.smooth_field(fld, x, y, 2000.0) + rng.normal(0, 0.5, n),
                                region, UNSUITABLE_RATE, 0.05)
    polluted = _quantile_flag(zmod.smooth_field(fld, x, y, 1000.0) + rng.normal(0, 0.5, n),
                              land_use, POLLUTED_RATE, 0.01)
    collective = np.isin(land_use, ["collective_industrial", "rural_settlement"])
    u = rng.uniform(size=n)
    may_vacate = collective
    if preset is not None:
        may_vacate = collective & (area_share(plots, zones["farmland_protection_space"]) == 0)
    illegal = may_vacate & (u < ILLEGAL_RATE)
    protected = collective & (u >= ILLEGAL_RATE) & (u < ILLEGAL_RATE + PROTECTED_RATE)
    return pd.DataFrame({
        "land_use": land_use.astype(str),
        "output_wan": output,
        "demolition_wan_per_mu": demolition,
        "reclaim_wan_per_mu": reclaim,
        "afforest_wan_per_mu": afforest,
        "soil_suitable": ~unsuitable,
        "polluted": polluted,
        "illegal": illegal,
        "protected": protected,
        "share_priority": priority,  # not written: for calibration reports and tests
    })


# --- assembling and writing -------------------------------------------------------------------

def _morton_order(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Z-order of points: neighbouring plots get nearby ids (and nearby matrix rows)."""
    def spread(v: np.ndarray) -> np.ndarray:
        v = v.astype(np.uint64)
        for shift, mask in ((8, 0x00FF00FF), (4, 0x0F0F0F0F), (2, 0x33333333), (1, 0x55555555)):
            v = (v | (v << np.uint64(shift))) & np.uint64(mask)
        return v

    def scale(v: np.ndarray) -> np.ndarray:
        return np.floor((v - v.min()) / max(np.ptp(v), 1.0) * 65535).astype(np.uint64)

    key = spread(scale(x)) | (spread(scale(y)) << np.uint64(1))
    return np.argsort(key, kind="stable")


def _assign(points: np.ndarray, polys: gpd.GeoDataFrame, column: str) -> np.ndarray:
    """Value of `column` of the polygon containing each point (nearest polygon as fallback)."""
    tree = shapely.STRtree(polys.geometry.values)
    src, dst = tree.query(points, predicate="intersects")
    idx = np.full(len(points), -1)
    first = np.unique(src, return_index=True)[1]
    idx[src[first]] = dst[first]
    missing = np.flatnonzero(idx < 0)
    if len(missing):
        idx[missing] = tree.query_nearest(points[missing], return_distance=False)[1]
    return polys[column].to_numpy()[idx]


def zone_frame(geom: BaseGeometry, name: str) -> gpd.GeoDataFrame:
    """One MultiPolygon row with the polygons of geom (clipping can leave stray lines/points)."""
    parts = shapely.get_parts(shapely.get_parts(shapely.force_2d(geom)))
    polys = parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)]
    rows = [shapely.multipolygons(polys)] if len(polys) else []
    return gpd.GeoDataFrame({"zone": [name] * len(rows)}, geometry=rows, crs=CRS_EPSG)


def _reference_areas(name: str, poly: BaseGeometry, zones: dict[str, BaseGeometry]
                     ) -> dict[str, str]:
    """Citywide and district reference areas (mu) for dividing citywide targets (指标分解)."""
    city = zmod.city_zones()
    ref = {"priority": zmod.priority_zone(), "central": city["central_city"],
           "plain": city["plain_area"], "total": zmod.city_geometry()}
    local = {"priority": zones["priority"], "central": zones["central_city"],
             "plain": zones["plain_area"], "total": poly}
    meta = {}
    for k in ref:
        meta[f"city_{k}_mu"] = f"{ref[k].area / M2_PER_MU:.1f}"
        meta[f"district_{k}_mu"] = f"{local[k].area / M2_PER_MU:.1f}"
    return meta


def _check_mode(mode: str, plots: int | None, candidates: int | None,
                median_mu: float | None) -> str:
    """Resolve mode "auto" (coarse when only `plots` is given, villages otherwise) and check
    the arguments that belong to each mode."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "auto":
        mode = "coarse" if plots is not None and candidates is None else "villages"
    if mode == "coarse":
        if candidates is not None or median_mu is not None:
            raise ValueError("candidates and median_mu belong to mode 'villages'")
        return mode
    if plots is not None:
        raise ValueError("mode 'villages' takes `candidates`; the plot count follows from it "
                         "(pass plots=None)")
    if candidates is not None and (isinstance(candidates, bool)
                                   or not isinstance(candidates, int | np.integer)):
        raise ValueError(f"candidates must be an integer, got {candidates!r}")
    if candidates is not None and not MIN_CANDIDATES <= candidates <= MAX_CANDIDATES:
        raise ValueError(f"candidates must lie in [{MIN_CANDIDATES}, {MAX_CANDIDATES}], "
                         f"got {candidates}")
    lo, hi = vil.MEDIAN_RANGE_MU
    if median_mu is not None and not (isinstance(median_mu, int | float | np.number)
                                      and lo <= median_mu <= hi):
        raise ValueError(f"median_mu must lie in [{lo:g}, {hi:g}] mu, got {median_mu!r}")
    return mode


def _strata_geometries(poly: BaseGeometry, zones: dict[str, BaseGeometry]
                       ) -> dict[str, BaseGeometry]:
    """The strata as areas (first match wins, as for plots): core, priority, water source,
    plain, mountain."""
    out: dict[str, BaseGeometry] = {}
    taken = shapely.Polygon()
    for name, zone in zip(STRATA, (zones["central_built_up"], zones["priority"],
                                   zones["water_source"], zones["plain_area"], poly),
                          strict=True):
        out[name] = shapely.difference(zone, taken)
        taken = shapely.union(taken, zone)
    return out


def _stratum_at(strata: dict[str, BaseGeometry], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Stratum index (STRATA order) of points."""
    conds = [_in_zone(strata[name], x, y) for name in STRATA[:-1]]
    return np.select(conds, list(range(len(conds))), default=len(STRATA) - 1)


def village_plan(name: str, candidates: int, median_mu: float | None = None
                 ) -> dict[str, float]:
    """Collective reference area of a district (the coarse quotas), the median parcel area
    and the expected collective area for `candidates` parcels (mu)."""
    poly = district_geometry(name)
    city = {**zmod.city_zones(), "priority": zmod.priority_zone()}
    zones = {k: g.intersection(poly) for k, g in city.items()}
    return _village_plan(poly, zones, candidates, median_mu)


def _village_plan(poly: BaseGeometry, zones: dict[str, BaseGeometry], candidates: int,
                  median_mu: float | None) -> dict[str, float]:
    strata = _strata_geometries(poly, zones)
    reference = sum(strata[s].area * COLLECTIVE_SHARE[s] for s in STRATA) / M2_PER_MU
    lo, hi = vil.MEDIAN_RANGE_MU
    if median_mu is None:
        median_mu = float(np.clip(reference / (candidates * vil.PARCEL_MEAN_TO_MEDIAN), lo, hi))
    collective = candidates * median_mu * vil.PARCEL_MEAN_TO_MEDIAN
    total = poly.area / M2_PER_MU
    return {"reference_mu": reference, "median_mu": float(median_mu),
            "collective_mu": collective, "district_mu": total}


def _village_plots(name: str, poly: BaseGeometry, zones: dict[str, BaseGeometry],
                   candidates: int, median_mu: float | None, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, str]]:
    """Village layout: plots, preset land use ("" = background), farmland score bonus, meta."""
    plan = _village_plan(poly, zones, candidates, median_mu)
    if plan["collective_mu"] > MAX_COLLECTIVE_SHARE * plan["district_mu"]:
        most = int(MAX_COLLECTIVE_SHARE * plan["district_mu"]
                   / (plan["median_mu"] * vil.PARCEL_MEAN_TO_MEDIAN))
        raise ValueError(f"{candidates} candidates of median {plan['median_mu']:.1f} mu would "
                         f"cover more than {MAX_COLLECTIVE_SHARE:.0%} of {name}; at most "
                         f"{most} fit")
    strata = _strata_geometries(poly, zones)
    field = _rng(seed, name, "village field")
    k = field.normal(0.0, 1.0 / VILLAGE_FIELD_M, size=(64, 2))
    phase = field.uniform(0, 2 * np.pi, 64)
    share = np.array([COLLECTIVE_SHARE[s] for s in STRATA])
    ind = np.array([QUOTAS["collective_industrial"][s] for s in STRATA]) / share

    def density(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        f = np.sqrt(2 / 64) * np.cos(np.column_stack((x, y)) @ k.T + phase).sum(axis=1)
        w = share[_stratum_at(strata, x, y)] / share.max()
        return w * np.exp(VILLAGE_FIELD_SIGMA * (np.minimum(f, 3.0) - 3.0))

    def industrial(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return ind[_stratum_at(strata, x, y)]

    n_bg = int(np.clip(round((plan["district_mu"] - plan["collective_mu"]) / BACKGROUND_MEAN_MU),
                       MIN_PLOTS, MAX_BACKGROUND))
    bg = _sample_points(poly, n_bg, _rng(seed, name, "background points"))
    lay = vil.layout(poly, candidates, plan["median_mu"], density, bg, industrial,
                     FARM_VILLAGE_SHARE, _rng(seed, name, "villages"))
    rng = _rng(seed, name, "village uses")
    n = len(lay.geoms)
    own_type = rng.uniform(size=n) < VILLAGE_MAJORITY
    vind = lay.village_industrial[np.maximum(lay.village, 0)]
    ind_parcel = np.where(own_type, vind, ~vind)
    preset = np.where(lay.candidate, np.where(ind_parcel, "collective_industrial",
                                              "rural_settlement"), "").astype(object)
    # Background plots next to a farm village lean to farmland, next to other villages away.
    bonus = np.zeros(n)
    cand = np.flatnonzero(lay.candidate)
    tree = shapely.STRtree(lay.geoms[cand])
    bgi = np.flatnonzero(~lay.candidate)
    src, dst = tree.query(lay.geoms[bgi], predicate="intersects")
    farm = lay.village_farm[lay.village[cand[dst]]]
    near_farm = np.zeros(n, bool)
    near_other = np.zeros(n, bool)
    near_farm[bgi[src[farm]]] = True
    near_other[bgi[src[~farm]]] = True
    bonus[near_farm] = FARM_VILLAGE_BONUS
    bonus[near_other & ~near_farm] = -FARM_VILLAGE_BONUS
    meta = {"mode": "villages", "candidates": str(candidates),
            "median_mu": f"{plan['median_mu']:.2f}", "villages": str(len(lay.village_xy))}
    return lay.geoms, preset, bonus, meta


def build(district: str, plots: int | None, seed: int, progress: Progress | None = None, *,
          mode: str = "auto", candidates: int | None = None, median_mu: float | None = None
          ) -> dict[str, pd.DataFrame]:
    """All layers of an instance in memory: plots, every zone layer, townships, meta.

    mode "coarse": `plots` Voronoi plots of lognormal-like size (land use by quotas);
    mode "villages": `candidates` collective parcels in villages (median `median_mu`, default
    chosen from the district's collective reference area within [5, 15] mu) plus larger
    background plots; "auto" (default): coarse when only `plots` is given, else villages."""
    mode = _check_mode(mode, plots, candidates, median_mu)
    if mode == "coarse":
        name = _check_args(district, plots, seed)  # type: ignore[arg-type]
    else:
        name = _check_args(district, MIN_PLOTS, seed)
        candidates = DEFAULT_CANDIDATES if candidates is None else int(candidates)
    report = progress or (lambda step, fraction: None)
    report("zones", 0.0)
    poly = district_geometry(name)
    city = {**zmod.city_zones(), "priority": zmod.priority_zone()}
    shapely.prepare(poly)
    zones = {k: g.intersection(poly) for k, g in city.items()}
    report("tessellation", 0.1)
    preset = bonus = None
    extra_meta: dict[str, str] = {}
    if mode == "coarse":
        geoms = tessellate(poly, int(plots), _rng(seed, name, "points"))  # type: ignore[arg-type]
    else:
        geoms, preset, bonus, extra_meta = _village_plots(name, poly, zones, candidates,
                                                          median_mu, seed)
    rep = shapely.point_on_surface(geoms)
    xy = shapely.get_coordinates(rep)
    order = _morton_order(xy[:, 0], xy[:, 1])
    geoms, rep = geoms[order], rep[order]
    if preset is not None and bonus is not None:
        preset, bonus = preset[order], bonus[order]
    report("land use", 0.55)
    attrs = attributes(geoms, zones, name, seed, preset, bonus)
    report("townships", 0.8)
    units = zmod.townships(name)
    table = pd.DataFrame({
        "plot_id": [f"P{i:06d}" for i in range(1, len(geoms) + 1)],
        "district": _assign(rep, units, "district").astype(str),
        "township": _assign(rep, units, "township").astype(str),
    })
    table = pd.concat([table, attrs.drop(columns="share_priority")], axis=1)
    table = table[list(PLOT_COLUMNS)]
    report("zone layers", 0.85)
    layers: dict[str, pd.DataFrame] = {
        PLOTS_LAYER: gpd.GeoDataFrame(table, geometry=geoms, crs=CRS_EPSG)}
    for z in ZONE_LAYERS:
        if z in ("farmland", "forest"):  # existing farmland / forest: dissolved plots
            geom = shapely.coverage_union_all(geoms[table["land_use"].to_numpy() == z])
        else:
            geom = zones[z]
        layers[z] = zone_frame(geom, z)
    layers[TOWNSHIPS_LAYER] = units
    meta = {"generator": "instances.generator", "generator_version": GENERATOR_VERSION,
            "district": name, "seed": str(seed), "plots": str(len(geoms)),
            "crs": f"EPSG:{CRS_EPSG}", **extra_meta,
            **_reference_areas(name, poly, zones)}
    layers[META_LAYER] = pd.DataFrame({"key": list(meta), "value": list(meta.values())})
    return layers


def write_layers(layers: dict[str, pd.DataFrame], out: Path) -> Path:
    """Write all layers to one GeoPackage atomically (temp file in the same folder, replace)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.gpkg")
    tmp.unlink(missing_ok=True)
    try:
        for layer, frame in layers.items():
            if isinstance(frame, gpd.GeoDataFrame):
                kind = "MultiPolygon" if layer != PLOTS_LAYER else None
                pyogrio.write_dataframe(frame, tmp, layer=layer, driver="GPKG",
                                        promote_to_multi=layer != PLOTS_LAYER,
                                        geometry_type=kind)
            else:
                pyogrio.write_dataframe(frame, tmp, layer=layer, driver="GPKG")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def generate(district: str, plots: int | None, seed: int, out: Path | str,
             progress: Progress | None = None, *, mode: str = "auto",
             candidates: int | None = None, median_mu: float | None = None) -> Path:
    """Write a synthetic instance on the real boundary of `district` (pinyin, or 'beijing' for
    the whole city) to the GeoPackage `out` (EPSG:4548); returns `out`.

    mode "villages" (the default for new instances: `generate(d, None, seed, out,
    candidates=10_000)`): `candidates` collective parcels (rural settlements and collective
    industry) in villages, median `median_mu` mu (default: from the district's collective
    reference area, within [5, 15]), the other land in larger plots; the plot count follows.
    mode "coarse": exactly `plots` plots, land use by quotas (the original generator).
    mode "auto": coarse when only `plots` is given, villages otherwise.

    Deterministic for the arguments. ValueError for an unknown district or mode, a plot count
    outside [500, 200000], a candidate count outside [200, 400000] or one that does not fit the
    district. `progress(step, fraction)` reports the overall fraction done.
    """
    layers = build(district, plots, seed, progress, mode=mode, candidates=candidates,
                   median_mu=median_mu)
    if progress:
        progress("writing", 0.9)
    path = write_layers(layers, Path(out))
    if progress:
        progress("done", 1.0)
    return path
