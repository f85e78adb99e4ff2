"""What-if computations behind the notebooks: source weights, denominators, published values.

The notebooks in ``notebooks/`` ask how much one technique's probability depends on choices a
threat modeller could make differently — how much each source counts (its power-prior weight),
what M-Trends' unpublished denominator is, which hyperprior is used — and where the
multi-technique catalogue departs from enterpriseLang's published values. Every answer comes
from the exact grid engine (:func:`attackprev.inference.exact.fit_exact`, well under 0.1 s a fit) or from a
saved posterior; the helpers here only loop over it and tabulate.

* the ways to combine sources: :func:`mean_of_percentages` (enterpriseLang's arithmetic),
  :func:`complete_pooling`, :func:`no_pooling`, :func:`hierarchical`;
* sweeps: :func:`weight_sweep`, :func:`weight_grid`, :func:`denominator_sweep`;
* :func:`bisect` to solve for the weight that gives a target value;
* :func:`leave_one_out` and :func:`mcmc_check` (MCMC against the exact answer);
* :func:`catalogue_comparison`: published value against the catalogue posterior, with the
  gap split into the part due to which figures are used and the part due to the model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attackprev.config import EXCLUDED_CSV, PROJ_ROOT
from attackprev.evidence.denominators import consistent_count
from attackprev.evidence.tables import Evidence, read_table
from attackprev.inference.exact import ExactPosterior, fit_exact
from attackprev.inference.summaries import jeffreys_interval
from attackprev.model.priors import Prior

#: Set to 1 to run the notebooks quickly (small MCMC runs, coarse sweeps), as the tests do.
FAST_ENV = "ATTACKPREV_NOTEBOOK_FAST"


def fast_mode() -> bool:
    """Whether :data:`FAST_ENV` asks for a quick run."""
    return os.environ.get(FAST_ENV, "").strip().lower() not in ("", "0", "false", "no")


def repo_root() -> Path:
    """The repository folder, wherever the caller runs."""
    return PROJ_ROOT


# ------------------------------------------------------------------------ ways to combine
@dataclass(frozen=True)
class Estimate:
    """A rate and, when the method gives one, its 94 % interval."""

    method: str
    mean: float
    low: float | None = None
    high: float | None = None

    def as_row(self) -> dict:
        """Plain data for a table."""
        return {"method": self.method, "mean": self.mean, "low": self.low, "high": self.high}


def mean_of_percentages(rates: Iterable[float]) -> float:
    """enterpriseLang's arithmetic: the plain mean of the sources' rates, whatever their sizes."""
    return float(np.mean(list(rates)))


def pooled_rate(successes: Sequence[float], trials: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """Σ w y / Σ w n: every case counted as one draw from a single rate."""
    y, n = np.asarray(successes, float), np.asarray(trials, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    return float(np.sum(w * y) / np.sum(w * n))


def complete_pooling(
    successes: Sequence[float], trials: Sequence[float], weights: Sequence[float] | None = None
) -> Estimate:
    """One binomial for all sources: the pooled rate and the Jeffreys interval of the pooled counts."""
    y, n = np.asarray(successes, float), np.asarray(trials, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    lo, hi = jeffreys_interval(float(np.sum(w * y)), float(np.sum(w * n)))
    return Estimate("complete pooling (one binomial)", pooled_rate(y, n, w), lo, hi)


def no_pooling(successes: Sequence[int], trials: Sequence[int], sources: Sequence[str]) -> list[Estimate]:
    """Each source alone: y/n with its Jeffreys interval."""
    out = []
    for s, y, n in zip(sources, successes, trials, strict=True):
        lo, hi = jeffreys_interval(int(y), int(n))
        out.append(Estimate(f"no pooling: {s} alone", y / n, lo, hi))
    return out


def hierarchical(exact: ExactPosterior, method: str = "hierarchical (exact)") -> Estimate:
    """Posterior mean and 94 % HDI of μ from an exact fit."""
    return Estimate(method, exact.mu.mean, *exact.mu.hdi_94)


# ------------------------------------------------------------------------ sweeps
def _row(exact: ExactPosterior, point: float | None) -> dict:
    row = {
        "mean": exact.mu.mean,
        "median": exact.mu.median,
        "hdi_low": exact.mu.hdi_94[0],
        "hdi_high": exact.mu.hdi_94[1],
    }
    if point is not None:
        row["prob_greater"] = exact.compare(point)["prob_greater"]
    return row


def weight_sweep(
    successes: Sequence[float],
    trials: Sequence[float],
    prior: Prior,
    source: int,
    grid: Iterable[float],
    weights: Sequence[float] | None = None,
    point: float | None = None,
    resolution: int = 256,
) -> list[dict]:
    """μ as one source's weight runs over ``grid``, the other weights held at ``weights`` (default 1).

    Returns one row per weight: ``weight``, ``mean``, ``median``, ``hdi_low``, ``hdi_high`` and,
    when ``point`` is given, ``prob_greater`` = P(μ > point).
    """
    base = np.ones(len(successes)) if weights is None else np.asarray(weights, float)
    rows = []
    for w in grid:
        ws = base.copy()
        ws[source] = w
        exact = fit_exact(successes, trials, prior, weights=ws, resolution=resolution)
        rows.append({"weight": float(w)} | _row(exact, point))
    return rows


def weight_grid(
    successes: Sequence[float],
    trials: Sequence[float],
    prior: Prior,
    grid: Sequence[float],
    resolution: int = 128,
) -> np.ndarray:
    """Posterior mean of μ for every pair of weights of a two-source technique.

    Returns an array ``m`` with ``m[i, j]`` the mean when source 0 has weight ``grid[i]`` and
    source 1 weight ``grid[j]`` (nan where both are 0: nothing is left to fit).
    """
    if len(successes) != 2:
        raise ValueError("weight_grid needs exactly two sources")
    out = np.full((len(grid), len(grid)), np.nan)
    for i, a in enumerate(grid):
        for j, b in enumerate(grid):
            if a > 0 or b > 0:
                out[i, j] = fit_exact(successes, trials, prior, weights=[a, b], resolution=resolution).mu.mean
    return out


def count_for_denominator(percent: float, trials: int, decimals: int) -> tuple[int, str]:
    """The count a published percentage stands for if the source had ``trials`` cases.

    Returns ``(k, how)``: the k with round(100 k / trials, decimals) == percent when one exists
    (``how = "consistent"``); otherwise the nearest count, round(percent × trials / 100)
    (``how = "nearest"``), whose percentage then differs from the published one.
    """
    k = consistent_count(percent, trials, decimals)
    if k is not None:
        return k, "consistent"
    return round(percent * trials / 100.0), "nearest"


def denominator_sweep(
    successes: Sequence[float],
    trials: Sequence[float],
    prior: Prior,
    source: int,
    percent: float,
    denominators: Iterable[float],
    decimals: int | None = 2,
    point: float | None = None,
    resolution: int = 256,
) -> list[dict]:
    """μ when source ``source``'s percentage is re-expressed out of each denominator.

    With ``decimals`` given, the count is an integer (:func:`count_for_denominator`); with
    ``decimals=None`` it is the fractional count percent × n / 100, which holds the rate at
    exactly the published percentage (a smooth curve for plots).
    """
    rows = []
    for d in denominators:
        y = np.asarray(successes, float).copy()
        n = np.asarray(trials, float).copy()
        if decimals is None:
            k, how = percent * d / 100.0, "fractional"
        else:
            k, how = count_for_denominator(percent, int(d), decimals)
        y[source], n[source] = k, d
        exact = fit_exact(y, n, prior, resolution=resolution)
        rows.append({"trials": d, "successes": k, "how": how, "rate": k / d} | _row(exact, point))
    return rows


# ------------------------------------------------------------------------ solving for a weight
def bisect(
    fn: Callable[[float], float],
    target: float,
    lo: float = 0.0,
    hi: float = 1.0,
    tol: float = 1e-6,
    max_iter: int = 100,
) -> float | None:
    """The x in [lo, hi] with fn(x) = target, by bisection; ``None`` when fn(lo) − target and
    fn(hi) − target have the same sign (no crossing in the interval)."""
    f_lo, f_hi = fn(lo) - target, fn(hi) - target
    if f_lo == 0:
        return lo
    if f_hi == 0:
        return hi
    if np.sign(f_lo) == np.sign(f_hi):
        return None
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        f_mid = fn(mid) - target
        if f_mid == 0 or hi - lo < tol:
            return mid
        if np.sign(f_mid) == np.sign(f_lo):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# ------------------------------------------------------------------------ leave one out
def leave_one_out(
    successes: Sequence[float],
    trials: Sequence[float],
    sources: Sequence[str],
    prior: Prior,
    point: float | None = None,
) -> list[dict]:
    """μ with each source dropped in turn (its weight set to 0), beside the fit with all of them."""
    full = fit_exact(successes, trials, prior, sources=sources)
    rows = [{"left_out": "(none)"} | _row(full, point)]
    for i, s in enumerate(sources):
        w = np.ones(len(sources))
        w[i] = 0.0
        rows.append({"left_out": s} | _row(fit_exact(successes, trials, prior, sources=sources, weights=w), point))
    return rows


# ------------------------------------------------------------------------ MCMC against exact
def mcmc_check(tree, exact: ExactPosterior) -> dict:
    """MCMC's μ against the exact posterior: means, HDIs, Monte Carlo error and diagnostics."""
    import arviz as az

    from attackprev.inference.diagnostics import diagnose
    from attackprev.inference.summaries import hdi

    mu = tree["posterior"]["mu"]
    draws = mu.values.ravel()
    mcse = float(az.mcse(mu.values))
    diag = diagnose(tree, min_ess_bulk=0)
    gap = abs(float(draws.mean()) - exact.mu.mean)
    return {
        "mcmc_mean": float(draws.mean()),
        "mcmc_hdi": hdi(draws),
        "exact_mean": exact.mu.mean,
        "exact_hdi": exact.mu.hdi_94,
        "mcse": mcse,
        "gap_in_mcse": gap / mcse,
        "ess_bulk": float(az.ess(mu.values, method="bulk")),
        "r_hat": float(az.rhat(mu.values)),
        "divergences": diag.divergences,
        "chains": diag.chains,
        "draws": diag.draws,
    }


# ------------------------------------------------------------------------ the catalogue
def excluded_figures(technique_id: str, path: Path = EXCLUDED_CSV) -> list[dict]:
    """Figures quoted in a technique's enterpriseLang note that the model leaves out, with the reason."""
    rows, _ = read_table(path, ["technique_id", "reason"])
    return [r for _, r in rows if r["technique_id"] == technique_id]


def catalogue_comparison(tree, evidence: Evidence) -> list[dict]:
    """The multi-technique posterior against enterpriseLang's published value, technique by technique.

    For each technique the gap log(posterior mean / published) is split in two:

    * ``evidence_part`` = log(mean of the modelled figures / published): what the published
      arithmetic does with figures the model does not use (or uses differently);
    * ``model_part`` = log(posterior mean / mean of the modelled figures): what the model does
      with the same figures (partial pooling toward the catalogue, weighting by size,
      uncertainty when sources disagree).

    Parameters
    ----------
    tree
        The catalogue posterior (``xarray.DataTree`` with ``posterior/mu[technique]``).
    evidence
        The evidence the catalogue was fitted to.

    Returns
    -------
    list of dict, largest |log ratio| first; techniques whose published result has no
    Bernoulli probability get ``published = None`` and come last.
    """
    from attackprev.evidence.attack import attack_table
    from attackprev.evidence.enterpriselang import note_for
    from attackprev.inference.summaries import hdi

    table = attack_table()
    post = tree["posterior"]
    rows = []
    for t in post["technique"].values.tolist():
        obs = evidence.for_technique(t)
        mu = post["mu"].sel(technique=t).values.ravel().astype(float)
        kappa = post["kappa"].sel(technique=t).values.ravel().astype(float)
        note = note_for(t, obs[0].note_path)
        tech = table.get(t)
        published = note.published_p if note else None
        figures = [o.percent / 100.0 if o.percent is not None else o.rate for o in obs]
        modelled = float(np.mean(figures))
        mean = float(mu.mean())
        lo, hi = hdi(mu)
        rates = [o.rate for o in obs]
        row = {
            "technique_id": t,
            "name": tech.display_name if tech else (note.technique_name if note else ""),
            "sources": len(obs),
            "evidence": "; ".join(f"{o.source_id} {o.successes}/{o.trials}" for o in obs),
            "rates": dict(zip([o.source_id for o in obs], rates, strict=True)),
            "successes": sum(o.successes for o in obs),
            "published_result": note.published_result if note else "",
            "published_arithmetic": note.published_arithmetic if note else "",
            "published": published,
            "modelled_figures_mean": modelled,
            "pooled_rate": pooled_rate([o.successes for o in obs], [o.trials for o in obs]),
            "mean": mean,
            "hdi_low": lo,
            "hdi_high": hi,
            "kappa_median": float(np.median(kappa)),
            "source_ratio": max(rates) / min(rates) if min(rates) > 0 else math.inf,
            "excluded": len(excluded_figures(t)),
            "log_ratio": None,
            "evidence_part": None,
            "model_part": math.log(mean / modelled) if modelled > 0 else None,
            "inside_hdi": None,
        }
        if published:
            row["log_ratio"] = math.log(mean / published)
            row["evidence_part"] = math.log(modelled / published) if modelled > 0 else None
            row["inside_hdi"] = bool(lo <= published <= hi)
        rows.append(row)
    rows.sort(key=lambda r: (r["log_ratio"] is None, -abs(r["log_ratio"] or 0.0)))
    for r in rows:
        r["reason"] = disagreement_reason(r)
    return rows


def disagreement_reason(row: dict, tolerance: float = math.log(1.1)) -> str:
    """Which part of the gap between published value and posterior mean dominates, in words.

    * ``"agrees"``: both parts of the gap are under 10 %;
    * ``"other figures"``: the published value averages figures the model does not use
      (|evidence_part| is the larger part);
    otherwise the model's part is larger, and it is

    * ``"shrinkage"`` when the posterior mean lies more than 10 % outside the range of the
      technique's own source rates (the catalogue pulls it toward the typical technique);
    * ``"sources disagree"`` when it lies within that range and the sources' rates differ by
      more than a factor of 3;
    * ``"pooling"`` otherwise (agreeing sources combined by size rather than averaged).
    """
    ev, mo = row.get("evidence_part"), row.get("model_part")
    if ev is None or mo is None:
        return "no published probability"
    if abs(ev) < tolerance and abs(mo) < tolerance:
        return "agrees"
    if abs(ev) >= abs(mo):
        return "other figures"
    rates = list(row["rates"].values())
    factor = math.exp(tolerance)
    if row["mean"] > factor * max(rates) or row["mean"] < min(rates) / factor:
        return "shrinkage"
    if row["source_ratio"] > 3:
        return "sources disagree"
    return "pooling"


# ------------------------------------------------------------------------ presentation
def interval(low: float | None, high: float | None, digits: int = 4) -> str:
    """``[low, high]`` with ``digits`` decimals, or an en dash when there is no interval."""
    if low is None or high is None:
        return "–"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def markdown_table(rows: Sequence[dict], columns: dict[str, Callable[[dict], str]]) -> str:
    """A Markdown table: one row per dict, one column per (header, function of the row → text)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(f(r)) for f in columns.values()) + " |" for r in rows]
    return "\n".join(lines)
