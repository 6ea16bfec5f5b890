"""The instance file format (GeoPackage or Shapefiles): layer names, plot columns, units.

One source of truth shared by the generator (writes it) and the loader (validates it).
"""

from __future__ import annotations

CRS_EPSG = 4548  # CGCS2000 / 3-degree Gauss-Kruger CM 117E, metres
M2_PER_MU = 2000.0 / 3.0

PLOTS_LAYER = "plots"

# name -> (dtype kind, meaning / unit). Areas are never read from a column: they come from geometry.
PLOT_COLUMNS: dict[str, tuple[str, str]] = {
    "plot_id": ("str", "unique plot identifier"),
    "district": ("str", "district name (pinyin, lower case, e.g. chaoyang)"),
    "township": ("str", "township / implementation unit id"),
    "land_use": ("str", "one of LAND_USES"),
    "output_wan": ("float", "annual economic output of the plot, 10k yuan (万元) per year"),
    "demolition_wan_per_mu": ("float", "demolition and compensation cost, 万元 per mu"),
    "reclaim_wan_per_mu": ("float", "reclamation-to-farmland cost, 万元 per mu"),
    "afforest_wan_per_mu": ("float", "afforestation cost, 万元 per mu"),
    "soil_suitable": ("bool", "soil suitable for farmland"),
    "polluted": ("bool", "polluted soil: may not become basic farmland"),
    "illegal": ("bool", "illegal building: must be vacated"),
    "protected": ("bool", "protected (heritage, infrastructure): may not be vacated"),
}

# Collective construction land: the only land uses that can be demolished and vacated.
CANDIDATE_LAND_USES = ("collective_industrial", "rural_settlement")
LAND_USES = (
    *CANDIDATE_LAND_USES,
    "urban",
    "farmland",
    "forest",
    "water",
    "other",
)

# Zone layers (polygons). Each is dissolved on load; plots get the share of their area inside.
ZONE_LAYERS = (
    "central_city",
    "plain_area",
    "green_belt_1",
    "green_belt_2",
    "green_wedges",
    "water_source",
    "river_channel",
    "farmland_protection_space",
    "farmland",  # existing protected farmland (permanent basic farmland + reserve)
    "forest",    # existing forest
)
# Ecological-remediation priority zones = union of these (green belts + nine wedges).
PRIORITY_LAYERS = ("green_belt_1", "green_belt_2", "green_wedges")
# Implementation units: polygons with columns `township` and `district`.
TOWNSHIPS_LAYER = "townships"
# Optional non-spatial table of (key, value) strings, e.g. citywide reference areas for
# dividing citywide targets among districts.
META_LAYER = "meta"

# The largest value a plot's number may hold (万元, 万元/mu): beyond it a figure cannot be a cost
# or an output, and solvers would treat the cost it makes as infinite. The loader refuses it.
MAX_PLOT_VALUE = 1.0e9
# Reference areas in the meta table (mu) that divide citywide targets among districts
# ("city_<kind>_mu", "district_<kind>_mu"): numbers >= 0, the city_* ones > 0.
META_AREA_KINDS = ("central", "priority", "total", "plain")
