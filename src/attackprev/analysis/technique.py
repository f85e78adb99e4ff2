"""One technique, end to end: evidence → posterior → the numbers a report states.

:func:`analyse_technique` fits the single-technique model (MCMC by default, or the exact
grid alone), checks the sampler against the exact posterior, runs the prior-sensitivity
table on the exact engine, and returns a :class:`TechniqueAnalysis` whose ``summary`` is the
plain-data result written to ``summary.json``. The Markdown report is rendered from that
summary alone (:mod:`attackprev.reporting.technique`), so every number it states comes from here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from attackprev.config import HDI_PROB, MULTI_SOURCE, MULTI_TECHNIQUE, SINGLE_TECHNIQUE
from attackprev.errors import InputError
from attackprev.evidence.tables import Evidence, Observation
from attackprev.inference.diagnostics import diagnose
from attackprev.inference.exact import ExactPosterior, fit_exact
from attackprev.inference.mcmc import SamplerSettings, provenance, sample_technique
from attackprev.inference.summaries import Headline, draw_summary, hdi, jeffreys_interval
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
    """The bundled data relative to the project (wherever the run starts), else relative to the working folder."""
    from pathlib import Path

    from attackprev.config import PROJ_ROOT

    resolved = Path(path).resolve()
    for base in (PROJ_ROOT, Path.cwd()):
        try:
            return str(resolved.relative_to(base.resolve()))
        except ValueError:
            continue
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


#: Short names of the models a technique report can headline.
SYNTHESIS = MULTI_SOURCE
MULTI = MULTI_TECHNIQUE
SINGLE = SINGLE_TECHNIQUE


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
    estimand_note: str | None = None,
    synthesis=None,
) -> TechniqueAnalysis:
    """Fit one technique and compute every figure of its report.

    Parameters
    ----------
    technique_id
        ATT&CK ID as the evidence records it.
    evidence
        Loaded evidence.
    prior
        Hyperprior of the single-technique model.
    settings
        Sampler settings of the single-technique model (MCMC engine).
    weights
        Source weights by source ID (default 1); they temper the single-technique model only.
    engine
        ``"mcmc"`` (default) or ``"exact"`` for the single-technique model.
    progress
        Show sampling progress.
    catalogue
        The multi-technique result (:class:`attackprev.inference.catalogue.CatalogueResult`).
        When given, it must cover the technique and no source may be re-weighted; its μ_t is
        then the headline (the default estimand) and the single-technique fit is kept beside
        it under ``models.single_technique``. When ``None`` the single-technique fit is the
        headline.
    workers
        :class:`attackprev.reporting.figure_workers.FigureWorkers`: when given (MCMC engine),
        the report's figures are sent to them as soon as the draws exist, and the result's
        ``figures`` holds the pending job.
    estimand_note
        Why the headline is not the default multi-source model (the report's first lines
        and ``summary.json`` state it); ignored when ``synthesis`` is given.
    synthesis
        The multi-source fit (:class:`attackprev.analysis.synthesis.SynthesisView`: the result,
        its count table and the target family). When given, the technique's probability on the
        target scale is the headline (the default estimand); ``catalogue`` is then ignored.

    Returns
    -------
    TechniqueAnalysis
        Its ``summary`` has one schema whatever the headline: the top-level ``model``,
        ``engine``, ``prevalence``, ``predictive``, ``concentration``, ``comparison``,
        ``diagnostics``, ``mal``, ``priors`` and ``settings`` describe the headline model;
        ``models.single_technique`` and ``models.multi_technique`` (``None`` when not fitted)
        hold each model's own results.
    """
    pending: list = []
    try:
        return _analyse(
            technique_id,
            evidence,
            prior,
            settings,
            weights,
            engine,
            progress,
            catalogue,
            workers,
            pending,
            estimand_note,
            synthesis,
        )
    except BaseException:
        for job in pending:  # the figures of a failed analysis are not wanted
            job.discard()
        raise


def _analyse(
    technique_id,
    evidence,
    prior,
    settings,
    weights,
    engine,
    progress,
    catalogue,
    workers,
    pending,
    estimand_note,
    synthesis,
) -> TechniqueAnalysis:
    from attackprev.evidence.attack import attack_table, describe_migration

    settings = settings or SamplerSettings()
    observations = evidence.for_technique(technique_id)
    w = resolve_weights(weights, observations)
    sources = [o.source_id for o in observations]
    y = np.array([o.successes for o in observations], float)
    n = np.array([o.trials for o in observations], float)
    if synthesis is not None:
        catalogue = None
        if technique_id not in synthesis.result.data.techniques:
            raise InputError(f"{technique_id} has no count in the evidence base v2; use --model single")
        if not bool(np.all(w == 1)):
            raise InputError("source weights apply to the single-technique model only; use --model single")
    if catalogue is not None:
        if technique_id not in catalogue.data.techniques:
            raise InputError(f"{technique_id} is not in the multi-technique fit; use --model single")
        if not bool(np.all(w == 1)):
            raise InputError("source weights apply to the single-technique model only; use --model single")

    published = _published(technique_id, observations)
    point = published["published_p"] if published["published_p"] is not None else published["naive_mean"]
    exact = fit_exact(y, n, prior, sources=sources, weights=w)
    comparison_exact = exact.compare(point)
    headline = None
    if synthesis is not None:
        headline = synthesis.headline(technique_id)
    elif catalogue is not None:
        headline = _catalogue_headline(catalogue, technique_id)
    ttc = _ttc(technique_id, observations)

    tree = None
    exact_rows = _exact_rows(exact)
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

            hdi_mu = hdi(headline.mu) if headline is not None else tuple(rows["mu"]["hdi_94"])
            folder = Path(tempfile.mkdtemp(prefix="attackprev-figures-"))
            pending.append(workers.submit(tree, folder, point, hdi_mu, technique_id, headline=headline))
        diag = diagnose(tree)
        comparison = _compare(tree["posterior"]["mu"].values.ravel(), point, rows["mu"]["hdi_94"])
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
        diagnostics = diag.to_dict() | {"engine": "mcmc"}
        sampler = asdict(settings)
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
        sampler = None

    p = rows["mu"]["mean"]
    single = {
        "model": SINGLE,
        "description": f"single-technique hierarchical beta-binomial (this technique's {len(sources)} "
        f"source{'s' if len(sources) != 1 else ''} alone)",
        "engine": engine,
        "prior": prior.name,
        "priors": prior.to_dict(),
        "settings": sampler,
        "prevalence": {k: rows["mu"][k] for k in ("mean", "sd", "median", "hdi_94")},
        "predictive": {k: rows["theta_new"][k] for k in ("mean", "hdi_94")},
        "concentration": {k: rows["kappa"][k] for k in ("mean", "sd", "median", "hdi_94")},
        "comparison": comparison | {"naive_mean": published["naive_mean"]},
        "mal": _mal_block(p, rows["mu"].get("mcse_mean"), ttc, SINGLE),
        "diagnostics": diagnostics,
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
        "exact": {
            "prevalence": exact.mu.to_dict(),
            "predictive": {"mean": exact.theta_new.mean, "hdi_94": list(exact.theta_new.hdi_94)},
            "table": exact_rows,
            "comparison": comparison_exact,
            "accuracy": exact.accuracy(),
        },
        "agreement": agreement,
        "sensitivity": sensitivity_table(y, n, sources, w, point),
    }
    multi = (
        _multi_block(catalogue, headline, technique_id, point, ttc, published["naive_mean"])
        if catalogue is not None
        else None
    )
    source_block = (
        _synthesis_block(synthesis, headline, technique_id, point, ttc, published["naive_mean"])
        if synthesis is not None
        else None
    )
    head = source_block or multi or single
    diagnostics = dict(head["diagnostics"])
    problems = list(diagnostics["problems"])
    if head is not single and not single["diagnostics"]["passed"]:
        problems += [f"single-technique fit: {x}" for x in single["diagnostics"]["problems"]]
    diagnostics.update(problems=problems, passed=not problems)
    technique = attack_table().get(technique_id)
    summary = {
        "technique_id": technique_id,
        "technique_name": technique.display_name if technique else "",
        "attack_migration": describe_migration(technique_id),
        "model": head["model"],
        "model_description": head["description"],
        "engine": head["engine"],
        "estimand": {
            "default": source_block is not None,
            "note": None if source_block is not None else estimand_note,
        },
        "prevalence": head["prevalence"],
        "predictive": head["predictive"],
        "concentration": head["concentration"],
        "comparison": head["comparison"],
        "mal": dict(head["mal"]),
        "diagnostics": diagnostics,
        "priors": head["priors"],
        "settings": head["settings"],
        "models": {"single_technique": single, "multi_technique": multi, "multi_source": source_block},
        "evidence": _evidence_rows(evidence, observations, w),
        "recoveries": {
            sid: {"trials": r.trials, "candidates": list(r.candidates[:5]), "text": r.describe()}
            for sid, r in evidence.recoveries.items()
            if sid in sources
        },
        "published": published,
        "ttc": ttc,
        "weights": dict(zip(sources, w.tolist(), strict=True)),
        "data_sha256": evidence.digest,
        "data_file": _display_path(evidence.path),
    }
    return TechniqueAnalysis(
        summary=summary, exact=exact, tree=tree, headline=headline, figures=pending[0] if pending else None
    )


def _compare(mu: np.ndarray, point: float, hdi_94) -> dict:
    """Where the point estimate falls in the posterior draws of μ."""
    below = float(np.mean(mu <= point))
    lo, hi = hdi_94
    return {
        "point_estimate": point,
        "percentile": 100.0 * below,
        "prob_greater": 1.0 - below,
        "inside_hdi_94": bool(lo <= point <= hi),
    }


def _mal_block(p: float, mcse: float | None, ttc: dict, model: str) -> dict:
    """The MAL expression for probability ``p`` and the step's time factor."""
    from attackprev.mal.expressions import ttc_expression

    return {
        "expression": ttc_expression(p, ttc.get("time_factor")),
        "p": float(f"{p:.4g}"),
        "p_exact": p,
        "mcse": mcse,  # Monte Carlo standard error of p (None: exact engine)
        "model": model,
    }


def _catalogue_headline(result, technique_id: str) -> Headline:
    """The technique's multi-technique draws of μ and θ_new, shape ``(chain, draw)``."""
    post = result.tree["posterior"]
    return Headline(
        mu=post["mu"].sel(technique=technique_id).values,
        theta_new=post["theta_new"].sel(technique=technique_id).values,
        label=MULTI,
    )


def _multi_block(result, headline: Headline, technique_id: str, point: float, ttc: dict, naive: float) -> dict:
    """The multi-technique model's results for one technique (``models.multi_technique``)."""
    from arviz_stats.base import array_stats

    post = result.tree["posterior"]
    mu = headline.mu.ravel()
    kappa = post["kappa"].sel(technique=technique_id).values.ravel()
    prevalence = draw_summary(mu)
    log_kappa = draw_summary(np.log(kappa))
    return {
        "model": MULTI,
        "description": f"multi-technique hierarchical beta-binomial (variant `{result.variant}`, "
        f"{len(result.data.techniques)} techniques)",
        "engine": "mcmc",
        "variant": result.variant,
        "techniques": len(result.data.techniques),
        "data_sha256": result.tree.attrs.get("data_sha256", ""),
        "cache_key": result.key,
        "priors": result.priors.to_dict(),
        "settings": asdict(result.settings),
        "prevalence": prevalence,
        "predictive": {k: v for k, v in draw_summary(headline.theta_new).items() if k in ("mean", "hdi_94")},
        "concentration": draw_summary(kappa) | {"hdi_94": list(np.exp(log_kappa["hdi_94"]))},
        "comparison": _compare(mu, point, prevalence["hdi_94"]) | {"naive_mean": naive},
        "mal": _mal_block(prevalence["mean"], float(array_stats.mcse(np.asarray(headline.mu, float))), ttc, MULTI),
        "diagnostics": result.diagnostics[result.variant].to_dict() | {"engine": "mcmc"},
    }


def _synthesis_block(view, headline: Headline, technique_id: str, point: float, ttc: dict, naive: float) -> dict:
    """The multi-source model's results for one technique (``models.multi_source``): its rate on the
    target scale, what each family would report, and where each source pulls."""
    from arviz_stats.base import array_stats

    from attackprev.analysis.synthesis import source_pulls, technique_predictive
    from attackprev.inference.synthesis import target_draws

    result, table, target = view.result, view.table, view.target
    p = headline.mu.ravel()
    prevalence = draw_summary(p)
    predictive = technique_predictive(result, table, technique_id)
    return {
        "model": SYNTHESIS,
        "description": f"multi-source synthesis ({len(result.data.techniques)} techniques, "
        f"{len(result.data.sources)} sources in {len(result.data.families)} families), on the `{target}` scale",
        "engine": "mcmc",
        "target": target,
        "target_description": view.description,
        "techniques": len(result.data.techniques),
        "data_sha256": result.data.digest,
        "priors": result.priors.to_dict(),
        "settings": asdict(result.settings),
        "prevalence": prevalence,
        "predictive": {
            "mean": predictive[target]["mean"],
            "hdi_94": [predictive[target]["hdi_low"], predictive[target]["hdi_high"]],
        },
        "concentration": None,
        "comparison": _compare(p, point, prevalence["hdi_94"]) | {"naive_mean": naive},
        "mal": _mal_block(prevalence["mean"], float(array_stats.mcse(np.asarray(headline.mu, float))), ttc, SYNTHESIS),
        "diagnostics": result.diagnostics.to_dict() | {"engine": "mcmc"},
        "by_family": predictive,
        "scales": {
            f: draw_summary(target_draws(result, f)[:, result.data.techniques.index(technique_id)])
            for f in result.data.families
        },
        "pulls": source_pulls(result, table, technique_id, target),
        "target_data": any(c.family == target for c in table.for_technique(technique_id)),
    }
