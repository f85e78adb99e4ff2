"""Writing the catalogue report: ``catalogue.md``, ``catalogue.csv``, ``summary.json``, ``posterior.nc``.

The numbers come from :func:`attackprev.analysis.catalogue.catalogue_summary`; this module
only renders them. :func:`write_catalogue_report` writes ``<out>/techniques/`` atomically, and
its ``posterior.nc`` is a complete saved result that later runs reuse
(:func:`attackprev.inference.catalogue.load_result`).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from attackprev.analysis.catalogue import catalogue_summary
from attackprev.config import CATALOGUE_DIR, DIAGNOSTIC_LIMITS
from attackprev.evidence.tables import Evidence
from attackprev.inference.catalogue import CatalogueResult, result_to_tree

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


# ------------------------------------------------------------------------------ the report
def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "–"
    return f"{x:.{digits}f}"


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
        f"`{s.get('command') or 'attackprev fit --all'}` — priors: {priors}. Seed {s['settings']['seed']}, "
        f"{s['settings']['chains']} chains × "
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


def write_catalogue_report(
    result: CatalogueResult, evidence: Evidence, out_dir: Path, command: str = "attackprev fit --all"
) -> Path:
    """Write ``<out_dir>/techniques/`` atomically; ``command`` is quoted in its Reproduce section."""
    from attackprev.atomic import json_text, write_folder_atomic
    from attackprev.config import DATA_DIR
    from attackprev.reporting.technique import save_posterior

    s = catalogue_summary(result, evidence) | {"command": command}
    from attackprev.evidence.audit.checks import check_notes
    from attackprev.reporting.quality import render_quality_markdown

    check = check_notes(DATA_DIR)
    quality = render_quality_markdown(check.findings, check.stats)
    excluded = excluded_markdown(DATA_DIR / "excluded.csv")
    target = Path(out_dir) / CATALOGUE_DIR

    def write(tmp: Path) -> None:
        save_posterior(result_to_tree(result), tmp / "posterior.nc")
        (tmp / "summary.json").write_text(json_text(s), encoding="utf-8")
        (tmp / "catalogue.csv").write_text(rows_to_csv(s["techniques"]), encoding="utf-8")
        (tmp / "catalogue.md").write_text(render_catalogue_markdown(s, quality, excluded), encoding="utf-8")

    write_folder_atomic(target, write)
    return target
