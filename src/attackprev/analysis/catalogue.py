"""The numbers of the catalogue report: one row per technique, the hyperparameters, the whole summary.

Everything :mod:`attackprev.reporting.catalogue` writes is computed here from a
:class:`attackprev.inference.catalogue.CatalogueResult`, as plain data.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np

from attackprev.evidence.tables import Evidence
from attackprev.inference.catalogue import CatalogueResult
from attackprev.inference.diagnostics import package_versions
from attackprev.inference.summaries import hdi
from attackprev.model.catalogue import VARIANTS


def technique_rows(result: CatalogueResult, evidence: Evidence) -> list[dict]:
    """One row per technique: evidence, published value, posterior, MAL expression; largest disagreement first."""
    from arviz_stats.base import array_stats

    from attackprev.evidence.attack import attack_table, current_id
    from attackprev.evidence.enterpriselang import note_for
    from attackprev.mal.expressions import ttc_expression

    table = attack_table()
    post = result.tree["posterior"]
    rows = []
    for t in result.data.techniques:
        obs = [o for o in evidence.observations if o.technique_id == t]
        mu = post["mu"].sel(technique=t).values.ravel()
        new = post["theta_new"].sel(technique=t).values.ravel()
        lo, hi = hdi(mu)
        note = note_for(t, obs[0].note_path)
        published = note.published_p if note else None
        factor = note.time_factor[0] if note else None
        mean = float(mu.mean())
        mean_mcse = float(array_stats.mcse(np.asarray(post["mu"].sel(technique=t).values, float)))
        tech = table.get(t)
        live = current_id(t) if tech else t
        rows.append(
            {
                "technique_id": t,
                "current_id": live if live != t else "",
                "name": tech.display_name if tech else "",
                "evidence": "; ".join(f"{o.source_id} {o.successes}/{o.trials}" for o in obs),
                "sources": len(obs),
                "published_result": note.published_result if note else "",
                "published_p": published,
                "mean": mean,
                "mean_mcse": mean_mcse,
                "hdi_94_low": lo,
                "hdi_94_high": hi,
                "theta_new_hdi_94_high": hdi(new)[1],
                "published_inside_hdi_94": (lo <= published <= hi) if published is not None else None,
                "prob_above_published": float(np.mean(mu > published)) if published is not None else None,
                "log_ratio": abs(math.log(mean / published)) if published else None,
                "mal_expression": ttc_expression(mean, factor),
                "note_path": note.note_path if note else "",
            }
        )
    rows.sort(key=lambda r: (r["log_ratio"] is None, -(r["log_ratio"] or 0.0)))
    return rows


def hyper_rows(result: CatalogueResult) -> list[dict]:
    """Posterior summaries of the hyperparameters and source offsets."""
    import arviz as az

    post = result.tree["posterior"]
    names = [v for v in ("mu_logit_mean", "mu_logit_sd", "log_kappa_mean", "log_kappa_sd") if v in post]
    ess = az.ess(result.tree, var_names=names).to_dataset()
    rhat = az.rhat(result.tree, var_names=names).to_dataset()
    rows = []
    for v in names:
        x = post[v].values.ravel()
        rows.append(
            {
                "name": v,
                "mean": float(x.mean()),
                "sd": float(x.std(ddof=1)),
                "hdi_94": list(hdi(x)),
                "ess_bulk": float(ess[v]),
                "r_hat": float(rhat[v]),
            }
        )
    if "source_offset" in post:
        for s in result.data.sources[1:]:
            x = post["source_offset"].sel(source=s).values.ravel()
            rows.append(
                {
                    "name": f"source_offset[{s}]",
                    "mean": float(x.mean()),
                    "sd": float(x.std(ddof=1)),
                    "hdi_94": list(hdi(x)),
                    "ess_bulk": float(az.ess(x.reshape(post.sizes["chain"], -1))),
                    "r_hat": float(az.rhat(x.reshape(post.sizes["chain"], -1))),
                }
            )
    return rows


def catalogue_summary(result: CatalogueResult, evidence: Evidence) -> dict:
    """Everything the catalogue report states, as plain data."""
    rows = technique_rows(result, evidence)
    return {
        "model": "multi-technique hierarchical beta-binomial",
        "variant": result.variant,
        "variant_description": VARIANTS[result.variant].description,
        "reference_source": result.data.reference,
        "techniques": rows,
        "hyperparameters": hyper_rows(result),
        "comparison": result.comparison,
        "diagnostics": {name: d.to_dict() for name, d in result.diagnostics.items()},
        "n_techniques": len(result.data.techniques),
        "n_observations": len(result.data.labels),
        "n_multi_source": int(np.sum(result.data.sources_per_technique() > 1)),
        "priors": result.priors.to_dict(),
        "settings": asdict(result.settings),
        "data_sha256": evidence.digest,
        "cache_key": result.key,
        "versions": package_versions(),
    }
