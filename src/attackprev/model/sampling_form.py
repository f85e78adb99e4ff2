"""Which of the multi-source model's hierarchical quantities are sampled centred, chosen from the data.

A hierarchical quantity x ~ Normal(μ, s) can be sampled as itself (centred) or as μ + s·z with
z ~ Normal(0, 1) (non-centred). The two are the same model; they differ in geometry. Centred is
the better form where the data pin x more tightly than its prior scale s does (data variance
v < s²), non-centred where they do not: there a centred x sits in a funnel with s, and the sampler
diverges when s is small (Betancourt & Girolami 2015; Papaspiliopoulos, Roberts & Sköld 2007).

The scales s (σ_f, s_a, τ) are unknown before the fit, so each is estimated here from the counts
by the method of moments (empirical logits, an additive technique + family fit, and their residuals
beyond binomial noise). The estimates only choose the form; they never enter the model, so the
posterior is the same whichever form is chosen, and the choice is a deterministic function of the
data (the same data give the same sampler and the same draws).

The simulation-based calibration found the need: prior draws of σ_f, s_a or τ near 0 (a family
that tracks the others exactly, techniques of nearly equal rates, years that do not differ), with
fixed forms, made 96 of 100 small-design fits diverge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class CountArrays(Protocol):
    """What the choice reads of :class:`attackprev.model.synthesis.SynthesisData`."""

    techniques: list[str]
    families: list[str]
    cells: list[tuple[str, str]]
    cell_idx: np.ndarray
    source_idx: np.ndarray
    source_family: np.ndarray
    successes: np.ndarray
    trials: np.ndarray

    def cell_family(self) -> np.ndarray: ...

    def cell_technique(self) -> np.ndarray: ...

    def multi_source_families(self) -> list[int]: ...


#: A cell (technique, family) whose logit the data measure with a variance at least this (sd 0.22,
#: below every family's departure scale σ_f on the full evidence) is sampled non-centred.
STRONG_LOGIT_VAR = 0.05
#: In a family of fewer cells than this (σ_f then rests on its prior and can be small), a cell is
#: sampled non-centred unless its logit's variance is below :data:`FEW_CELLS_LOGIT_VAR`.
FEW_CELLS = 30
FEW_CELLS_LOGIT_VAR = 0.03
#: A family needs at least this many informative cells for its σ_f to be estimated by moments.
MIN_CELLS_FOR_MOMENTS = 8
#: Only counts with at least this many successes and failures enter the moment estimates: below it
#: the empirical logit's variance formula is a poor approximation (a 0 of 172 is not a logit ± 1.4).
MIN_EVENTS = 3
#: Prior guess of a departure variance (σ_f = 1, the prior mean), for weighting the additive fit and
#: for a family whose σ_f cannot be estimated.
DEPARTURE_VAR = 1.0


@dataclass(frozen=True)
class SamplingForm:
    """The sampled form of :func:`attackprev.model.synthesis.build_synthesis_model`.

    Attributes
    ----------
    weak_cells
        Per cell: sampled non-centred (φ = centre + σ_f·u) rather than centred.
    loose_levels
        Per technique: its level c_t sampled non-centred (m + b̄ + s_a·z).
    noncentred_years
        Indices of the several-source families whose year shifts are sampled non-centred (τ·z).
    sigma_hat, level_sd_hat, tau_hat
        The moment estimates that chose the form, each lowered by about two standard errors (the
        smallest scale the data make plausible; NaN where a family has too few informative cells).
    """

    weak_cells: np.ndarray
    loose_levels: np.ndarray
    noncentred_years: tuple[int, ...]
    sigma_hat: np.ndarray
    level_sd_hat: float
    tau_hat: float


def _informative(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    return (k >= MIN_EVENTS) & (n - k >= MIN_EVENTS)


def _lower(variance: float, m: int) -> float:
    """A rough lower bound of a moment variance estimate from m terms: minus two standard errors,
    taking the estimate's sd as variance·√(2/m) (normal residuals); 0 when m ≤ 8."""
    return variance * max(0.0, 1.0 - 2.0 * np.sqrt(2.0 / m))


def _empirical_logit(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logit of (k + ½)/(n + 1) and its binomial variance 1/(k + ½) + 1/(n − k + ½)."""
    return np.log((k + 0.5) / (n - k + 0.5)), 1.0 / (k + 0.5) + 1.0 / (n - k + 0.5)


def _additive_fit(
    y: np.ndarray, w: np.ndarray, tech: np.ndarray, fam: np.ndarray, n_t: int, n_f: int, iterations: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares y ≈ α_t + β_f with β of the reference (index 0) fixed at 0 (backfitting)."""
    alpha, beta = np.zeros(n_t), np.zeros(n_f)
    w_t = np.bincount(tech, w, n_t)
    w_f = np.bincount(fam, w, n_f)
    for _ in range(iterations):
        alpha = np.bincount(tech, w * (y - beta[fam]), n_t) / w_t
        beta = np.bincount(fam, w * (y - alpha[tech]), n_f) / np.where(w_f > 0, w_f, 1.0)
        beta[0] = 0.0
    return alpha, beta


def _year_shifts(data: CountArrays, multi: list[int]) -> tuple[float, dict[int, float]]:
    """τ̂ and, per several-source family, the mean squared standard error of its years' shifts.

    A row's residual is its empirical logit less its cell's (rows of cells with one row say nothing
    of the year). A year's shift is the mean residual of its rows; its squared standard error is
    their variance over their number, so it holds the technique-by-year overdispersion too.
    """
    y_row, _ = _empirical_logit(data.successes.astype(float), data.trials.astype(float))
    k = np.bincount(data.cell_idx, data.successes, len(data.cells))
    n = np.bincount(data.cell_idx, data.trials, len(data.cells))
    y_cell, _ = _empirical_logit(k, n)
    rows_per_cell = np.bincount(data.cell_idx, minlength=len(data.cells))
    shifts, se2 = [], {}
    for f in multi:
        family_se2 = []
        for s in np.flatnonzero(data.source_family == f):
            rows = (data.source_idx == s) & (rows_per_cell[data.cell_idx] > 1)
            rows &= _informative(data.successes, data.trials)
            if rows.sum() < 2:
                continue
            resid = y_row[rows] - y_cell[data.cell_idx[rows]]
            shifts.append(resid.mean())
            family_se2.append(resid.var(ddof=1) / rows.sum())
        se2[f] = float(np.mean(family_se2)) if family_se2 else np.inf
    if len(shifts) < 2:
        return 0.0, se2
    finite = [v for v in se2.values() if np.isfinite(v)]
    tau2 = float(np.mean(np.square(shifts)) - np.mean(finite))
    return float(np.sqrt(_lower(max(tau2, 0.0), len(shifts)))), se2


def choose_form(data: CountArrays) -> SamplingForm:
    """The sampled form for these counts (see the module docstring).

    - A cell is non-centred when its logit's binomial variance v is at least :data:`STRONG_LOGIT_VAR`
      (or :data:`FEW_CELLS_LOGIT_VAR` in a family of fewer than :data:`FEW_CELLS` cells), or at least
      σ̂_f² (the family's departures are smaller than the cell's noise).
    - A technique's level is non-centred when the variance with which its cells pin it,
      1 / Σ 1/(v + σ̂_f²), is at least ŝ_a².
    - A family's year shifts are non-centred when their mean squared standard error is at least τ̂².
    """
    n_cells, n_t, n_f = len(data.cells), len(data.techniques), len(data.families)
    k = np.bincount(data.cell_idx, data.successes, n_cells)
    n = np.bincount(data.cell_idx, data.trials, n_cells)
    y, v = _empirical_logit(k, n)
    tech, fam = data.cell_technique(), data.cell_family()
    w = 1.0 / (v + DEPARTURE_VAR)
    alpha, beta = _additive_fit(y, w, tech, fam, n_t, n_f)
    leverage = w / np.bincount(tech, w, n_t)[tech]
    resid2 = (y - alpha[tech] - beta[fam]) ** 2 / np.maximum(1.0 - leverage, 0.05)
    informative = _informative(k, n)
    sigma_hat = np.full(n_f, np.nan)
    for f in np.flatnonzero(np.bincount(fam[informative], minlength=n_f) >= MIN_CELLS_FOR_MOMENTS):
        mine = informative & (fam == f)
        sigma_hat[f] = np.sqrt(_lower(max(float(np.mean(resid2[mine] - v[mine])), 0.0), int(mine.sum())))
    cells_per_family = np.bincount(fam, minlength=n_f)

    few = (cells_per_family < FEW_CELLS)[fam]
    sigma2_cell = np.where(np.isnan(sigma_hat), np.inf, sigma_hat**2)[fam]
    weak = (v >= STRONG_LOGIT_VAR) | (few & (v >= FEW_CELLS_LOGIT_VAR)) | (v >= sigma2_cell)

    sigma2_known = np.where(np.isnan(sigma_hat), DEPARTURE_VAR, sigma_hat**2)[fam]
    level_var = 1.0 / np.bincount(tech, 1.0 / (v + sigma2_known), n_t)
    level_sd_hat = float(np.sqrt(_lower(max(float(np.var(alpha) - np.mean(level_var)), 0.0), n_t)))
    loose = level_var >= level_sd_hat**2

    multi = data.multi_source_families()
    tau_hat, se2 = _year_shifts(data, multi)
    noncentred = tuple(f for f in multi if se2[f] >= tau_hat**2)
    return SamplingForm(weak, loose, noncentred, sigma_hat, level_sd_hat, tau_hat)
