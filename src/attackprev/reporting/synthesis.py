"""The multi-source catalogue: ``catalogue.md``, ``catalogue.csv``, ``predictive.csv``, ``summary.json``.

Written by ``attackprev fit --all`` (and ``models/catalogue.py``) into ``OUT/techniques/``. Every
number comes from :mod:`attackprev.analysis.synthesis`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from attackprev.atomic import json_text, round_floats, write_folder_atomic
from attackprev.config import CATALOGUE_DIR, DIAGNOSTIC_LIMITS, HDI_PROB
from attackprev.mal.expressions import format_probability

ESTIMATE_COLUMNS = [
    "technique_id",
    "name",
    "target",
    "mean",
    "sd",
    "hdi_low",
    "hdi_high",
    "p",
    "hdi_94_low",
    "hdi_94_high",
    "mal_expression",
    "target_data",
    "families",
    "sources_positive",
    "enterpriselang_steps",
    "published_p",
    "prob_above_published",
    "published_inside_hdi_94",
    "runner_up_model",
    "runner_up_mean",
    "runner_up_hdi_94_low",
    "runner_up_hdi_94_high",
    "runner_up_differs",
]
PREDICTIVE_COLUMNS = [
    "technique_id",
    "family",
    "mean",
    "hdi_low",
    "hdi_high",
    "observed_successes",
    "observed_trials",
]


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v)) for k, v in r.items()})
    return buf.getvalue()


def _p(x: float) -> str:
    return f"{x:.4f}" if x >= 0.001 else f"{x:.2g}"


def _interval(s: dict) -> str:
    return f"{_p(s['hdi_94'][0])}–{_p(s['hdi_94'][1])}"


def render_synthesis_markdown(s: dict) -> str:
    """The report's Markdown from its summary (see :func:`write_synthesis_report`)."""
    d = s["diagnostics"]
    h = s["headline"]
    target = s["target"]
    pct = f"{HDI_PROB:.0%}"
    lines = []
    if not d["passed"]:
        lines += [
            f"> **Sampler diagnostics failed** ({'; '.join(d['problems'])}): the numbers below are not reliable.",
            "",
        ]
    lines += [
        "# The catalogue: every technique from every source, on one scale",
        "",
        f"**Target population: {s['target_description']}** (`--target {target}`). Every probability below is the "
        f"rate at which a report of the `{target}` family would see the technique in a typical year; the sources "
        "enter through their family's systematic offset and a technique-by-family departure, never as if they "
        "measured the same thing.",
        "",
        f"Diagnostics: {d['divergences']} divergences, max R-hat {d['max_rhat']:.3f}, min bulk ESS "
        f"{d['min_ess_bulk']:.0f} over every sampled parameter and technique level ({d['chains']} chains × "
        f"{d['draws']} draws; required: {DIAGNOSTIC_LIMITS['divergences']} divergences, R-hat ≤ "
        f"{DIAGNOSTIC_LIMITS['max_rhat']}, ESS ≥ {DIAGNOSTIC_LIMITS['min_ess_bulk']}). Fit time: "
        "`reports/benchmarks.md`.",
        "",
        f"{s['counts']['techniques']} techniques, {s['counts']['observations']} counts from "
        f"{s['counts']['sources']} sources in {s['counts']['families']} families (`data/evidence/counts.csv`, "
        "`reports/evidence.md`). The model: `src/attackprev/model/synthesis.py`.",
        "",
        f"## {h['technique_id']} ({s['headline_name']})",
        "",
        f"**{_p(h['mean'])}** on the {target} scale ({pct} HDI {_interval(h)}). enterpriseLang's "
        f"`Bernoulli({h['point']:g})` is at the {h['percentile_of_point']:.1f}th percentile of this posterior; "
        f"P(p > {h['point']:g}) = {h['prob_greater']:.3f}; it is "
        f"{'inside' if h['point_inside_hdi'] else 'outside'} the {pct} HDI.",
        "",
        f"MAL: `{s['mal']}` — the step is available with this probability and then takes no time (a degenerate "
        'zero-time TTC: the web service is set up before the attack). The probability is a proxy for "the step '
        'is possible": the share of investigated intrusions that used the technique, not a property of the '
        "modelled environment; and every step of one simulated environment shares the uncertainty of these "
        "estimates, which a single number per step cannot carry.",
        "",
        "### The evidence and where each source pulls",
        "",
        f"'On the {target} scale' moves a source's own rate by its family's offset (posterior means): where that "
        "source alone would put the technique, to within its family's technique-by-technique departure σ_f.",
        "",
        f"| source | family | one trial is | k / n | rate | on the {target} scale | σ_f |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in s["pulls"]:
        lines.append(
            f"| `{r['source_id']}` | {r['family']} | {r['unit']} | {r['successes']} / {r['trials']:,} | "
            f"{_p(r['rate'])} | {_p(r['on_target_scale'])} | {r['departure_sd']:.2f} |"
        )
    lines += [
        "",
        f"### What each family would report for {h['technique_id']}",
        "",
        f"The technique's rate on each family's scale (typical year), and the {pct} predictive interval of the "
        "rate one new report of that family would give.",
        "",
        "| family | rate (mean) | HDI | new report: mean | new report: interval | observed k / n |",
        "|---|---|---|---|---|---|",
    ]
    for f, fs in h["by_family"].items():
        pred = s["headline_predictive"][f]
        obs = f"{pred['observed_successes']} / {pred['observed_trials']:,}" if pred["observed_trials"] else "—"
        lines.append(
            f"| {f} | {_p(fs['mean'])} | {_interval(fs)} | {_p(pred['mean'])} | "
            f"{_p(pred['hdi_low'])}–{_p(pred['hdi_high'])} | {obs} |"
        )
    lines += [
        "",
        *_elang_section(s),
        *_runner_up_section(s),
        "## Families",
        "",
        f"Offsets b_f are on the logit scale relative to `{s['reference']}` (b = 0): the systematic difference "
        "between what two families count. σ_f is how far a technique's rate in the family strays from its level "
        "once the offset is removed.",
        "",
        "| family | one trial is | sources | techniques | offset b_f | σ_f |",
        "|---|---|---|---|---|---|",
    ]
    for r in s["families"]:
        off = "0 (reference)" if r["offset"] is None else f"{r['offset']['mean']:+.2f} ({_interval_raw(r['offset'])})"
        lines.append(
            f"| {r['family']} | {r['unit']} | {len(r['sources'])} | {r['techniques']} | {off} | "
            f"{r['departure_sd']['mean']:.2f} ({_interval_raw(r['departure_sd'])}) |"
        )
    lines += [
        "",
        f"Year shifts within a family: sd τ = {s['tau']['mean']:.2f} ({_interval_raw(s['tau'])}). "
        + "; ".join(f"κ[{k}] = e^{v['mean']:.2f}" for k, v in s["log_kappa"].items())
        + " (year-to-year agreement of one technique's rate beyond the year's shift).",
        "",
        "## What the data cannot identify",
        "",
        f"- Only differences between families' offsets: `{s['reference']}` is the reference (b = 0).",
        f"- A technique the target family does not report ({s['counts']['without_target']} of "
        f"{s['counts']['techniques']}) gets its target-scale value from the other families, moved by their "
        "offsets, plus a departure drawn from the target family's σ: its interval is wide on purpose.",
        "- σ_f for a family with few techniques (Recorded Future, Red Canary) is largely its prior's "
        "(`SynthesisPriors.departure`).",
        "- Partial sources are taken as listing techniques at random; if a report lists only its most frequent "
        "techniques, the unlisted ones are rarer than the model assumes for them (not modelled: the copies do "
        "not state a listing threshold).",
        "- The sources overlap (ATT&CK's records and the CTID reports draw on the same public reporting), which "
        "the model does not represent: its intervals are narrower than they would be with that overlap modelled.",
        "",
        "## Files",
        "",
        f"- `catalogue.csv`: every technique on the {target} scale (mean, sd, {pct} HDI, the MAL value, whether the "
        "target family reports it, how many families and sources with k > 0, enterpriseLang's published value "
        "where one of its steps maps to the technique, and the model comparison's runner-up beside it). "
        "`attackprev export-mal` reads it.",
        "- `predictive.csv`: per technique and family, the rate a new report of that family would give (mean, "
        f"{pct} HDI) beside the observed k / n.",
        "- `summary.json`: every number of this report, with the priors, the data's SHA-256, the seed, the "
        "settings and package versions.",
        "",
        "## Reproduce",
        "",
        f"`{s['command']}` — priors: "
        + "; ".join(f"{k}: {v}" for k, v in s["record"]["priors"].items())
        + f". Seed {s['record']['settings']['seed']}, {s['record']['settings']['chains']} chains × "
        f"{s['record']['settings']['draws']} draws after {s['record']['settings']['tune']} tuning steps, target "
        f"acceptance {s['record']['settings']['target_accept']}; data SHA-256 `{s['record']['data_sha256'][:16]}…`. "
        "Versions: " + ", ".join(f"{k} {v}" for k, v in s["record"]["versions"].items()) + ".",
        "",
        "*Generated by `attackprev`; do not edit by hand.*",
    ]
    return "\n".join(lines) + "\n"


def _elang_section(s: dict) -> list[str]:
    """enterpriseLang's published probabilities against the catalogue, largest disagreements first."""
    e = s["enterpriselang"]
    if not e["techniques"]:
        return []
    pct = f"{HDI_PROB:.0%}"
    lines = [
        "## Against enterpriseLang's published values",
        "",
        f"{e['techniques']} techniques have a step in enterpriseLang whose TTC publishes a Bernoulli probability "
        f"(`data/enterpriselang_attack_steps.csv`). {e['inside']} of those values lie inside the technique's {pct} "
        f"HDI on the {s['target']} scale and {e['above_hdi']} above it; the median ratio of published to "
        f"estimated is {e['median_ratio']:.2f}. enterpriseLang averages percentages of sources that count different "
        f"populations; the estimates here are all on the {s['target']} scale (the families' offsets are below).",
        "",
        f"The {len(e['largest'])} largest disagreements (by ratio):",
        "",
        f"| technique | enterpriseLang | estimate | {pct} HDI | P(p > published) | target family reports it | steps |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in e["largest"]:
        lines.append(
            f"| {r['technique_id']} {r['name']} | {r['published_p']:g} | {_p(r['mean'])} | "
            f"{_p(r['hdi_low'])}–{_p(r['hdi_high'])} | {r['prob_above_published']:.3f} | "
            f"{'yes' if r['target_data'] else 'no'} | {r['enterpriselang_steps']} |"
        )
    return [*lines, ""]


def _runner_up_section(s: dict) -> list[str]:
    """The model comparison's runner-up beside the headline, where the two differ materially."""
    r = s.get("runner_up") or {}
    if not r.get("model"):
        return []
    pct = f"{HDI_PROB:.0%}"
    lines = [
        "## The runner-up model",
        "",
        f"The held-out model comparison (`make validation`; [validation-comparison.md](../validation-comparison.md)) "
        f"ranks `{r['model']}` second. Its value for each of {r['techniques']} techniques, from that comparison's "
        "full fit (shorter than this catalogue's; that report gives its diagnostics), is in `catalogue.csv` "
        "(`runner_up_*`). It differs materially from the estimate here (its mean "
        f"outside this {pct} HDI, or the two means a factor {r['material_ratio']:g} apart) for "
        f"**{len(r['differ'])}** of them" + (":" if r["differ"] else "."),
    ]
    if r["differ"]:
        lines += [
            "",
            f"| technique | estimate ({pct} HDI) | `{r['model']}` ({pct} HDI) | ratio | target family reports it |",
            "|---|---|---|---|---|",
        ]
        for d in r["differ"]:
            lines.append(
                f"| {d['technique_id']} {d['name']} | {_p(d['mean'])} ({_p(d['hdi_low'])}–{_p(d['hdi_high'])}) | "
                f"{_p(d['runner_up_mean'])} ({_p(d['runner_up_hdi_94_low'])}–{_p(d['runner_up_hdi_94_high'])}) | "
                f"{d['ratio']:.2f} | {'yes' if d['target_data'] else 'no'} |"
            )
    return [*lines, ""]


def _interval_raw(s: dict) -> str:
    return f"{s['hdi_94'][0]:.2f} to {s['hdi_94'][1]:.2f}"


def write_synthesis_report(
    summary: dict,
    estimates: list[dict],
    predictive: list[dict],
    out: str | Path,
    extra: dict[str, str] | None = None,
) -> Path:
    """Write ``OUT/techniques/`` atomically (all files or none). Returns the folder.

    ``extra`` maps further files' paths inside the folder (``layers/mtrends.json``, ``index.html``) to their text.
    """
    folder = Path(out) / CATALOGUE_DIR
    summary = round_floats(summary)  # the report is rendered from exactly what summary.json holds
    text = render_synthesis_markdown(summary)

    def write(tmp: Path) -> None:
        (tmp / "catalogue.md").write_text(text, encoding="utf-8")
        (tmp / "catalogue.csv").write_text(_csv(estimates, ESTIMATE_COLUMNS), encoding="utf-8")
        (tmp / "predictive.csv").write_text(_csv(predictive, PREDICTIVE_COLUMNS), encoding="utf-8")
        (tmp / "summary.json").write_text(json_text(summary), encoding="utf-8")
        for name, content in (extra or {}).items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")

    write_folder_atomic(folder, write)
    return folder


def mal_line(p: float) -> str:
    """The MAL TTC of a zero-time step available with probability ``p``."""
    return f"[Bernoulli({format_probability(p)})]"
