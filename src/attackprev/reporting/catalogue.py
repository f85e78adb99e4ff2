"""The catalogue run: fit every variant, choose one by PSIS-LOO, report every technique.

:func:`fit_catalogue` fits the variants of :mod:`attackprev.model.catalogue`, checks each one's
sampler diagnostics, compares them by PSIS-LOO and keeps the chosen variant's posterior.
:func:`write_catalogue_report` writes ``reports/techniques/``: ``catalogue.md`` and
``catalogue.csv`` (one row per technique), ``summary.json`` and ``posterior.nc``. A saved
catalogue is reused by single-technique runs when its cache key (data hash, priors and
sampler settings) matches (:func:`load_cached_catalogue`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from attackprev.evidence.tables import Evidence
from attackprev.inference.exact import HDI_PROB
from attackprev.inference.mcmc import DIAGNOSTIC_LIMITS, Diagnostics, diagnose, package_versions
from attackprev.model.catalogue import VARIANTS, CatalogueData, compare_variants, sample_catalogue
from attackprev.model.priors import CataloguePriors

CATALOGUE_DIR = "techniques"


@dataclass(frozen=True)
class CatalogueSettings:
    """Sampler settings of the catalogue fits.

    4 × 1500 draws after 1500 tuning steps give a bulk ESS above 600 for every parameter of
    the chosen variant (the slowest-mixing is the mean log concentration, ~0.12 effective
    draws per draw); more would only enlarge the saved posterior.
    """

    draws: int = 1500
    tune: int = 1500
    chains: int = 4
    seed: int = 20201102
    target_accept: float = 0.97


@dataclass
class CatalogueResult:
    """The chosen variant's posterior and everything needed to report it."""

    data: CatalogueData
    variant: str
    tree: xr.DataTree
    diagnostics: dict[str, Diagnostics]
    comparison: list[dict]
    key: str
    priors: CataloguePriors
    settings: CatalogueSettings
    seconds: dict[str, float]

    @property
    def passed(self) -> bool:
        """Whether the chosen variant passed its diagnostics."""
        return self.diagnostics[self.variant].passed

    def mu_draws(self, technique_id: str) -> np.ndarray:
        """Posterior draws of μ_t, flattened."""
        return self.tree["posterior"]["mu"].sel(technique=technique_id).values.ravel()


def cache_key(evidence: Evidence, priors: CataloguePriors, settings: CatalogueSettings) -> str:
    """What a saved catalogue must match to be reused."""
    blob = json.dumps(
        {"data": evidence.digest, "priors": priors.to_dict(), "settings": asdict(settings), "variants": list(VARIANTS)},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def fit_catalogue(
    evidence: Evidence,
    priors: CataloguePriors | None = None,
    settings: CatalogueSettings | None = None,
    variants: list[str] | None = None,
    progress: bool = False,
) -> CatalogueResult:
    """Fit the catalogue variants and choose one.

    Parameters
    ----------
    evidence
        All observations.
    priors, settings
        Hyperpriors and sampler settings (defaults when omitted).
    variants
        Which variants to fit (all by default).
    progress
        Show progress bars.
    """
    import time

    priors = priors or CataloguePriors()
    settings = settings or CatalogueSettings()
    data = CatalogueData.from_observations(list(evidence.observations))
    trees, diags, seconds = {}, {}, {}
    for name in variants or list(VARIANTS):
        start = time.perf_counter()
        trees[name] = sample_catalogue(
            data,
            priors,
            VARIANTS[name],
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            seed=settings.seed,
            target_accept=settings.target_accept,
            progress=progress,
        )
        seconds[name] = time.perf_counter() - start
        diags[name] = diagnose(_sampled_only(trees[name]))
    if len(trees) > 1:
        chosen, table = compare_variants(trees, {n for n, d in diags.items() if d.passed})
    else:
        chosen, table = next(iter(trees)), []
    tree = compact_tree(trees[chosen])
    tree.attrs.update(
        {
            "variant": chosen,
            "priors": json.dumps(priors.to_dict()),
            "data_sha256": evidence.digest,
            "seed": settings.seed,
            "sampler": json.dumps(asdict(settings)),
            "versions": json.dumps(package_versions()),
            "cache_key": cache_key(evidence, priors, settings),
            "diagnostics": json.dumps(diags[chosen].to_dict()),
        }
    )
    return CatalogueResult(
        data, chosen, tree, diags, table, cache_key(evidence, priors, settings), priors, settings, seconds
    )


#: What the saved catalogue posterior keeps: enough for every per-technique figure.
KEPT_VARIABLES = (
    "mu",
    "kappa",
    "theta_new",
    "mu_logit_mean",
    "mu_logit_sd",
    "log_kappa_mean",
    "log_kappa_sd",
    "source_offset",
)


def compact_tree(tree: xr.DataTree) -> xr.DataTree:
    """The chosen variant's posterior as it is saved and used: float32, per-technique quantities only.

    Applied right after fitting, so a run that fits the catalogue and a run that reads the
    saved one compute every figure from the same numbers. Observation-level draws (θ_i,
    replicated counts, pointwise log-likelihood) are used for the LOO comparison and then
    dropped: they would make the file ten times larger.
    """
    post = tree["posterior"].to_dataset()
    post = post[[v for v in KEPT_VARIABLES if v in post]].astype("float32")
    stats = tree["sample_stats"].to_dataset()[["diverging"]]
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def _sampled_only(tree: xr.DataTree) -> xr.DataTree:
    """The parameters whose convergence matters (θ draws are conditionally independent)."""
    post = tree["posterior"].to_dataset()
    keep = [v for v in post.data_vars if v not in ("theta", "theta_new")]
    return xr.DataTree.from_dict({"posterior": post[keep], "sample_stats": tree["sample_stats"].to_dataset()})


def catalogue_applies(evidence: Evidence) -> bool:
    """Whether the evidence has enough techniques reported by several sources to learn κ from."""
    per_technique: dict[str, int] = {}
    for o in evidence.observations:
        per_technique[o.technique_id] = per_technique.get(o.technique_id, 0) + 1
    multi = sum(1 for c in per_technique.values() if c > 1)
    return len(per_technique) >= 5 and multi >= 3


def load_cached_catalogue(folder: Path, evidence: Evidence) -> xr.DataTree | None:
    """The saved catalogue posterior in ``folder`` if it matches this evidence and the defaults."""
    path = Path(folder) / "posterior.nc"
    if not path.exists():
        return None
    key = cache_key(evidence, CataloguePriors(), CatalogueSettings())
    try:
        tree = xr.open_datatree(path)
    except (OSError, ValueError):
        return None
    if tree.attrs.get("cache_key") != key:
        tree.close()
        return None
    return tree.load()


# ------------------------------------------------------------------------------ the table
def hdi(draws: np.ndarray, prob: float = HDI_PROB) -> tuple[float, float]:
    """Shortest interval holding ``prob`` of the draws."""
    x = np.sort(np.asarray(draws).ravel())
    k = math.ceil(prob * x.size)
    widths = x[k - 1 :] - x[: x.size - k + 1]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + k - 1])


def technique_rows(result: CatalogueResult, evidence: Evidence) -> list[dict]:
    """One row per technique: evidence, published value, posterior, MAL expression; largest disagreement first."""
    from arviz_stats.base import array_stats

    from attackprev.evidence.attack import attack_table, current_id
    from attackprev.evidence.enterpriselang import note_for
    from attackprev.mal.core import ttc_expression

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


CSV_COLUMNS = [
    "technique_id",
    "current_id",
    "name",
    "evidence",
    "published_result",
    "published_p",
    "mean",
    "mean_mcse",
    "hdi_94_low",
    "hdi_94_high",
    "published_inside_hdi_94",
    "prob_above_published",
    "mal_expression",
]


def _mcse_note(rows: list[dict]) -> str:
    """How precisely the draws fix the posterior means (and so the MAL values)."""
    worst = max(rows, key=lambda r: r["mean_mcse"])
    rel = max(rows, key=lambda r: r["mean_mcse"] / r["mean"])
    return (
        f"The draws fix each posterior mean to within two Monte Carlo standard errors (`mean_mcse` in the CSV): "
        f"at most ±{2 * worst['mean_mcse']:.1g} ({worst['technique_id']}), "
        f"or ±{200 * rel['mean_mcse'] / rel['mean']:.1f} % of the mean ({rel['technique_id']}); MAL values keep "
        "four significant figures only so that a rerun with the same seed writes the same file."
    )


def rows_to_csv(rows: list[dict]) -> str:
    """The catalogue table as CSV (also read by ``attackprev export-mal --catalogue``)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*CSV_COLUMNS, "p"], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        out = {k: r[k] for k in CSV_COLUMNS}
        for k in ("published_p", "mean", "mean_mcse", "hdi_94_low", "hdi_94_high", "prob_above_published"):
            if out[k] is not None:
                out[k] = f"{out[k]:.6g}"
        out["p"] = f"{r['mean']:.4g}"
        writer.writerow(out)
    return buf.getvalue()


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


# ------------------------------------------------------------------------------ the report
def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "–"
    return f"{x:.{digits}f}"


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


def render_catalogue_markdown(s: dict, quality_md: str = "", excluded_md: str = "") -> str:
    """The catalogue report, from its summary alone."""
    d = s["diagnostics"][s["variant"]]
    lines = ["# Every technique with countable evidence", ""]
    if not d["passed"]:
        lines += [
            "> **⚠ THE CHOSEN MODEL FAILED ITS DIAGNOSTICS — do not use these numbers as they stand.**",
            *[f"> - {p}" for p in d["problems"]],
            "",
        ]
    else:
        lines += [
            f"> **Diagnostics passed** for the chosen model `{s['variant']}`: {d['divergences']} divergent "
            f"transitions, max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f} "
            f"({d['chains']} chains × {d['draws']} draws).",
            "",
        ]
    rows = s["techniques"]
    with_pub = [r for r in rows if r["published_p"] is not None]
    inside = sum(1 for r in with_pub if r["published_inside_hdi_94"])
    lines += [
        f"{s['n_techniques']} techniques, {s['n_observations']} observations; {s['n_multi_source']} techniques "
        f"have more than one source, and their disagreements tell the model how far sources differ. "
        f"Model: `{s['variant']}` ({s['variant_description']}), chosen by PSIS-LOO (below). "
        + (
            f"Prevalence μ_t is on the scale of the reference source `{s['reference_source']}` (other sources are "
            "shifted by their offsets)."
            if "offsets" in s["variant"]
            else "Prevalence μ_t is the mean rate of the technique's sources (no systematic source differences)."
        ),
        "",
        f"enterpriseLang's published value lies inside the 94 % HDI for {inside} of the {len(with_pub)} techniques "
        "that have one. Rows are sorted by how far the posterior mean is from the published value "
        "(|log ratio|), largest first. " + _mcse_note(rows),
        "",
        "| technique | evidence | enterpriseLang | posterior mean | 94 % HDI | inside | P(μ > published) | MAL |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        tid = r["technique_id"] + (f" → {r['current_id']}" if r["current_id"] else "")
        inside_txt = {True: "yes", False: "**no**", None: "–"}[r["published_inside_hdi_94"]]
        lines.append(
            f"| {tid} {r['name']} | {r['evidence']} | `{r['published_result']}` | {_fmt(r['mean'])} | "
            f"[{_fmt(r['hdi_94_low'])}, {_fmt(r['hdi_94_high'])}] | {inside_txt} | "
            f"{_fmt(r['prob_above_published'], 2)} | `{r['mal_expression']}` |"
        )
    lines += ["", "IDs with an arrow were revoked in ATT&CK v18.1; the arrow points to the replacement.", ""]
    lines += [
        "## Hyperparameters",
        "",
        "| parameter | mean | sd | 94 % HDI | ESS bulk | R-hat |",
        "|---|---|---|---|---|---|",
    ]
    for h in s["hyperparameters"]:
        lines.append(
            f"| {h['name']} | {h['mean']:.3f} | {h['sd']:.3f} | [{h['hdi_94'][0]:.3f}, {h['hdi_94'][1]:.3f}] | "
            f"{h['ess_bulk']:.0f} | {h['r_hat']:.3f} |"
        )
    offsets = [h for h in s["hyperparameters"] if h["name"].startswith("source_offset")]
    if offsets:
        lines += [""] + [
            f"- {h['name'][14:-1]} counts the same technique {math.exp(h['mean']):.1f} times as often in odds as "
            f"`{s['reference_source']}` (94 % HDI {math.exp(h['hdi_94'][0]):.1f} to {math.exp(h['hdi_94'][1]):.1f})."
            for h in offsets
        ]
    lines += _comparison_md(s)
    lines += [
        "## Diagnostics of every variant",
        "",
        "| variant | divergences | max R-hat | min bulk ESS | passed |",
    ]
    lines += ["|---|---|---|---|---|"]
    for name, dd in s["diagnostics"].items():
        lines.append(
            f"| `{name}` | {dd['divergences']} | {dd['max_rhat']:.3f} | {dd['min_ess_bulk']:.0f} | "
            f"{'yes' if dd['passed'] else 'no: ' + '; '.join(dd['problems'])} |"
        )
    limits = DIAGNOSTIC_LIMITS
    lines += [
        "",
        f"Required: {limits['divergences']} divergences, R-hat ≤ {limits['max_rhat']}, bulk ESS ≥ "
        f"{limits['min_ess_bulk']} for every parameter.",
        "",
    ]
    if quality_md:
        lines += [quality_md.strip(), ""]
    if excluded_md:
        lines += [excluded_md.strip(), ""]
    priors = "; ".join(f"{k}: {v}" for k, v in s["priors"].items())
    versions = ", ".join(f"{k} {v}" for k, v in s["versions"].items())
    lines += [
        "## Reproduce",
        "",
        f"`attackprev fit --all` — priors: {priors}. Seed {s['settings']['seed']}, {s['settings']['chains']} chains × "
        f"{s['settings']['draws']} draws after {s['settings']['tune']} tuning steps; data SHA-256 "
        f"`{s['data_sha256'][:16]}…`. Versions: {versions}.",
        "",
        "*Generated by `attackprev`; do not edit by hand.*",
    ]
    return "\n".join(lines) + "\n"


def _comparison_md(s: dict) -> list[str]:
    rows = s["comparison"]
    if not rows:
        return []
    out = [
        "",
        "## Which model: PSIS-LOO",
        "",
        "| variant | elpd_loo | SE | difference to best | SE of difference | p_loo | Pareto k too high | eligible |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| `{r['variant']}` ({r['description']}) | {r['elpd_loo']:.1f} | {r['se']:.1f} | "
            f"{-r['elpd_diff'] + 0.0:.1f} | {r['dse']:.1f} | {r['p_loo']:.1f} | "
            f"{r['pareto_k_bad']} of {s['n_observations']} | "
            f"{'yes' if r['eligible'] else 'no (failed diagnostics)'} |"
        )
    best = rows[0]
    chosen = next(r for r in rows if r["variant"] == s["variant"])
    text = (
        f"The highest expected log predictive density is `{best['variant']}`'s. "
        if best["variant"] == s["variant"]
        else (
            f"`{best['variant']}` scores highest, but `{s['variant']}` is within two standard errors of it "
            f"({-chosen['elpd_diff']:.1f} ± {chosen['dse']:.1f}) or the better-scoring ones failed their diagnostics, "
            "and the simpler adequate model is kept. "
        )
    )
    worst_k = max(r["pareto_k_bad"] for r in rows)
    if worst_k:
        text += (
            f"PSIS-LOO is unreliable for observations whose Pareto k exceeds its threshold (up to {worst_k} of "
            f"{s['n_observations']} here): most techniques have a single observation, so leaving it out changes "
            "that technique's posterior a lot. Treat the differences as indicative."
        )
    return [*out, "", text, ""]


def excluded_markdown(path: Path) -> str:
    """Counts of the excluded figures by reason, from ``data/excluded.csv``."""
    from attackprev.evidence.tables import read_table

    rows, _ = read_table(path, ["reason"])
    counts: dict[str, int] = {}
    for _, r in rows:
        category = r["reason"].split(":")[0].strip() or "unspecified"
        counts[category] = counts.get(category, 0) + 1
    lines = [
        "## Figures left out of the model",
        "",
        f"{len(rows)} figures quoted in the enterpriseLang notes do not count how often attacks use a technique "
        "(or repeat another), and are recorded with their reasons in `data/excluded.csv`:",
        "",
        "| reason | figures |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


def write_catalogue_report(result: CatalogueResult, evidence: Evidence, out_dir: Path) -> Path:
    """Write ``<out_dir>/techniques/`` atomically."""
    from attackprev.atomic import write_folder_atomic
    from attackprev.config import DATA_DIR
    from attackprev.reporting.technique import save_posterior

    s = catalogue_summary(result, evidence)
    from attackprev.evidence.audit import check_notes, render_quality_markdown

    check = check_notes(DATA_DIR)
    quality = render_quality_markdown(check.findings, check.stats)
    excluded = excluded_markdown(DATA_DIR / "excluded.csv")
    target = Path(out_dir) / CATALOGUE_DIR

    def write(tmp: Path) -> None:
        save_posterior(result.tree, tmp / "posterior.nc")
        (tmp / "summary.json").write_text(json.dumps(s, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "catalogue.csv").write_text(rows_to_csv(s["techniques"]), encoding="utf-8")
        (tmp / "catalogue.md").write_text(render_catalogue_markdown(s, quality, excluded), encoding="utf-8")

    write_folder_atomic(target, write)
    return target
