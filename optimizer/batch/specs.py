"""Sweep inputs: instance fingerprints and job keys, scenario specs from files or a grid, and the
scenario.toml writer. No solving here (see `optimizer.batch.sweep`)."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer.model.scenario import ScenarioError, read_scenario_toml

KEY_VERSION = 1
FULL_HASH_LIMIT = 64 * 2**20  # files up to this size are hashed whole
EDGE_BYTES = 2**20  # bigger ones: size + mtime + path + first and last MiB


class SweepError(ValueError):
    """Bad sweep input (a grid option, a scenario file): one line for the planner."""


# ---------------------------------------------------------------- instance fingerprint and keys


def _file_digest(path: Path) -> bytes:
    size = path.stat().st_size
    h = hashlib.sha256()
    with path.open("rb") as fh:
        if size <= FULL_HASH_LIMIT:
            for chunk in iter(lambda: fh.read(EDGE_BYTES), b""):
                h.update(chunk)
        else:
            # Hashing a multi-GB city instance per sweep would cost more than a solve; an edit
            # changes mtime or size, a copy changes the path (a copy only re-solves).
            st = path.stat()
            h.update(f"{size}:{st.st_mtime_ns}:{path.resolve()}".encode())
            h.update(fh.read(EDGE_BYTES))
            fh.seek(-EDGE_BYTES, 2)
            h.update(fh.read(EDGE_BYTES))
    return h.digest()


def instance_fingerprint(path: Path) -> str:
    """sha256 of the instance file's bytes (a Shapefile folder: of every file and its name).
    Files over 64 MiB: of size, mtime, absolute path and the first and last MiB."""
    path = Path(path)
    if not path.exists():
        raise SweepError(f"{path}: instance not found")
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f.relative_to(path).as_posix().encode() + b"\0" + _file_digest(f))
    else:
        h.update(_file_digest(path))
    return h.hexdigest()


def job_key(fingerprint: str, scenario: dict[str, Any], options: dict[str, Any]) -> str:
    blob = json.dumps({"version": KEY_VERSION, "instance": fingerprint, "scenario": scenario,
                       "options": options}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------- scenario specs (files, grid)


@dataclass
class ScenarioSpec:
    """A scenario before validation: raw TOML data and where it came from."""

    name: str
    raw: dict[str, Any]
    label: str  # folder prefix: the scenario's name, or its index in a grid
    params: dict[str, Any] = field(default_factory=dict)  # grid parameters (dotted key -> value)


GridAxis = tuple[str, list[Any]]


def _toml_scalar(token: str) -> Any:
    token = token.strip()
    try:
        return tomllib.loads(f"v = {token}")["v"]
    except tomllib.TOMLDecodeError:
        return token  # a bare word such as auto or highs


def parse_grid(spec: str) -> GridAxis:
    """`section.key=v1,v2,...` -> (key, values); values are TOML scalars, bare words strings."""
    key, sep, values = spec.partition("=")
    key = key.strip()
    if not sep or not values.strip() or not key or any(not p for p in key.split(".")):
        raise SweepError(f"--grid {spec!r}: expected section.key=value1,value2,...")
    try:
        parsed = tomllib.loads(f"v = [{values}]")["v"]
    except tomllib.TOMLDecodeError:
        parsed = [_toml_scalar(t) for t in values.split(",") if t.strip()]
    if not parsed:
        raise SweepError(f"--grid {spec!r}: no values")
    return key, parsed


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    node = data
    for part in path:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SweepError(f"--grid {dotted}: {part!r} is not a table")
        node = child
    node[last] = value


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data))


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return read_scenario_toml(Path(path))  # the one reader: BOM, encoding, folder
    except ScenarioError as err:
        raise SweepError(str(err)) from None


def _solver_overrides(raw: dict[str, Any], backend: str | None, time_limit: float | None) -> None:
    # Command-line solver choices go into the scenario itself, so scenario.toml reproduces the run.
    if backend is not None:
        _set(raw, "solver.backend", backend)
    if time_limit is not None:
        _set(raw, "solver.time_limit", time_limit)


def specs_from_files(paths: Iterable[Path], backend: str | None = None,
                     time_limit: float | None = None) -> list[ScenarioSpec]:
    specs = []
    for path in paths:
        raw = read_toml(path)
        raw.setdefault("name", Path(path).stem)
        _solver_overrides(raw, backend, time_limit)
        name = str(raw["name"])
        specs.append(ScenarioSpec(name, raw, name))
    return specs


def specs_from_grid(axes: list[GridAxis], base: Path | None = None, backend: str | None = None,
                    time_limit: float | None = None) -> list[ScenarioSpec]:
    """The cross product of the axes applied to the base scenario (CLI solver options first, so a
    grid over solver.backend still varies it)."""
    raw = read_toml(base) if base is not None else {}
    base_name = str(raw.get("name", Path(base).stem if base is not None else "sweep"))
    _solver_overrides(raw, backend, time_limit)
    keys = [k for k, _ in axes]
    if len(set(keys)) != len(keys):
        raise SweepError("--grid: the same key is given twice")
    # Scenario names use the last part of each key where that is unambiguous.
    short = [k.rsplit(".", 1)[-1] for k in keys]
    if len(set(short)) != len(short):
        short = keys
    specs = []
    for i, values in enumerate(itertools.product(*(v for _, v in axes))):
        params = dict(zip(keys, values, strict=True))
        data = _deep_copy(raw)
        for k, v in params.items():
            _set(data, k, v)
        label = ", ".join(f"{k}={v}" for k, v in zip(short, values, strict=True))
        data["name"] = f"{base_name} {label}"
        specs.append(ScenarioSpec(data["name"], data, f"{i:03d}", params))
    return specs


# ---------------------------------------------------------------- scenario.toml


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)  # also inf, -inf, nan: TOML spells them the same
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, dict):
        items = ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()
                          if x is not None)
        return "{ " + items + " }" if items else "{}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for scenario dicts (tomli-w is not a dependency): top-level scalars,
    then one [table] per section, nested tables inline. None (TOML has no null) is left out,
    which reads back as the default None of every optional scenario field."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items()
             if v is not None and not isinstance(v, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{_toml_key(name)}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()
                      if v is not None]
    return "\n".join(lines) + "\n"
