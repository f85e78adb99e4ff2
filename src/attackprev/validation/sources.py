"""Held-out checks of the multi-source synthesis: leave one source out, and forecast M-Trends.

``python -m attackprev.validation.sources`` refits :mod:`attackprev.model.synthesis` once per
held-out source and writes ``reports/validation-sources.md``:

* **Leave one source out.** Each source of a family with several sources (the M-Trends and
  CISA years) is removed, the model refitted on the rest, and every count of the held-out
  source predicted: k of n under the predictive distribution of a new report of its family
  (a new year's shift, the family's κ, a binomial draw). Calibration is read from randomised
  PIT values, u = F(k − 1) + V·(F(k) − F(k − 1)) with V uniform, which are uniform under a
  calibrated model even for counts: the share with u inside the central 50 / 80 / 94 % is the
  coverage of those intervals. A family seen through one source only cannot be held out: the
  model would know nothing of its offset.
* **Forecast.** The latest M-Trends year, predicted from everything else, scored by log
  predictive density against two baselines: the previous year's rate for the technique and
  enterpriseLang's mean of published percentages, each used as a binomial rate.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pymc as pm
import scipy.special
import scipy.stats

from attackprev.atomic import write_text_atomic
from attackprev.config import DIAGNOSTIC_LIMITS, NOTES_CSV
from attackprev.evidence.counts import Count, CountTable, load_counts
from attackprev.inference.synthesis import SynthesisResult, SynthesisSettings, fit_synthesis, predictive_draws
from attackprev.model.priors import SynthesisPriors
from attackprev.model.synthesis import SynthesisData, build_synthesis_model

LEVELS = (0.5, 0.8, 0.94)
#: Settings of each held-out refit: a report's fit's, so that each refit can pass the diagnostics a report's must
#: (at 4 × 500 draws all ten failed them: R-hat up to 1.048, bulk ESS 80–188).
HELD_OUT_SETTINGS = SynthesisSettings()


@dataclass(frozen=True)
class HeldOut:
    """One held-out count and its prediction."""

    source_id: str
    technique_id: str
    successes: int
    trials: int
    pit: float
    log_score: float
    predicted_rate: float


def _predictive_counts(theta: np.ndarray, k: int, n: int) -> tuple[float, float, float]:
    """F(k − 1), F(k) and log p(k) of a count under a mixture of binomials over draws of θ."""
    theta = np.clip(theta, 1e-12, 1.0 - 1e-12)  # a Beta draw can underflow to 0
    below = float(scipy.stats.binom.cdf(k - 1, n, theta).mean()) if k > 0 else 0.0
    at = float(scipy.stats.binom.cdf(k, n, theta).mean())
    log_pmf = scipy.special.logsumexp(scipy.stats.binom.logpmf(k, n, theta)) - math.log(theta.size)
    return below, at, float(log_pmf)


def score_counts(
    counts: list[Count], draws_of: Callable[[Count], np.ndarray], rng: np.random.Generator
) -> list[HeldOut]:
    """Each held-out count scored against its predictive draws of the rate, ``draws_of(count)``:
    log predictive density and randomised PIT (one uniform of ``rng`` per count, in order)."""
    rows = []
    for c in counts:
        draws = draws_of(c)
        below, at, log_score = _predictive_counts(draws, c.successes, c.trials)
        rows.append(
            HeldOut(
                c.source_id,
                c.technique_id,
                c.successes,
                c.trials,
                below + rng.uniform() * (at - below),
                log_score,
                float(draws.mean()),
            )
        )
    return rows


def hold_out(
    table: CountTable,
    source_id: str,
    settings: SynthesisSettings = HELD_OUT_SETTINGS,
    seed: int = 0,
    builder: Callable[[SynthesisData, SynthesisPriors], pm.Model] = build_synthesis_model,
) -> tuple[list[HeldOut], SynthesisResult]:
    """Refit ``builder``'s model (default the headline) without ``source_id`` and predict each of its counts."""
    family = table.sources[source_id].family
    if builder is build_synthesis_model:  # the headline's refits are saved and reused, like its full fit
        from attackprev.inference.synthesis_cache import cached_fit_synthesis

        result, _ = cached_fit_synthesis(table, settings=settings, exclude_sources=(source_id,))
    else:
        result = fit_synthesis(table, settings=settings, exclude_sources=(source_id,), builder=builder)
    theta = predictive_draws(result, family)
    rng = np.random.default_rng([settings.seed, seed, 11])
    counts = [c for c in table.counts if c.source_id == source_id]
    return score_counts(counts, lambda c: theta[:, result.data.techniques.index(c.technique_id)], rng), result


def coverage(rows: list[HeldOut]) -> dict[float, tuple[int, int, float]]:
    """Per level: (inside, total, binomial standard error of the nominal share)."""
    pit = np.array([r.pit for r in rows])
    out = {}
    for q in LEVELS:
        inside = int(np.sum((pit >= (1 - q) / 2) & (pit <= (1 + q) / 2)))
        out[q] = (inside, len(pit), math.sqrt(q * (1 - q) / max(len(pit), 1)))
    return out


def held_out_sources(table: CountTable) -> list[str]:
    """Sources that can be held out: members of families with more than one source."""
    by_family: dict[str, list[str]] = {}
    for sid in table.used_sources():
        by_family.setdefault(table.sources[sid].family, []).append(sid)
    return sorted(s for members in by_family.values() if len(members) > 1 for s in members)


def elang_means(path: Path = NOTES_CSV) -> dict[str, float]:
    """enterpriseLang's published probability per technique (its Bernoulli value), current IDs."""
    from attackprev.evidence.attack import current_id
    from attackprev.evidence.enterpriselang import load_notes

    out = {}
    for note in load_notes(path):
        p = note.published_p
        if p is not None and note.technique_id.startswith("T"):  # technique notes (not mitigations)
            out.setdefault(current_id(note.technique_id), p)
    return out


def forecast(table: CountTable, rows: list[HeldOut], latest: str, previous: str) -> dict:
    """The model's log score on the latest year against the baselines, on the rows each can score."""
    prev = {c.technique_id: c.rate for c in table.counts if c.source_id == previous}
    elang = elang_means()
    out = {}
    for name, rates in (("previous year", prev), ("enterpriseLang", elang)):
        common = [r for r in rows if r.technique_id in rates]
        base = []
        for r in common:
            p = min(max(rates[r.technique_id], 0.5 / r.trials), 1 - 0.5 / r.trials)
            base.append(float(scipy.stats.binom.logpmf(r.successes, r.trials, p)))
        model = [r.log_score for r in common]
        out[name] = {
            "rows": len(common),
            "model": float(np.sum(model)),
            "baseline": float(np.sum(base)),
            "difference": float(np.sum(model) - np.sum(base)),
            "difference_se": float(np.std(np.subtract(model, base), ddof=1) * math.sqrt(len(common)))
            if len(common) > 1
            else float("nan"),
        }
    return out


#: Alternative priors of the sensitivity check: each changes one prior of SynthesisPriors.
PRIOR_ALTERNATIVES = {
    "default": {},
    "departure Gamma(2, 1): wider departures (mean 2)": {"departure": (2.0, 1.0)},
    "departure Gamma(4, 8): narrower departures (mean 0.5)": {"departure": (4.0, 8.0)},
    "family offsets Normal(0, 1)": {"family_offset_sd": 1.0},
    "level mean Normal(-2, 1.5), level sd HalfNormal(1)": {"level_mean": (-2.0, 1.5), "level_sd": 1.0},
    "data: every assumed n of M-Trends 2021-2024 doubled": {"double_assumed_n": True},
}


def prior_sensitivity(table: CountTable, technique_id: str = "T1102", target: str = "mtrends") -> list[dict]:
    """The headline of ``technique_id`` on the target scale under each alternative prior (full fits, saved
    and reused through the fit cache: the default row is the headline's own fit)."""
    from dataclasses import replace

    from attackprev.inference.summaries import draw_summary
    from attackprev.inference.synthesis import target_draws
    from attackprev.inference.synthesis_cache import cached_fit_synthesis
    from attackprev.model.priors import SynthesisPriors

    rows = []
    doubled = load_counts(
        trials_override={
            sid: 2 * src.trials
            for sid, src in table.sources.items()
            if src.trials_basis == "assumed" and src.family == "mtrends" and sid in table.used_sources()
        }
    )
    for name, change in PRIOR_ALTERNATIVES.items():
        print(f"prior sensitivity: {name}", file=sys.stderr)
        change = dict(change)
        data = doubled if change.pop("double_assumed_n", False) else table
        result, _ = cached_fit_synthesis(data, priors=replace(SynthesisPriors(), **change))
        x = target_draws(result, target)[:, result.data.techniques.index(technique_id)]
        d = result.diagnostics
        rows.append(
            {
                "prior": name,
                **draw_summary(x),
                "prob_greater": float((x > 0.0445).mean()),
                "diagnostics": f"{d.divergences}, {d.max_rhat:.3f}, {d.min_ess_bulk:.0f}",
                "passed": d.passed,
            }
        )
    return rows


def render(
    results: dict[str, list[HeldOut]],
    fits: dict[str, SynthesisResult],
    fc: dict,
    latest: str,
    priors: list[dict] | None = None,
) -> str:
    """``reports/validation-sources.md``."""
    every = [r for rows in results.values() for r in rows]
    cov = coverage(every)
    failed = [sid for sid, fit in fits.items() if not fit.diagnostics.passed]
    lines = []
    prior_failed = [p["prior"] for p in priors or [] if not p.get("passed", True)]
    if prior_failed:
        lines += [
            f"> **{len(prior_failed)} of {len(priors)} prior-sensitivity fits fail the sampler diagnostics** "
            f"({', '.join(prior_failed)}); their rows below give the figures.",
            "",
        ]
    if failed:
        lines += [
            f"> **{len(failed)} of {len(fits)} held-out refits fail the sampler diagnostics** (R-hat > "
            f"{DIAGNOSTIC_LIMITS['max_rhat']} or bulk ESS < {DIAGNOSTIC_LIMITS['min_ess_bulk']}; 0 divergences in "
            "each unless the table says otherwise): their predictive intervals carry Monte Carlo error beyond "
            "what a healthy fit would have. The per-source table gives each refit's figures.",
            "",
        ]
    lines += [
        "# Held-out checks of the multi-source synthesis",
        "",
        "Generated by `python -m attackprev.validation.sources` (`src/attackprev/validation/sources.py` says how).",
        f"Each refit: {HELD_OUT_SETTINGS.chains} chains × {HELD_OUT_SETTINGS.draws} draws after "
        f"{HELD_OUT_SETTINGS.tune} tuning steps, seed {HELD_OUT_SETTINGS.seed}.",
        "",
        "## Leave one source out",
        "",
        f"{len(results)} sources held out one at a time (the years of M-Trends and CISA; a family seen through one "
        f"source cannot be held out), {len(every)} held-out counts predicted.",
        "",
        "| interval | counts inside | share | nominal | within 2 SE |",
        "|---|---|---|---|---|",
    ]
    for q, (inside, total, se) in cov.items():
        share = inside / total if total else float("nan")
        lines.append(
            f"| {q:.0%} | {inside} of {total} | {share:.3f} | {q:.2f} ± {2 * se:.3f} | "
            f"{'yes' if abs(share - q) <= 2 * se else 'no'} |"
        )
    lines += [
        "",
        "The standard errors treat the counts as independent; counts of one held-out source share its year's "
        "shift, so the real uncertainty of each share is larger.",
        "",
        "| held-out source | counts | 50 % | 80 % | 94 % | refit: divergences, max R-hat, min ESS |",
        "|---|---|---|---|---|---|",
    ]
    for sid, rows in results.items():
        c = coverage(rows)
        d = fits[sid].diagnostics
        cells = " | ".join(f"{c[q][0] / c[q][1]:.2f}" for q in LEVELS)
        lines.append(f"| `{sid}` | {len(rows)} | {cells} | {d.divergences}, {d.max_rhat:.3f}, {d.min_ess_bulk:.0f} |")
    lines += [
        "",
        f"## Forecast: `{latest}` from everything else",
        "",
        "Log predictive density of the held-out year's counts (higher is better), summed over the counts each "
        "baseline can score; a baseline's rate is used as a binomial probability (clipped to [0.5/n, 1 − 0.5/n]).",
        "",
        "| baseline | counts | model | baseline | model − baseline (± 2 SE) | model better |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in fc.items():
        lines.append(
            f"| {name} | {f['rows']} | {f['model']:.1f} | {f['baseline']:.1f} | {f['difference']:+.1f} "
            f"(± {2 * f['difference_se']:.1f}) | {'yes' if f['difference'] > 0 else 'no'} |"
        )
    if priors:
        lines += [
            "",
            "## Prior and assumption sensitivity of the T1102 headline",
            "",
            "Full fits (default settings) with one prior, or the assumed n of M-Trends 2021–2024, changed at a time; "
            "T1102 on the mtrends scale.",
            "",
            "| prior | mean | 94 % HDI | P(p > 0.0445) | divergences, max R-hat, min ESS |",
            "|---|---|---|---|---|",
        ]
        for r in priors:
            lines.append(
                f"| {r['prior']} | {r['mean']:.4f} | {r['hdi_94'][0]:.4f}–{r['hdi_94'][1]:.4f} | "
                f"{r['prob_greater']:.3f} | {r['diagnostics']} |"
            )
    lines += ["", "*Generated by `attackprev`; do not edit by hand.*"]
    return "\n".join(lines) + "\n"


def sources_record(table, results: dict, fits: dict, fc: dict, latest: str, priors: list[dict] | None) -> dict:
    """The held-out-source check's figures (:mod:`attackprev.validation.sources`)."""
    every = [r for rows in results.values() for r in rows]
    return {
        "data_sha256": table.digest,
        "loso": {f"{q:g}": list(v) for q, v in coverage(every).items()}
        | {"refits": len(fits), "refits_failing_diagnostics": sum(not f.diagnostics.passed for f in fits.values())},
        "forecast_source": latest,
        "forecast": fc,
        "priors": priors or [],
    }


def main(argv: list[str] | None = None) -> int:
    """Run every held-out refit and write the report."""
    parser = argparse.ArgumentParser(prog="python -m attackprev.validation.sources", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports"), help="folder of validation-sources.md")
    parser.add_argument("--sources", nargs="*", help="hold out only these sources (default: every one that can be)")
    args = parser.parse_args(argv)
    table = load_counts()
    sources = args.sources or held_out_sources(table)
    results, fits = {}, {}
    for i, sid in enumerate(sources):
        print(f"holding out {sid} ({i + 1}/{len(sources)})", file=sys.stderr)
        results[sid], fits[sid] = hold_out(table, sid, seed=i)
    mtrends = sorted(s for s in held_out_sources(table) if table.sources[s].family == "mtrends")
    latest, previous = mtrends[-1], mtrends[-2]
    fc = forecast(table, results[latest], latest, previous) if latest in results else {}
    priors = prior_sensitivity(table) if not args.sources else None
    path = args.out / "validation-sources.md"
    write_text_atomic(path, render(results, fits, fc, latest, priors))
    if not args.sources:  # a partial run is not the check: its figures are not saved
        from attackprev.validation.summary import write_record

        write_record(args.out, "sources", sources_record(table, results, fits, fc, latest, priors))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
