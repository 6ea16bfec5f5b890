"""The mapping file (TOML): which file and layer hold the plots, which source field feeds each
instance column, constants, what an empty value means per field, land-class overrides and the
optional zone layers. `examples/survey_mapping.toml` documents every key."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instances.schema import LAND_USES, PLOT_COLUMNS, TOWNSHIPS_LAYER, ZONE_LAYERS
from instances.survey.values import yes_no

# Columns the mapping can feed: the schema's, with `land_class` (a 三调 code or name, via the
# land-class table) in place of `land_use`, and `ownership` (权属性质) to tell collective land.
SOURCE_COLUMNS = (*PLOT_COLUMNS, "land_class", "ownership")
NUMBER_COLUMNS = tuple(k for k, (kind, _) in PLOT_COLUMNS.items() if kind == "float")
FLAG_COLUMNS = tuple(k for k, (kind, _) in PLOT_COLUMNS.items() if kind == "bool")

# What an empty value (blank, NULL) means when the mapping's [empty] section says nothing.
# "error": an error; "error_on_candidates": an error on collective construction land (the plots
# that may be vacated), 0 elsewhere; a number or yes/no: that value.
DEFAULT_EMPTY: dict[str, object] = {
    "output_wan": "error_on_candidates",
    "demolition_wan_per_mu": "error_on_candidates",
    "reclaim_wan_per_mu": "error_on_candidates",
    "afforest_wan_per_mu": "error_on_candidates",
    "soil_suitable": True,
    "polluted": False,
    "illegal": False,
    "protected": False,
}
EMPTY_RULES = ("error", "error_on_candidates")
_TOP_KEYS = {"file", "layer", "encoding", "fields", "constants", "empty", "land_classes",
             "zones"}
_ZONE_KEYS = {"file", "layer", "encoding", "township_field"}


class MappingError(ValueError):
    """A mapping file that cannot be used: one line naming the file and the key."""


@dataclass
class ZoneSource:
    file: Path
    layer: str | None = None
    encoding: str | None = None
    township_field: str | None = None  # townships layer only: the field naming the township


@dataclass
class Mapping:
    source: Path  # the mapping file (relative paths in it are relative to its folder)
    file: Path | None = None
    layer: str | None = None
    encoding: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # instance column -> source field
    constants: dict[str, object] = field(default_factory=dict)
    empty: dict[str, object] = field(default_factory=lambda: dict(DEFAULT_EMPTY))
    land_classes: dict[str, str] = field(default_factory=dict)
    zones: dict[str, ZoneSource] = field(default_factory=dict)


def _fail(path: Path, key: str, problem: str) -> MappingError:
    return MappingError(f"{path}: [{key}]: {problem}" if key else f"{path}: {problem}")


def _table(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise _fail(path, key, "must be a table")
    return value


def load_mapping(path: str | Path | None) -> Mapping:
    """Read and check a mapping file; None gives the empty mapping (schema field names)."""
    if path is None:
        return Mapping(source=Path("."))
    path = Path(path)
    if not path.exists():
        raise MappingError(f"{path}: mapping file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise MappingError(f"{path}: not valid UTF-8 TOML: {str(err).splitlines()[0]}") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _fail(path, "", f"unknown key(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(_TOP_KEYS))})")
    base = path.parent
    m = Mapping(source=path)
    if "file" in data:
        m.file = base / str(data["file"])
    m.layer = data.get("layer")
    m.encoding = data.get("encoding")
    for col, src in _table(data, "fields", path).items():
        if col not in SOURCE_COLUMNS:
            raise _fail(path, "fields", f"unknown column '{col}' "
                                        f"(known: {', '.join(SOURCE_COLUMNS)})")
        m.fields[col] = str(src)
    if "land_use" in m.fields and "land_class" in m.fields:
        raise _fail(path, "fields", "map either land_use (this tool's words) or land_class "
                                    "(三调 codes or names), not both")
    for col, value in _table(data, "constants", path).items():
        if col not in SOURCE_COLUMNS:
            raise _fail(path, "constants", f"unknown column '{col}'")
        m.constants[col] = value
    for col, rule in _table(data, "empty", path).items():
        if col not in (*NUMBER_COLUMNS, *FLAG_COLUMNS):
            raise _fail(path, "empty", f"'{col}': empty rules apply to the number and yes/no "
                                       f"columns ({', '.join((*NUMBER_COLUMNS, *FLAG_COLUMNS))})")
        word = col in FLAG_COLUMNS and isinstance(rule, str) and yes_no(rule) is not None
        if isinstance(rule, str) and rule not in EMPTY_RULES and not word:
            raise _fail(path, "empty", f"'{col}' = {rule!r}: use a value, "
                                       f"{' or '.join(repr(r) for r in EMPTY_RULES)}")
        m.empty[col] = rule
    for key, use in _table(data, "land_classes", path).items():
        if use not in LAND_USES:
            raise _fail(path, "land_classes", f"'{key}' = {use!r}: not a land use "
                                              f"(valid: {', '.join(LAND_USES)})")
        m.land_classes[str(key)] = str(use)
    for name, spec in _table(data, "zones", path).items():
        if name not in (*ZONE_LAYERS, TOWNSHIPS_LAYER):
            raise _fail(path, "zones", f"unknown zone layer '{name}' "
                                       f"(known: {', '.join((*ZONE_LAYERS, TOWNSHIPS_LAYER))})")
        if isinstance(spec, str):
            spec = {"file": spec}
        if not isinstance(spec, dict) or "file" not in spec or set(spec) - _ZONE_KEYS:
            raise _fail(path, f"zones.{name}", "needs file = \"...\" and optionally layer, "
                                               "encoding, township_field")
        m.zones[name] = ZoneSource(base / str(spec["file"]), spec.get("layer"),
                                   spec.get("encoding"), spec.get("township_field"))
    return m
