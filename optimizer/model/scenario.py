"""Scenario: the planner's targets, as TOML. Every seed figure is a key with the seed value as
its default (seed 000 = Beijing 14th Five-Year land plan, seed 004 = green-belt plan).

District instances receive a share of the citywide figures (指标分解) from the instance's `meta`
table (citywide and district reference areas); see `district_targets`.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from optimizer.model.schedule import Phasing, PhasingError, parse_phasing

# Seed figures (seed 000, indicator table and ch. 3-4).
SEED_CENTRAL_REDUCTION_MU = 52_500.0  # central city 885 -> 850 km2
SEED_CITY_NET_REDUCTION_MU = 28_500.0  # citywide 2809 -> 2790 km2
SEED_PRIORITY_FARMLAND_MU = 520_000.0  # farmland + reserve inside the priority zones


class ScenarioError(ValueError):
    """A scenario file with unknown keys or impossible values."""


@dataclass
class Targets:
    # Reduction totals (mu). "auto" = the instance's share of the citywide figure.
    central_reduction_mu: float | str = "auto"
    total_reduction_mu: float | str = "auto"
    township_reduction_mu: dict[str, float] = field(default_factory=dict)
    # Share of vacated area inside the priority zones (green belts + nine wedges).
    central_priority_share: float = 0.90
    central_priority_tolerance: float = 0.01  # "about 90%": at least share - tolerance
    plain_priority_share: float = 0.65
    # Protected farmland inside the priority zones, existing + new (mu).
    priority_farmland_mu: float | str = "auto"
    # Optional rules.
    conversion_balance: bool = True  # land to farmland >= land to forest
    plain_forest_coverage: float | None = None  # e.g. 0.32; None = off


@dataclass
class Eligibility:
    # Plots at or below this output per mu are low-efficiency candidates (万元/mu/year).
    low_efficiency_max_wan_per_mu: float = 20.0
    # A plot counts as "in" a restricted zone when more than this share of it lies inside.
    zone_overlap_tolerance: float = 0.05


@dataclass
class Budget:
    # Total budget (万元). "auto" = wan_per_mu_of_target x the total reduction target, or x the
    # area that must be vacated anyway (illegal buildings) where that is larger: Daxing at 50k
    # candidates must vacate 5,530 mu, 3x its 1,796-mu target, and that alone cost the budget.
    total_wan: float | str = "auto"
    # Generous on purpose (cheapest land costs ~100-150 万元/mu on generated instances): the seeds
    # give no figure; a tight budget is a scenario choice.
    wan_per_mu_of_target: float = 200.0
    township_wan: dict[str, float] = field(default_factory=dict)


@dataclass
class Objective:
    # Lost annual output is weighed as this many years of output (the five-year period).
    output_years: float = 5.0
    cost_weight: float = 1.0


@dataclass
class Elastic:
    enabled: bool = False
    # Penalty per unit of shortfall (per mu, or per 万元 of overrun); large so targets come first.
    penalty: float = 1.0e4


@dataclass
class Contiguity:
    enabled: bool = True  # seed: new farmland in contiguous blocks
    min_block_mu: float = 100.0  # 百亩园
    priority_block_mu: float | None = None  # optional larger tier inside the priority zones
    method: str = "auto"  # auto | branch_and_cut | rowgen | flow | lns
    greedy_start: bool = True  # warm start from a greedy repair of the plan without the rule
    forest_connected: bool = False  # new forest must extend existing forest or a green wedge
    workers: int = 0  # lns: cluster problems solved at once on a local process pool; 0 = auto
    scheduler: str = ""  # lns: a Dask scheduler address (e.g. tcp://host:8786) instead


@dataclass
class Compactness:
    weight: float = 0.0  # 万元 per unit of penalty; 0 = off
    form: str = "isolated"  # isolated | boundary


@dataclass
class SolverSettings:
    backend: str = "highs"
    time_limit: float = 120.0
    mip_gap: float = 1e-3
    threads: int = 2
    seed: int = 0


@dataclass
class Scenario:
    name: str = "default"
    targets: Targets = field(default_factory=Targets)
    eligibility: Eligibility = field(default_factory=Eligibility)
    budget: Budget = field(default_factory=Budget)
    objective: Objective = field(default_factory=Objective)
    elastic: Elastic = field(default_factory=Elastic)
    contiguity: Contiguity = field(default_factory=Contiguity)
    compactness: Compactness = field(default_factory=Compactness)
    solver: SolverSettings = field(default_factory=SolverSettings)
    phasing: Phasing = field(default_factory=Phasing)  # the five-year schedule; off by default

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SECTIONS = {
    "targets": Targets,
    "eligibility": Eligibility,
    "budget": Budget,
    "objective": Objective,
    "elastic": Elastic,
    "contiguity": Contiguity,
    "compactness": Compactness,
    "solver": SolverSettings,
}
_CHOICES = {
    ("contiguity", "method"): ("auto", "branch_and_cut", "rowgen", "flow", "lns"),
    ("compactness", "form"): ("isolated", "boundary"),
    ("solver", "backend"): ("highs", "cbc", "cpsat", "scip"),
}


# The largest magnitude any scenario number may have (mu, 万元, seconds, penalties): beyond it a
# value cannot be a planning figure, and solvers treat such coefficients as infinite.
MAX_NUMBER = 1.0e12


def finite_number(where: str, value: float) -> float:
    """The one check every number passes: finite and within MAX_NUMBER (NaN and inf refused)."""
    if not math.isfinite(value):
        raise ScenarioError(f"{where} = {value}: must be a finite number")
    if abs(value) > MAX_NUMBER:
        raise ScenarioError(f"{where} = {value:g}: beyond {MAX_NUMBER:g}, not a planning figure")
    return float(value)


def positive_seconds(where: str, value: float) -> float:
    """A time limit: finite and above zero."""
    finite_number(where, value)
    if value <= 0:
        raise ScenarioError(f"{where} = {value:g}: a time limit must be more than 0 seconds")
    return float(value)


def _number(where: str, value: Any, allow_auto: bool) -> float | str:
    if allow_auto and value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int | float):
        expected = 'a number or "auto"' if allow_auto else "a number"
        raise ScenarioError(f"{where}: expected {expected}, got {value!r}")
    return finite_number(where, float(value))


def _coerce(section: str, key: str, default: Any, value: Any) -> Any:
    where = f"[{section}] {key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ScenarioError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ScenarioError(f"{where}: expected a table of township = number")
        return {str(k): float(_number(f"{where}.{k}", v, False)) for k, v in value.items()}
    if (section, key) in _CHOICES or (isinstance(default, str) and default != "auto"):
        if not isinstance(value, str):
            raise ScenarioError(f"{where}: expected a string, got {value!r}")
        choices = _CHOICES.get((section, key))
        if choices and value not in choices:
            raise ScenarioError(f"{where}: {value!r} is not one of {', '.join(choices)}")
        return value
    if isinstance(default, int) and not isinstance(default, bool) and key in (
            "threads", "seed", "workers"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ScenarioError(f"{where}: expected an integer, got {value!r}")
        return value
    return _number(where, value, allow_auto=default == "auto")


def scenario_from_dict(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Build and validate a Scenario from parsed TOML. Unknown keys are errors."""
    try:
        return _from_dict(data)
    except ScenarioError as err:
        raise ScenarioError(f"{source}: {err}") from None


def _from_dict(data: dict[str, Any]) -> Scenario:
    scenario = Scenario()
    for top, value in data.items():
        if top == "name":
            scenario.name = str(value)
            continue
        if top == "phasing":  # its own parser: lists and per-year rules (model/schedule.py)
            try:
                scenario.phasing = parse_phasing(value)
            except PhasingError as err:
                raise ScenarioError(str(err)) from None
            continue
        if top not in _SECTIONS:
            raise ScenarioError(f"unknown section [{top}] "
                                f"(valid: name, {', '.join(_SECTIONS)}, phasing)")
        if not isinstance(value, dict):
            raise ScenarioError(f"[{top}] must be a table")
        section = getattr(scenario, top)
        valid = {f.name: f for f in fields(section)}
        for key, raw in value.items():
            if key not in valid:
                raise ScenarioError(f"unknown key [{top}] {key} "
                                    f"(valid: {', '.join(valid)})")
            default = getattr(section, key)
            if raw is None or (default is None and raw is not None):
                coerced = None if raw is None else _number(f"[{top}] {key}", raw, False)
            else:
                coerced = _coerce(top, key, default, raw)
            setattr(section, key, coerced)
    validate(scenario)
    return scenario


def load_scenario(path: str | Path | None) -> Scenario:
    """Read a scenario TOML file; None gives the seed defaults."""
    if path is None:
        return Scenario()
    path = Path(path)
    data = read_scenario_toml(path)
    scenario = scenario_from_dict(data, str(path))
    if "name" not in data:
        scenario.name = path.stem
    return scenario


def read_scenario_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML of a scenario file; one-line ScenarioError for every way it can fail."""
    if not path.exists():
        raise ScenarioError(f"{path}: scenario file not found")
    if path.is_dir():
        raise ScenarioError(f"{path}: is a folder, not a scenario file")
    try:
        # utf-8-sig: a BOM (Windows Notepad writes one) is skipped, not a TOML error
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{path}: not valid TOML: {str(err).splitlines()[0]}") from None
    except UnicodeDecodeError as err:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {err.start}); TOML files must be "
                            "saved as UTF-8 (e.g. not GBK)") from None
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read ({err.strerror or err})") from None
    return data


def validate(s: Scenario) -> None:
    t = s.targets
    for key in ("central_priority_share", "plain_priority_share", "central_priority_tolerance"):
        v = getattr(t, key)
        if not 0.0 <= v <= 1.0:
            raise ScenarioError(f"[targets] {key} = {v}: must lie in [0, 1]")
    if t.plain_forest_coverage is not None and not 0.0 <= t.plain_forest_coverage <= 1.0:
        raise ScenarioError(f"[targets] plain_forest_coverage = {t.plain_forest_coverage}: "
                            "must lie in [0, 1]")
    nonneg = {
        "[targets] central_reduction_mu": t.central_reduction_mu,
        "[targets] total_reduction_mu": t.total_reduction_mu,
        "[targets] priority_farmland_mu": t.priority_farmland_mu,
        "[budget] total_wan": s.budget.total_wan,
        "[budget] wan_per_mu_of_target": s.budget.wan_per_mu_of_target,
        "[eligibility] low_efficiency_max_wan_per_mu": s.eligibility.low_efficiency_max_wan_per_mu,
        "[objective] output_years": s.objective.output_years,
        "[objective] cost_weight": s.objective.cost_weight,
        "[elastic] penalty": s.elastic.penalty,
        "[contiguity] min_block_mu": s.contiguity.min_block_mu,
        "[compactness] weight": s.compactness.weight,
        "[solver] time_limit": s.solver.time_limit,
        "[solver] mip_gap": s.solver.mip_gap,
    }
    nonneg.update({f"[targets] township_reduction_mu.{k}": v
                   for k, v in t.township_reduction_mu.items()})
    nonneg.update({f"[budget] township_wan.{k}": v for k, v in s.budget.township_wan.items()})
    for key, v in nonneg.items():
        if v != "auto" and v is not None and v < 0:
            raise ScenarioError(f"{key} = {v}: must not be negative")
    if not 0.0 <= s.eligibility.zone_overlap_tolerance < 1.0:
        raise ScenarioError("[eligibility] zone_overlap_tolerance must lie in [0, 1)")
    positive_seconds("[solver] time_limit", s.solver.time_limit)
    if not 0.0 <= s.solver.mip_gap < 1.0:
        raise ScenarioError(f"[solver] mip_gap = {s.solver.mip_gap}: must lie in [0, 1)")
    if s.solver.threads < 1:
        raise ScenarioError("[solver] threads must be at least 1")
    if s.contiguity.workers < 0:
        raise ScenarioError("[contiguity] workers must be 0 (auto) or at least 1")
    pb = s.contiguity.priority_block_mu
    if pb is not None and pb < s.contiguity.min_block_mu:
        raise ScenarioError("[contiguity] priority_block_mu must be >= min_block_mu")


def check_townships(s: Scenario, townships: Iterable[str]) -> None:
    """Every per-township table must name townships of the instance: a misspelt name would bind
    nothing and be reported as met. The error names the closest names the instance has."""
    known = sorted(set(map(str, townships)))
    for where, table in (("[targets] township_reduction_mu", s.targets.township_reduction_mu),
                         ("[budget] township_wan", s.budget.township_wan)):
        for name in table:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
                hint = (f"did you mean {' or '.join(map(repr, close))}?" if close else
                        f"the instance has {len(known)}: {', '.join(known[:8])}"
                        + (", ..." if len(known) > 8 else ""))
                raise ScenarioError(f"scenario '{s.name}': {where}: {name!r} is not a township "
                                    f"of the instance ({hint})")


@dataclass
class DistrictTargets:
    """The concrete figures a scenario asks of one instance, after the district share."""

    central_reduction_mu: float
    total_reduction_mu: float
    priority_farmland_mu: float
    budget_wan: float
    share_note: str


def _meta_float(meta: dict[str, str], key: str) -> float | None:
    try:
        return float(meta[key])
    except (KeyError, ValueError):
        return None


CITY_TOTAL_MU = 16_410.0 * 1500.0  # Beijing's area, 16,410 km2


def district_targets(
    s: Scenario, meta: dict[str, str], study_area_mu: float | None = None,
    must_vacate_mu: float = 0.0,
) -> DistrictTargets:
    """Resolve "auto" figures to this instance's share of the citywide targets.

    Shares (documented in README): the central-city reduction by central-city area,
    the citywide net reduction by total area, the priority farmland by priority-zone area,
    all read from the instance's `meta` table (city_* and district_* reference areas).
    Without those references, "auto" means the instance is the whole city. The "auto" budget
    is wan_per_mu_of_target per mu of the larger of the reduction total and `must_vacate_mu`
    (the candidate area that must be vacated whatever the plan: `targets.instance_targets`).
    """
    t = s.targets
    ratios = {}
    for kind in ("central", "priority", "total"):
        city = _meta_float(meta, f"city_{kind}_mu")
        district = _meta_float(meta, f"district_{kind}_mu")
        if kind == "total" and district is None and study_area_mu is not None:
            city, district = city or CITY_TOTAL_MU, study_area_mu
        ratios[kind] = min(1.0, district / city) if city and district is not None else 1.0
    central = (SEED_CENTRAL_REDUCTION_MU * ratios["central"]
               if t.central_reduction_mu == "auto" else float(t.central_reduction_mu))
    total = (max(central, SEED_CITY_NET_REDUCTION_MU * ratios["total"])
             if t.total_reduction_mu == "auto" else float(t.total_reduction_mu))
    farmland = (SEED_PRIORITY_FARMLAND_MU * ratios["priority"]
                if t.priority_farmland_mu == "auto" else float(t.priority_farmland_mu))
    # "auto" pays for the larger of the reduction target and what must be vacated anyway
    budget = (s.budget.wan_per_mu_of_target * max(total, must_vacate_mu)
              if s.budget.total_wan == "auto" else float(s.budget.total_wan))
    note = ", ".join(f"{k} share {v:.4f}" for k, v in ratios.items())
    return DistrictTargets(central, total, farmland, budget, note)
