"""The vectorised plot fill draws what geopandas draws (one patch per polygon), holes included."""

from __future__ import annotations

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402
from shapely.geometry import MultiPolygon, Polygon, box  # noqa: E402

from optimizer.reporting.maps import fill_plots  # noqa: E402


def render(draw) -> np.ndarray:
    fig, ax = plt.subplots(figsize=(3, 3), dpi=60)
    draw(ax)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.set_axis_off()
    fig.subplots_adjust(0, 0, 1, 1)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def shapes() -> tuple[np.ndarray, np.ndarray]:
    ring = Polygon(box(1, 1, 5, 5).exterior.coords, [box(2, 2, 4, 4).exterior.coords])
    clockwise = shapely.orient_polygons(box(6, 1, 9, 4), exterior_cw=True)
    multi = MultiPolygon([box(1, 6, 3, 9), box(4, 6, 5, 7)])
    polygons = np.array([ring, clockwise, multi, box(6, 6, 9, 9)], dtype=object)
    return polygons, np.array(["#ff0000", "#00ff00", "#0000ff", "#ff0000"], dtype=object)


def test_fill_matches_geopandas_pixel_for_pixel_away_from_edges() -> None:
    polygons, colours = shapes()
    ours = render(lambda ax: fill_plots(ax, polygons, colours))
    theirs = render(lambda ax: gpd.GeoSeries(polygons).plot(ax=ax, color=list(colours),
                                                            linewidth=0))
    differ = np.abs(ours.astype(int) - theirs.astype(int)).sum(axis=2) > 60
    assert differ.mean() < 0.02  # only anti-aliased edge pixels may differ


def test_holes_stay_open_and_plots_are_filled() -> None:
    polygons, colours = shapes()
    image = render(lambda ax: fill_plots(ax, polygons, colours))
    h = image.shape[0]

    def at(x: float, y: float) -> tuple[int, ...]:
        return tuple(int(v) for v in image[int(h - y / 10 * h), int(x / 10 * h)])

    assert at(3, 3) == (255, 255, 255)  # the hole of the first plot
    assert at(1.5, 1.5) == (255, 0, 0)  # its ring
    assert at(7.5, 2.5) == (0, 255, 0)  # a clockwise exterior is filled too
    assert at(2, 7.5) == (0, 0, 255) and at(4.5, 6.5) == (0, 0, 255)  # both parts of the multi
