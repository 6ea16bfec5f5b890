"""The loader's cache of derived tables: a hit gives exactly what deriving gives, any change to
the files' bytes misses, a damaged entry is ignored, and `off` switches it off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from instances import derived_cache, overlay
from instances.loader import load_instance
from tests.test_loader import valid_layers, write_gpkg, write_shapefiles


def no_overlays(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("derived the tables although the cache holds them")

    monkeypatch.setattr(overlay, "plot_contacts", refuse)


def same(a, b) -> None:  # noqa: ANN001
    pd.testing.assert_frame_equal(a.plots, b.plots)
    assert (a.adjacency != b.adjacency).nnz == 0
    assert a.stats == b.stats


@pytest.mark.parametrize("kind", ["gpkg", "shp"])
def test_a_hit_equals_deriving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               kind: str) -> None:
    monkeypatch.setenv("GREENBELT_CACHE", str(tmp_path / "cache"))
    if kind == "gpkg":
        path = write_gpkg(tmp_path / "inst.gpkg", valid_layers())
    else:
        path = write_shapefiles(tmp_path / "layers", valid_layers(), "utf-8")
    first = load_instance(path)
    assert len(list((tmp_path / "cache" / "derived").glob("*.npz"))) == 1
    with monkeypatch.context() as m:
        no_overlays(m)
        second = load_instance(path)
    same(first, second)
    monkeypatch.setenv("GREENBELT_CACHE", "off")
    same(first, load_instance(path))


def test_changed_bytes_miss_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENBELT_CACHE", str(tmp_path / "cache"))
    layers = valid_layers()
    path = tmp_path / "inst.gpkg"
    write_gpkg(path, layers)
    before = load_instance(path)
    layers["plots"].loc[0, "land_use"] = "forest" if before.plots.loc[0, "land_use"] != "forest" \
        else "farmland"
    write_gpkg(path, layers)
    with monkeypatch.context() as m:
        no_overlays(m)
        with pytest.raises(AssertionError, match="derived the tables"):
            load_instance(path)
    # the refused load wrote nothing
    assert len(list((tmp_path / "cache" / "derived").glob("*.npz"))) == 1
    after = load_instance(path)
    assert len(list((tmp_path / "cache" / "derived").glob("*.npz"))) == 2
    assert not np.array_equal(before.plots["land_use"], after.plots["land_use"])


def test_a_damaged_entry_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENBELT_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "inst.gpkg"
    write_gpkg(path, valid_layers())
    first = load_instance(path)
    (entry,) = (tmp_path / "cache" / "derived").glob("*.npz")
    entry.write_bytes(b"not an npz file")
    same(first, load_instance(path))
    assert derived_cache.read(entry.stem) is not None  # rewritten by the second load
