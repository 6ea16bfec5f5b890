"""The time-expanded model of the five-year schedule (`[phasing]`, see `schedule.py`).

Formulation: cumulative. Column f[i, k] = 1 when plot i is farmland *by the end of* year k
(g likewise for forest), with f[i, k] <= f[i, k+1]. The year of a plot is the first k with
f + g = 1. Why cumulative and not one binary per plot x action x year (y = x_k - x_{k-1}, the
same LP bound, a unimodular change of variables):
- what is stocked is cumulative: the end-of-period targets read the last year's columns
  unchanged, milestones are cumulative rows, and the block rule at the end of year k is the
  single-period rule applied to the year-k columns, so the separators of `optimizer/blocks/`
  are reused on each year's column map with sparse cuts (in the per-year form a year-k cut
  would carry k times as many entries);
- "at most one year per plot" is implied: f[:, k] + g[:, k] <= f[:, T] + g[:, T] <= 1.

Layout: the last year's f/g are the base model's first 2n columns (so `PlanModel.actions` is the
end state, and every base row, compactness term and elastic shortfall is the single-period one);
the earlier years' f/g follow, 2n columns per year. With one year nothing is added: the model is
the single-period model exactly.

Per-year rows are `YearFamily`s: a `TargetFamily` over all plots evaluated on the plots vacated
by the end of its year (cumulative) or in its year only (annual), so the checker evaluates the
same definitions as the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from instances.instance import Instance
from optimizer.model.build import PlanModel, build_model
from optimizer.model.scenario import DistrictTargets, Scenario
from optimizer.model.targets import PlotRules, TargetFamily
from solvers.model import ArrayModel

BUDGET_TOL = 1e-9  # relative: an annual budget row equal to the total budget row is dropped


@dataclass
class YearFamily:
    year_index: int  # 0 = first year
    annual: bool  # True: on the plots vacated in this year; False: vacated by its end
    family: TargetFamily


@dataclass
class PhasedPlanModel(PlanModel):
    years: list[int] = field(default_factory=list)
    year_cols: list[np.ndarray] = field(default_factory=list)  # per year: base f/g col -> col
    year_families: list[YearFamily] = field(default_factory=list)
    year_rows: list[slice] = field(default_factory=list)  # rows of each year family
    illegal_index: int = 0

    def schedule(self, x: np.ndarray, num_plots: int) -> np.ndarray:
        """Per plot: the calendar year it is vacated (0 where kept)."""
        nc = len(self.candidates)
        done = np.stack([x[m[:nc]] + x[m[nc:]] > 0.5 for m in self.year_cols])  # years x nc
        first = np.where(done.any(axis=0), done.argmax(axis=0), -1)
        out = np.zeros(num_plots, dtype=np.int32)
        out[self.candidates] = np.where(first >= 0, np.asarray(self.years)[first], 0)
        return out

    def full_vector(self, actions: np.ndarray, years: np.ndarray) -> np.ndarray:
        """Every year's f/g columns of a scheduled plan (other columns 0)."""
        x = np.zeros(self.model.num_cols)
        a, y = actions[self.candidates], years[self.candidates]
        for year, m in zip(self.years, self.year_cols, strict=True):
            done = (y > 0) & (y <= year)
            x[m] = np.concatenate([done & (a == 1), done & (a == 2)]).astype(float)
        return x


def _row(w: np.ndarray) -> sp.csr_matrix:
    return sp.csr_matrix(w.reshape(1, -1))


def _grouped(w: np.ndarray, groups: np.ndarray, names: list[str]) -> sp.csr_matrix:
    index = {n: k for k, n in enumerate(names)}
    codes = np.array([index.get(g, -1) for g in groups])
    keep = codes >= 0
    return sp.csr_matrix((w[keep], (codes[keep], np.flatnonzero(keep))),
                         shape=(len(names), len(w)))


def year_families(inst: Instance, s: Scenario, r: PlotRules, dt: DistrictTargets
                  ) -> list[YearFamily]:
    """Milestones, annual budgets and township capacities, one family per year (rows that the
    end-of-period rows already imply are left out, so one year adds none)."""
    ph = s.phasing
    years = ph.years
    T = len(years)
    a = r.area
    out: list[YearFamily] = []
    if dt.total_reduction_mu > 0:
        for k, share in enumerate(ph.milestone_shares()[:-1]):  # last: the total target itself
            out.append(YearFamily(k, False, TargetFamily(
                "milestone", "cumulative reduction milestone", "mu", [str(years[k])],
                _row(a), _row(a), np.array([share * dt.total_reduction_mu]), ">=")))
    budgets = ph.budgets(dt.budget_wan)
    cf, cg = _row(r.cost_farmland), _row(r.cost_forest)
    spent = np.cumsum(budgets)
    for k in range(T):
        if ph.carry_over:
            if k == T - 1 and spent[k] >= dt.budget_wan * (1 - BUDGET_TOL):
                continue
            fam = TargetFamily("annual_budget", "spending so far within the budgets so far",
                               "万元", [str(years[k])], cf, cg, np.array([spent[k]]), "<=")
            out.append(YearFamily(k, False, fam))
        elif T > 1 or budgets[k] < dt.budget_wan * (1 - BUDGET_TOL):
            fam = TargetFamily("annual_budget", "spending of the year within its budget", "万元",
                               [str(years[k])], cf, cg, np.array([budgets[k]]), "<=")
            out.append(YearFamily(k, True, fam))
    towns = inst.plots["township"].astype(str).to_numpy()
    for key, weight, unit in (("township_capacity_mu", a, "mu"),
                              ("township_capacity_plots", np.ones_like(a), "plots")):
        cap = getattr(ph, key)
        if cap is None:
            continue
        names = sorted(set(towns)) if not isinstance(cap, dict) else list(cap)
        rhs = np.array([cap[n] if isinstance(cap, dict) else cap for n in names], dtype=float)
        W = _grouped(weight, towns, names)
        for k in range(T):
            out.append(YearFamily(k, True, TargetFamily(
                key, "township capacity of the year", unit, [f"{n} {years[k]}" for n in names],
                W, W, rhs, "<=")))
    return out


def build_phased(inst: Instance, s: Scenario) -> PhasedPlanModel:
    base = build_model(inst, s)
    ph = s.phasing
    years = ph.years
    T, nc = len(years), len(base.candidates)
    k2 = 2 * nc
    cand, r = base.candidates, base.rules
    m0 = base.model
    year_cols = [m0.num_cols + k2 * k + np.arange(k2) for k in range(T - 1)] + [np.arange(k2)]
    n = m0.num_cols + k2 * (T - 1)
    # objective: a plot vacated in year k costs c_k = w_k lost output + d_k cost; in cumulative
    # columns sum_k c_k (x_k - x_{k-1}) = sum_{k<T} (c_k - c_{k+1}) x_k + c_T x_T
    w_out, d = ph.output_weights(s.objective.output_years), ph.cost_weights()
    lost = r.lost_output[cand]
    cw = s.objective.cost_weight
    ck = [np.concatenate([w_out[k] * lost + d[k] * cw * r.cost_farmland[cand],
                          w_out[k] * lost + d[k] * cw * r.cost_forest[cand]]) for k in range(T)]
    c = np.zeros(n)
    c[: m0.num_cols] = m0.c
    c[:k2] += ck[T - 1] - _single_cost(base, s)  # the last year's weights (0 for one year)
    for k in range(T - 1):
        c[year_cols[k]] = ck[k] - ck[k + 1]
    A0 = sp.hstack([m0.A, sp.csr_matrix((m0.num_rows, n - m0.num_cols))], format="csr")
    blocks, lower, upper = [A0], [m0.row_lower], [m0.row_upper]
    row_blocks = dict(m0.row_blocks)
    rows = m0.num_rows

    def add(A: sp.csr_matrix, lo: np.ndarray, hi: np.ndarray, name: str) -> slice:
        nonlocal rows
        blocks.append(sp.csr_matrix(A))
        lower.append(lo)
        upper.append(hi)
        sl = slice(rows, rows + A.shape[0])
        row_blocks[name] = sl
        rows += A.shape[0]
        return sl

    def cols(k: int, W: sp.csr_matrix) -> sp.csr_matrix:
        """W (rows x k2) placed on year k's columns."""
        W = sp.coo_matrix(W)
        return sp.csr_matrix((W.data, (W.row, year_cols[k][W.col])), shape=(W.shape[0], n))

    if T > 1:
        eye = sp.identity(k2, format="csr")
        mono = sp.vstack([cols(k, eye) - cols(k + 1, eye) for k in range(T - 1)], format="csr")
        add(mono, np.full(mono.shape[0], -np.inf), np.zeros(mono.shape[0]), "year_order")
    elastic_rows: list[tuple[slice, str]] = []  # per-year rows that elastic mode may relax
    must = np.flatnonzero(r.must_vacate[cand] & (r.farmland_ok | r.forest_ok)[cand])
    yi = ph.illegal_year_index()
    if len(must) and yi < T - 1:
        pick = sp.csr_matrix((np.ones(2 * len(must)),
                              (np.r_[np.arange(len(must)), np.arange(len(must))],
                               np.r_[must, must + nc])), shape=(len(must), k2))
        # "vacated by year Y if vacated at all": the end-state row forces it (and elastic mode may
        # relax that for a plot the block rule locks, as in the single-period model)
        A = sp.vstack([cols(k, pick) - cols(T - 1, pick) for k in range(yi, T - 1)],
                      format="csr")
        add(A, np.zeros(A.shape[0]), np.full(A.shape[0], np.inf), "illegal_by_year")
    fams = year_families(inst, s, base.rules, base.targets)
    year_rows = []
    for yf in fams:
        f = yf.family
        W = sp.hstack([f.Wf[:, cand], f.Wg[:, cand]], format="csr")
        A = cols(yf.year_index, W)
        if yf.annual and yf.year_index > 0:
            A = A - cols(yf.year_index - 1, W)
        hi = f.rhs.astype(float) - f.offset
        lo, hi = (hi, np.full(len(hi), np.inf)) if f.sense == ">=" else (
            np.full(len(hi), -np.inf), hi)
        year_rows.append(add(A, lo, hi, f"{f.key}_{years[yf.year_index]}"))
        elastic_rows.append((year_rows[-1], f.sense))
    model = ArrayModel(
        c=c, A=sp.vstack(blocks, format="csr"),
        row_lower=np.concatenate(lower), row_upper=np.concatenate(upper),
        col_lower=np.zeros(n),
        col_upper=np.concatenate([m0.col_upper] + [m0.col_upper[:k2]] * (T - 1)),
        integrality=np.concatenate([m0.integrality, np.ones(k2 * (T - 1), dtype=bool)]),
        offset=m0.offset,
        col_blocks={**m0.col_blocks, **({"earlier_years": slice(m0.num_cols, n)} if T > 1
                                        else {})},
        row_blocks=row_blocks,
    )
    if s.elastic.enabled and elastic_rows:
        model = _year_shortfalls(model, elastic_rows, s.elastic.penalty)
    model.validate()
    return PhasedPlanModel(model, base.candidates, base.rules, base.families, base.targets,
                           base.family_rows, base.shortfall_cols, years, year_cols, fams,
                           year_rows, yi)


def _single_cost(pm: PlanModel, s: Scenario) -> np.ndarray:
    """The single-period objective of the base f/g columns (output_years x lost + cost)."""
    cand, r = pm.candidates, pm.rules
    lost = s.objective.output_years * r.lost_output[cand]
    cw = s.objective.cost_weight
    return np.concatenate([lost + cw * r.cost_farmland[cand], lost + cw * r.cost_forest[cand]])


def _year_shortfalls(model: ArrayModel, rows: list[tuple[slice, str]],
                     penalty: float) -> ArrayModel:
    """Elastic mode: a shortfall column for every per-year row (milestones, annual budgets,
    capacities), priced like the others."""
    r = np.concatenate([np.arange(sl.start, sl.stop) for sl, _ in rows])
    v = np.concatenate([np.full(sl.stop - sl.start, 1.0 if sense == ">=" else -1.0)
                        for sl, sense in rows])
    k = len(r)
    A = sp.csr_matrix((v, (r, np.arange(k))), shape=(model.num_rows, k))
    return model.add_cols(np.full(k, penalty), np.zeros(k), np.full(k, np.inf),
                          np.zeros(k, dtype=bool), block="year_shortfall", A_cols=A)
