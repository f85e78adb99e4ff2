"""One technique, end to end: evidence → posterior → the numbers a report states.

:func:`analyse_technique` fits the single-technique model (MCMC by default, or the exact
grid alone), checks the sampler against the exact posterior, runs the prior-sensitivity
table on the exact engine, and returns a :class:`TechniqueAnalysis` whose ``summary`` is the
plain-data result written to ``summary.json``. The Markdown report is rendered from that
summary alone (:mod:`attackprev.reporting.technique`), so every number it states comes from here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import scipy.stats

from attackprev.errors import InputError
from attackprev.evidence.tables import Evidence, Observation
from attackprev.inference.exact import HDI_PROB, ExactPosterior, fit_exact
from attackprev.inference.mcmc import SamplerSettings, diagnose, provenance, sample_technique
from attackprev.model.priors import PRIORS, Prior


@dataclass
class TechniqueAnalysis:
    """Everything produced for one technique."""

    summary: dict
    exact: ExactPosterior
    tree: object | None  # xarray.DataTree for MCMC runs
    headline: object | None = None  # attackprev.reporting.figures.Headline when the multi-technique fit is the headline
    figures: object | None = None  # attackprev.reporting.figure_workers.PendingFigures: figures being drawn elsewhere

    @property
    def passed(self) -> bool:
        """Whether the run passed its diagnostics."""
        return self.summary["diagnostics"]["passed"]


def jeffreys_interval(successes: int, trials: int, prob: float = HDI_PROB) -> tuple[float, float]:
    """Equal-tailed Jeffreys interval for a binomial rate (Brown, Cai & DasGupta 2001)."""
    tail = (1.0 - prob) / 2.0
    dist = scipy.stats.beta(successes + 0.5, trials - successes + 0.5)
    lo = 0.0 if successes == 0 else float(dist.ppf(tail))
    hi = 1.0 if successes == trials else float(dist.ppf(1.0 - tail))
    return lo, hi


def resolve_weights(weights: dict[str, float] | None, observations: list[Observation]) -> np.ndarray:
    """Per-source weights in data order, checked."""
    weights = dict(weights or {})
    for sid, w in weights.items():
        if not (math.isfinite(w) and 0.0 <= w <= 1.0):
            raise InputError(f"weight for {sid} is {w:g}; weights must be in [0, 1]")
    out = np.array([weights.get(o.source_id, 1.0) for o in observations], float)
    if not np.any(out > 0):
        raise InputError("every source has weight 0; at least one source must count")
    return out


def _evidence_rows(evidence: Evidence, observations: list[Observation], weights: np.ndarray) -> list[dict]:
    rows = []
    for o, w in zip(observations, weights, strict=True):
        src = evidence.sources.get(o.source_id)
        lo, hi = jeffreys_interval(o.successes, o.trials)
        rec = evidence.recoveries.get(o.source_id)
        rows.append(
            {
                "source_id": o.source_id,
                "citation": src.citation if src else "",
                "population": src.population if src else "",
                "reported_as": o.reported_as,
                "percent": o.percent,
                "successes": o.successes,
                "trials": o.trials,
                "trials_basis": o.trials_basis,
                "trials_note": rec.describe() if rec and o.trials_basis == "inferred" else "",
                "rate": o.rate,
                "interval_94": [lo, hi],
                "weight": float(w),
                "location": o.location,
            }
        )
    return rows


def _display_path(path: str) -> str:
    """A path relative to the working directory when it lies below it."""
    from pathlib import Path

    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _published(technique_id: str, observations: list[Observation]) -> dict:
    """enterpriseLang's published value and its arithmetic, recomputed from the data."""
    from attackprev.evidence.enterpriselang import note_for

    note = note_for(technique_id, observations[0].note_path)
    figures = [o.percent / 100.0 if o.percent is not None else o.rate for o in observations]
    naive = float(np.mean(figures))
    out = {
        "note_path": note.note_path if note else None,
        "published_result": note.published_result if note else None,
        "published_arithmetic": note.published_arithmetic if note else None,
        "published_p": note.published_p if note else None,
        "ttc_text": note.ttc_text if note else None,
        "figures": figures,
        "naive_mean": naive,
    }
    p = out["published_p"]
    out["reproduces"] = p is not None and abs(round(naive, 4) - p) < 5e-5 + 1e-12
    return out


def _ttc(technique_id: str, observations: list[Observation]) -> dict:
    from attackprev.evidence.enterpriselang import note_for

    note = note_for(technique_id, observations[0].note_path)
    if note is None:
        return {"kind": "degenerate", "value_days": 0, "time_factor": None, "basis": "no published TTC"}
    factor, remark = note.time_factor
    if factor is None:
        return {
            "kind": "degenerate",
            "value_days": 0,
            "time_factor": None,
            "basis": f"enterpriseLang note: {note.ttc_text}" if note.ttc_text else "published TTC is a lone Bernoulli",
            "remark": remark,
        }
    return {
        "kind": "published",
        "time_factor": factor,
        "basis": f"enterpriseLang note: {note.ttc_text}",
        "remark": remark,
    }


def _mcmc_rows(tree) -> dict[str, dict]:
    """mean, sd, median, 94 % HDI, ESS, R-hat, MCSE per quantity from the draws."""
    import arviz as az

    post = tree["posterior"]
    hdi = az.hdi(tree, prob=HDI_PROB).to_dataset()
    ess_b = az.ess(tree, method="bulk").to_dataset()
    ess_t = az.ess(tree, method="tail").to_dataset()
    rhat = az.rhat(tree).to_dataset()
    mcse = az.mcse(tree).to_dataset()
    rows = {}

    def row(var, sel=None):
        sel = sel or {}
        x = post[var].sel(sel).values.ravel()
        h = hdi[var].sel(sel)
        return {
            "mean": float(x.mean()),
            "sd": float(x.std(ddof=1)),
            "median": float(np.median(x)),
            "hdi_94": [float(h.sel(ci_bound="lower")), float(h.sel(ci_bound="upper"))],
            "ess_bulk": float(ess_b[var].sel(sel)),
            "ess_tail": float(ess_t[var].sel(sel)),
            "r_hat": float(rhat[var].sel(sel)),
            "mcse_mean": float(mcse[var].sel(sel)),
        }

    rows["mu"] = row("mu")
    rows["kappa"] = row("kappa")
    # κ is heavy-tailed: report the HDI of log κ, mapped back (as the exact engine does)
    log_hdi = hdi["log_kappa"]
    rows["kappa"]["hdi_94"] = [
        float(np.exp(log_hdi.sel(ci_bound="lower"))),
        float(np.exp(log_hdi.sel(ci_bound="upper"))),
    ]
    for s in post["source"].values:
        rows[f"theta[{s}]"] = row("theta", {"source": s})
    rows["theta_new"] = row("theta_new")
    return rows


def _exact_rows(exact: ExactPosterior) -> dict[str, dict]:
    rows = {"mu": exact.mu.to_dict(), "kappa": exact.kappa.to_dict()}
    for s, summ in exact.theta.items():
        rows[f"theta[{s}]"] = summ.to_dict()
    rows["theta_new"] = exact.theta_new.to_dict()
    return rows


def sensitivity_table(
    successes: np.ndarray, trials: np.ndarray, sources: list[str], weights: np.ndarray, point_estimate: float
) -> list[dict]:
    """μ under every prior the project offers, from the exact engine."""
    out = []
    for prior in PRIORS.values():
        ex = fit_exact(successes, trials, prior, sources=sources, weights=weights)
        out.append(
            {
                "prior": prior.name,
                "label": prior.label,
                "reference": prior.reference,
                "mean": ex.mu.mean,
                "median": ex.mu.median,
                "hdi_94": list(ex.mu.hdi_94),
                "prob_greater": ex.compare(point_estimate)["prob_greater"],
                "kappa_median": ex.kappa.median,
            }
        )
    return out


def analyse_technique(
    technique_id: str,
    evidence: Evidence,
    prior: Prior,
    settings: SamplerSettings | None = None,
    weights: dict[str, float] | None = None,
    engine: str = "mcmc",
    progress: bool = False,
    catalogue=None,
    workers=None,
) -> TechniqueAnalysis:
    """Fit one technique and compute every figure of its report.

    Parameters
    ----------
    technique_id
        ATT&CK ID as the evidence records it.
    evidence
        Loaded evidence.
    prior
        Hyperprior for the headline fit.
    settings
        Sampler settings (MCMC engine).
    weights
        Source weights by source ID (default 1).
    engine
        ``"mcmc"`` (default) or ``"exact"``.
    progress
        Show sampling progress.
    catalogue
        The multi-technique posterior (``xarray.DataTree`` from :mod:`attackprev.model.catalogue`).
        When it covers the technique and no source is re-weighted, its μ_t becomes the
        headline (``prevalence``, ``mal``) and the two-source-only fit is kept beside it
        under ``single_technique``.
    workers
        :class:`attackprev.reporting.figure_workers.FigureWorkers`: when given (MCMC engine), the report's
        figures are sent to them as soon as the draws exist, and the result's ``figures``
        holds the pending job for :func:`attackprev.reporting.technique.write_technique_report`.

    Returns
    -------
    TechniqueAnalysis
    """
    pending: list = []
    try:
        return _analyse(technique_id, evidence, prior, settings, weights, engine, progress, catalogue, workers, pending)
    except BaseException:
        for job in pending:  # the figures of a failed analysis are not wanted
            job.discard()
        raise


def _analyse(
    technique_id, evidence, prior, settings, weights, engine, progress, catalogue, workers, pending
) -> TechniqueAnalysis:
    from attackprev.evidence.attack import attack_table, describe_migration

    settings = settings or SamplerSettings()
    observations = evidence.for_technique(technique_id)
    w = resolve_weights(weights, observations)
    sources = [o.source_id for o in observations]
    y = np.array([o.successes for o in observations], float)
    n = np.array([o.trials for o in observations], float)

    published = _published(technique_id, observations)
    point = published["published_p"] if published["published_p"] is not None else published["naive_mean"]
    exact = fit_exact(y, n, prior, sources=sources, weights=w)
    comparison_exact = exact.compare(point)

    tree = None
    exact_rows = _exact_rows(exact)
    use_catalogue = (
        catalogue is not None and technique_id in catalogue["posterior"]["technique"].values and bool(np.all(w == 1))
    )
    headline = _catalogue_headline(catalogue, technique_id) if use_catalogue else None
    if engine == "mcmc":
        tree = sample_technique(y, n, sources, prior, settings, weights=w, progress=progress)
        tree.attrs.update(
            provenance(prior, evidence.digest, settings, dict(zip(sources, w.tolist(), strict=True)))
            | {"technique_id": technique_id}
        )
        rows = _mcmc_rows(tree)
        if workers is not None:  # draw the figures while the rest is computed and written
            import tempfile
            from pathlib import Path

            from attackprev.reporting.catalogue import hdi

            hdi_mu = hdi(headline.mu) if headline is not None else tuple(rows["mu"]["hdi_94"])
            folder = Path(tempfile.mkdtemp(prefix="attackprev-figures-"))
            pending.append(workers.submit(tree, folder, point, hdi_mu, technique_id, headline=headline))
        diag = diagnose(tree)
        mu_draws = tree["posterior"]["mu"].values.ravel()
        below = float(np.mean(mu_draws <= point))
        lo, hi = rows["mu"]["hdi_94"]
        comparison = {
            "point_estimate": point,
            "percentile": 100.0 * below,
            "prob_greater": 1.0 - below,
            "inside_hdi_94": bool(lo <= point <= hi),
        }
        gap = abs(rows["mu"]["mean"] - exact.mu.mean)
        agreement = {
            "mu_mean_diff": gap,
            "mu_mcse": rows["mu"]["mcse_mean"],
            "mu_mean_diff_in_mcse": gap / rows["mu"]["mcse_mean"],
            "mu_sd_diff": abs(rows["mu"]["sd"] - exact.mu.sd),
            "mu_hdi_diff": [abs(a - b) for a, b in zip(rows["mu"]["hdi_94"], exact.mu.hdi_94, strict=True)],
        }
        if gap > 3 * rows["mu"]["mcse_mean"]:
            diag.problems.append(
                f"MCMC mean of mu differs from the exact mean by {agreement['mu_mean_diff_in_mcse']:.1f} MCSE (> 3)"
            )
        diagnostics = diag.to_dict()
    else:
        rows = exact_rows
        comparison = comparison_exact
        agreement = None
        diagnostics = {
            "engine": "exact",
            "passed": True,
            "problems": [],
            "divergences": None,
            "max_rhat": None,
            "min_ess_bulk": None,
            "chains": None,
            "draws": None,
        }

    p = rows["mu"]["mean"]
    ttc = _ttc(technique_id, observations)
    from attackprev.mal.core import ttc_expression

    expression = ttc_expression(p, ttc.get("time_factor"))
    technique = attack_table().get(technique_id)
    summary = {
        "technique_id": technique_id,
        "technique_name": technique.display_name if technique else "",
        "attack_migration": describe_migration(technique_id),
        "engine": engine,
        "model": "single-technique hierarchical beta-binomial",
        "prior": prior.name,
        "prevalence": {k: rows["mu"][k] for k in ("mean", "sd", "median", "hdi_94")},
        "predictive": {k: rows["theta_new"][k] for k in ("mean", "hdi_94")},
        "concentration": {k: rows["kappa"][k] for k in ("mean", "sd", "median", "hdi_94")},
        "posterior_table": rows,
        "sources": [
            {
                "source_id": s,
                "successes": int(yy),
                "trials": int(nn),
                "posterior_mean": rows[f"theta[{s}]"]["mean"],
                "hdi_94": rows[f"theta[{s}]"]["hdi_94"],
            }
            for s, yy, nn in zip(sources, y, n, strict=True)
        ],
        "evidence": _evidence_rows(evidence, observations, w),
        "recoveries": {
            sid: {"trials": r.trials, "candidates": list(r.candidates[:5]), "text": r.describe()}
            for sid, r in evidence.recoveries.items()
            if sid in sources
        },
        "published": published,
        "comparison": comparison | {"naive_mean": published["naive_mean"]},
        "mal": {
            "expression": expression,
            "p": float(f"{p:.4g}"),
            "p_exact": p,
            "mcse": rows["mu"].get("mcse_mean"),  # Monte Carlo standard error of p (None: exact engine)
            "model": "single-technique",
        },
        "single_technique": None,
        "catalogue": None,
        "ttc": ttc,
        "exact": {
            "prevalence": exact.mu.to_dict(),
            "predictive": {"mean": exact.theta_new.mean, "hdi_94": list(exact.theta_new.hdi_94)},
            "table": exact_rows,
            "comparison": comparison_exact,
            "accuracy": exact.accuracy(),
        },
        "agreement": agreement,
        "sensitivity": sensitivity_table(y, n, sources, w, point),
        "diagnostics": diagnostics,
        "weights": dict(zip(sources, w.tolist(), strict=True)),
        "priors": prior.to_dict(),
        "seed": settings.seed,
        "sampler": {
            "draws": settings.draws,
            "tune": settings.tune,
            "chains": settings.chains,
            "target_accept": settings.target_accept,
        },
        "data_sha256": evidence.digest,
        "data_file": _display_path(evidence.path),
    }
    if use_catalogue:
        _use_catalogue(summary, catalogue, headline, technique_id, point, ttc)
    return TechniqueAnalysis(
        summary=summary, exact=exact, tree=tree, headline=headline, figures=pending[0] if pending else None
    )


def _draw_summary(x: np.ndarray) -> dict:
    from attackprev.reporting.catalogue import hdi

    x = np.asarray(x).ravel()
    return {"mean": float(x.mean()), "sd": float(x.std(ddof=1)), "median": float(np.median(x)), "hdi_94": list(hdi(x))}


def _catalogue_headline(tree, technique_id: str):
    """The technique's multi-technique draws, for the figures (:class:`attackprev.reporting.figures.Headline`)."""
    from attackprev.reporting.figures import Headline

    post = tree["posterior"]
    return Headline(
        mu=post["mu"].sel(technique=technique_id).values,
        theta_new=post["theta_new"].sel(technique=technique_id).values,
        label="multi-technique",
    )


def _use_catalogue(summary: dict, tree, headline, technique_id: str, point: float, ttc: dict) -> None:
    """Make the multi-technique posterior the headline; keep the single-technique one beside it.

    ``headline`` holds the technique's μ and θ_new draws (:func:`_catalogue_headline`).
    """
    from arviz_stats.base import array_stats

    from attackprev.mal.core import ttc_expression

    post = tree["posterior"]
    mu = headline.mu.ravel()
    new = headline.theta_new.ravel()
    kappa = post["kappa"].sel(technique=technique_id).values.ravel()
    single = {k: summary[k] for k in ("model", "prevalence", "predictive", "concentration", "comparison", "mal")}
    prevalence = _draw_summary(mu)
    lo, hi = prevalence["hdi_94"]
    below = float(np.mean(mu <= point))
    summary["single_technique"] = single
    summary["model"] = f"multi-technique hierarchical beta-binomial ({tree.attrs.get('variant', '')})"
    summary["catalogue"] = {
        "variant": tree.attrs.get("variant", ""),
        "techniques": int(post.sizes["technique"]),
        "data_sha256": tree.attrs.get("data_sha256", ""),
        "diagnostics": json.loads(tree.attrs["diagnostics"]) if "diagnostics" in tree.attrs else None,
        "kappa": _draw_summary(kappa) | {"hdi_94": list(np.exp(_draw_summary(np.log(kappa))["hdi_94"]))},
    }
    summary["prevalence"] = prevalence
    summary["predictive"] = {k: v for k, v in _draw_summary(new).items() if k in ("mean", "hdi_94")}
    summary["comparison"] = {
        "point_estimate": point,
        "percentile": 100.0 * below,
        "prob_greater": 1.0 - below,
        "inside_hdi_94": bool(lo <= point <= hi),
        "naive_mean": single["comparison"]["naive_mean"],
    }
    diag = summary["catalogue"]["diagnostics"]
    if diag is not None and not diag["passed"]:
        summary["diagnostics"]["problems"].append(
            "the multi-technique fit failed its diagnostics: " + "; ".join(diag["problems"])
        )
        summary["diagnostics"]["passed"] = False
    p = prevalence["mean"]
    summary["mal"] = {
        "expression": ttc_expression(p, ttc.get("time_factor")),
        "p": float(f"{p:.4g}"),
        "p_exact": p,
        "mcse": float(array_stats.mcse(np.asarray(headline.mu, float))),  # (chain, draw)
        "model": "multi-technique",
    }
