"""A cache of the tables the loader derives from the geometry (adjacency, zone shares, touches,
zone areas), keyed by the SHA-256 of the instance's files: the overlays take most of a load
(7 s of 7.1 s at 50k plots), reading the file well under a second.

The cache lives in `$GREENBELT_CACHE/derived` (default `~/.cache/greenbelt/derived`);
`GREENBELT_CACHE=off` switches it off. An entry is written only after a load that passed every
check, atomically, so a hit stands for a file that was valid; any change to the files' bytes is a
new key. A damaged or unreadable entry is ignored (the load derives again).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

FORMAT = "1"  # bump when the derived tables or their definitions change
_OFF = {"off", "0", "no", "false", ""}


def cache_dir() -> Path | None:
    value = os.environ.get("GREENBELT_CACHE")
    if value is not None and value.strip().lower() in _OFF:
        return None
    # a folder of its own: the benchmarks keep generated instances in the same cache root
    return (Path(value) if value else Path.home() / ".cache" / "greenbelt") / "derived"


def source_key(files: list[Path], settings: str) -> str:
    """SHA-256 over the files' names and bytes, the loader's settings and the cache format."""
    digest = hashlib.sha256(f"{FORMAT}|{settings}".encode())
    for file in sorted(files):
        digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def read(key: str) -> tuple[sp.csr_matrix, dict[str, np.ndarray], dict[str, float]] | None:
    """(adjacency, derived plot columns, stats) of a cached load, or None."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        with np.load(folder / f"{key}.npz", allow_pickle=False) as z:
            n = int(z["n"])
            adjacency = sp.csr_matrix((z["adj_data"], z["adj_indices"], z["adj_indptr"]),
                                      shape=(n, n))
            columns = {str(name)[4:]: z[name] for name in z.files if name.startswith("col_")}
            stats = dict(zip(z["stat_names"].tolist(), z["stat_values"].tolist(), strict=True))
    except (OSError, KeyError, ValueError):
        return None
    return adjacency, columns, stats


def write(key: str, adjacency: sp.csr_matrix, columns: dict[str, np.ndarray],
          stats: dict[str, float]) -> None:
    """Store a load's derived tables; a cache that cannot be written is skipped silently (the
    load itself succeeded)."""
    folder = cache_dir()
    if folder is None:
        return
    arrays = {f"col_{name}": np.asarray(values) for name, values in columns.items()}
    arrays.update(n=np.int64(adjacency.shape[0]), adj_data=adjacency.data,
                  adj_indices=adjacency.indices, adj_indptr=adjacency.indptr,
                  stat_names=np.array(list(stats), dtype=str),
                  stat_values=np.array(list(stats.values()), dtype=float))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, folder / f"{key}.npz")
    except OSError:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass
