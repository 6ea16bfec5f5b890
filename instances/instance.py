"""The validated, solver-ready view of an instance file."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd
import scipy.sparse as sp


@dataclass
class Instance:
    """A loaded instance. Row i of `plots`, `geometry` and `adjacency` is the same plot.

    `plots` holds every PLOT_COLUMNS column plus the derived columns:
      - area_mu: plot area from geometry (mu)
      - share_<zone> for each zone in ZONE_LAYERS and share_priority (union of PRIORITY_LAYERS):
        fraction of the plot's area inside the zone, in [0, 1]
      - touches_farmland / touches_forest: more than 0.5 m of the plot's boundary lies on or
        inside the existing farmland / forest layer, or is shared with a plot of that land use
        (corner contacts do not count)
      - collective: land_use in CANDIDATE_LAND_USES
    `adjacency`: symmetric CSR (n x n), data = shared boundary length in metres (> 0.5 m).
    `stats`: areas in mu: "<zone>_mu" for every zone layer (dissolved, inside the study area),
      "priority_mu", "farmland_in_priority_mu", "forest_in_plain_mu", "study_area_mu".
    """

    name: str
    plots: pd.DataFrame
    geometry: gpd.GeoSeries
    adjacency: sp.csr_matrix
    zones: dict[str, gpd.GeoDataFrame]
    stats: dict[str, float]
    meta: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def num_plots(self) -> int:
        return len(self.plots)
