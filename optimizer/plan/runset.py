"""The output folder of one run, written as a set: prepared before any work, marked incomplete
while it is written, vouched for by a manifest written last.

Guarantee (README, "Exit codes and guarantees"): each file is written to a temporary name and
renamed, so none is ever half-written; and while a run writes its files, the folder holds
MARKER. A run killed at any moment therefore leaves either the complete previous set (killed
before the marker), the complete new set with MANIFEST (finished), or a set marked incomplete,
which `check` and `compare` refuse to read. Temporary files of a killed run (dot-names) are
removed when the next run prepares the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

MARKER = "outputs.incomplete"  # present while a run writes its outputs
MANIFEST = "outputs.json"  # written last: the files of the latest complete run and their sha256
_MARKER_TEXT = ("A run was writing its outputs here and did not finish (killed, disk full, ...).\n"
                "The files beside this one may mix two runs: run the command again.\n")


class OutputFolderError(ValueError):
    """An output folder that cannot be written, or a set of outputs that is not complete."""


def prepare_output_folder(folder: Path, outputs: tuple[str, ...] = (), *,
                          create: bool = True) -> Path:
    """Before any work: `folder` is (or can be created as) a writable folder, no file in the way.
    create: make it (with its parents); else only check, probing the nearest existing folder, so
    a command that fails later on bad input leaves nothing behind. Temporary files that a killed
    run left for `outputs` (and for the run markers) are removed."""
    folder = Path(folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == Path(p.anchor))
    if not existing.is_dir():
        where = "is a file" if existing == folder else f"lies below {existing}, which is a file"
        raise OutputFolderError(f"{folder}: output folder {where}, not a folder")
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
            existing = folder
        fd, probe = tempfile.mkstemp(prefix=".greenbelt-probe.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputFolderError(f"{folder}: output folder is not writable "
                                f"({err.strerror or err})") from None
    if folder.is_dir():
        for name in (*outputs, MARKER, MANIFEST):
            for tmp in folder.glob(f".{name}.*"):
                tmp.unlink(missing_ok=True)
    return folder


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _replace_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def begin_set(folder: Path) -> None:
    """Mark the folder incomplete (first), then drop the previous run's manifest."""
    _replace_text(folder / MARKER, _MARKER_TEXT)
    (folder / MANIFEST).unlink(missing_ok=True)


def finish_set(folder: Path, files: list[str], stale: tuple[str, ...] = ()) -> None:
    """Remove earlier outputs that are not part of this set, write the manifest, then lift the
    marker: only now is the set complete."""
    for name in stale:
        if name not in files:
            (folder / name).unlink(missing_ok=True)
    manifest = {"complete": True, "files": {name: _sha256(folder / name) for name in files}}
    _replace_text(folder / MANIFEST, json.dumps(manifest, indent=2))
    (folder / MARKER).unlink()


def refuse_incomplete(path: Path) -> None:
    """Raise if `path` lies in an output folder whose set is marked incomplete."""
    marker = Path(path).parent / MARKER
    if marker.exists():
        raise OutputFolderError(f"{path}: its folder holds {MARKER}: the run that wrote it was "
                                "interrupted and the files may mix two runs; run it again")
