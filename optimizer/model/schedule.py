"""The `[phasing]` scenario section: the five-year programme (五年计划、三年部署、两年扫尾).

Off by default: the single-period model is the one-year case. Settings, their one-line
validation, and the per-year figures derived from them (annual budgets, milestone shares, the
objective weights of a plot vacated in each year). Imports nothing of the project.

Rules (documented in the README):
- annual budget "even": the total budget split evenly over the years. With `carry_over = true`
  (default) what a year does not spend stays available in later years (资金平衡): spending by the
  end of year t is at most the budgets of years 1..t; a year can never spend next year's money.
  With `carry_over = false` each year's spending is at most that year's budget.
- milestones "auto" (the seed rhythm 三年部署、两年扫尾): the deployment years, the first
  ceil(0.6 T), reach DEPLOYMENT_SHARE (75%) of the total reduction target in even steps; the
  wrap-up years reach 100% in even steps. For 2021-2025: 25%, 50%, 75%, 87.5%, 100%.
- lost output counts from the year of vacating: a plot vacated in year k (k = 0 the first year)
  forgoes its output for the years k .. output_years - 1 of the period (each year discounted
  by (1 + r)^-k), so with one year the weight is output_years, as in the single-period model.
  Costs are paid in the year of vacating, discounted the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

DEPLOYMENT_SHARE = 0.75  # cumulative share of the reduction at the end of the deployment years
DEPLOYMENT_YEARS = 0.6  # share of the years that are deployment (3 of 5)
METHODS = ("monolithic", "two_stage")


class PhasingError(ValueError):
    """A `[phasing]` key with a wrong type or an impossible value (one line)."""


@dataclass
class Phasing:
    enabled: bool = False
    first_year: int = 2021
    last_year: int = 2025
    annual_budget_wan: list[float] | str = "even"  # "even" or one figure per year (万元)
    carry_over: bool = True  # unspent budget of a year stays available later
    milestones: list[float] | str = "auto"  # cumulative share of the reduction target by year end
    township_capacity_mu: float | dict[str, float] | None = None  # per township and year
    township_capacity_plots: float | dict[str, float] | None = None
    illegal_by_year: int | None = None  # illegal buildings vacated by this year (None: year one)
    discount_rate: float = 0.0  # present value of costs and lost output; 0 = undiscounted
    method: str = "monolithic"  # monolithic | two_stage (see optimizer/plan/phased.py)

    @property
    def years(self) -> list[int]:
        return list(range(self.first_year, self.last_year + 1))

    def budgets(self, total_wan: float) -> list[float]:
        n = len(self.years)
        if self.annual_budget_wan == "even":
            return [total_wan / n] * n
        return [float(b) for b in self.annual_budget_wan]

    def milestone_shares(self) -> list[float]:
        if self.milestones != "auto":
            return [float(m) for m in self.milestones]
        return auto_milestones(len(self.years))

    def illegal_year_index(self) -> int:
        year = self.first_year if self.illegal_by_year is None else self.illegal_by_year
        return year - self.first_year

    def cost_weights(self) -> list[float]:
        r = self.discount_rate
        return [(1.0 + r) ** -k for k in range(len(self.years))]

    def output_weights(self, output_years: float) -> list[float]:
        """Years of lost output (present value) of a plot vacated in each year."""
        r = self.discount_rate
        horizon = math.ceil(output_years)
        return [sum((1.0 + r) ** -s * min(1.0, output_years - s) for s in range(k, horizon))
                for k in range(len(self.years))]


def auto_milestones(n: int) -> list[float]:
    deploy = min(n, math.ceil(DEPLOYMENT_YEARS * n))
    wrap = n - deploy
    top = DEPLOYMENT_SHARE if wrap else 1.0
    shares = [top * (k + 1) / deploy for k in range(deploy)]
    shares += [top + (1.0 - top) * (k + 1) / wrap for k in range(wrap)]
    return shares


def _int(key: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise PhasingError(f"[phasing] {key}: expected a year (integer), got {v!r}")
    return v


def _num(key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise PhasingError(f"[phasing] {key}: expected a number, got {v!r}")
    if not math.isfinite(v) or v < 0:
        raise PhasingError(f"[phasing] {key} = {v}: must be a finite number >= 0")
    return float(v)


def _list(key: str, v: Any, word: str) -> list[float] | str:
    if v == word:
        return word
    if not isinstance(v, list) or not v:
        raise PhasingError(f"[phasing] {key}: expected \"{word}\" or a list with one number "
                           f"per year, got {v!r}")
    return [_num(f"{key}[{k}]", x) for k, x in enumerate(v)]


def _capacity(key: str, v: Any) -> float | dict[str, float]:
    if isinstance(v, dict):
        return {str(k): _num(f"{key}.{k}", x) for k, x in v.items()}
    return _num(key, v)


_OPTIONAL = ("township_capacity_mu", "township_capacity_plots", "illegal_by_year")


def parse_phasing(data: Any) -> Phasing:
    """Build and validate `[phasing]` from parsed TOML; unknown keys are errors."""
    if not isinstance(data, dict):
        raise PhasingError("[phasing] must be a table")
    p = Phasing()
    valid = list(p.__dataclass_fields__)
    for key, v in data.items():
        if key not in valid:
            raise PhasingError(f"unknown key [phasing] {key} (valid: {', '.join(valid)})")
        if v is None and key in _OPTIONAL:  # Scenario.to_dict() round trip
            setattr(p, key, None)
            continue
        if key in ("enabled", "carry_over"):
            if not isinstance(v, bool):
                raise PhasingError(f"[phasing] {key}: expected true or false, got {v!r}")
            setattr(p, key, v)
        elif key in ("first_year", "last_year", "illegal_by_year"):
            setattr(p, key, _int(key, v))
        elif key == "annual_budget_wan":
            p.annual_budget_wan = _list(key, v, "even")
        elif key == "milestones":
            p.milestones = _list(key, v, "auto")
        elif key in ("township_capacity_mu", "township_capacity_plots"):
            setattr(p, key, _capacity(key, v))
        elif key == "method":
            if v not in METHODS:
                raise PhasingError(f"[phasing] method: {v!r} is not one of {', '.join(METHODS)}")
            p.method = v
        else:
            p.discount_rate = _num(key, v)
    validate_phasing(p)
    return p


def validate_phasing(p: Phasing) -> None:
    if not 1900 <= p.first_year <= p.last_year <= 2200:
        raise PhasingError(f"[phasing] first_year = {p.first_year}, last_year = {p.last_year}: "
                           "need 1900 <= first_year <= last_year <= 2200")
    n = len(p.years)
    for key in ("annual_budget_wan", "milestones"):
        v = getattr(p, key)
        if isinstance(v, list) and len(v) != n:
            raise PhasingError(f"[phasing] {key}: {len(v)} value(s) for {n} year(s) "
                               f"{p.first_year}-{p.last_year}")
    if isinstance(p.milestones, list):
        m = p.milestones
        if any(x > 1.0 for x in m) or any(b < a for a, b in zip(m, m[1:], strict=False)):
            raise PhasingError(f"[phasing] milestones = {m}: cumulative shares must lie in "
                               "[0, 1] and never decrease")
    y = p.illegal_by_year
    if y is not None and not p.first_year <= y <= p.last_year:
        raise PhasingError(f"[phasing] illegal_by_year = {y}: must lie in "
                           f"{p.first_year}-{p.last_year}")
    if p.discount_rate >= 1.0:
        raise PhasingError(f"[phasing] discount_rate = {p.discount_rate}: a rate, e.g. 0.03, "
                           "must be below 1")
