"""Model choice by held-out predictive performance on the target scale (M-Trends).

``python -m attackprev.validation.comparison`` compares the headline multi-source model with
the alternatives of :mod:`attackprev.model.alternatives` and writes
``reports/validation-comparison.md`` and ``reports/validation/model_comparison.csv``. Every
score is on the target family's scale (``mtrends``: the share of intrusions investigated by
incident responders), by two held-out checks:

* **Leave one source out (LOSO).** Each M-Trends year is removed in turn, each model refitted
  on the rest, and each held-out count k of n scored under the predictive distribution of a new
  report of the family (a new year's shift, the family's κ, a binomial draw), as in
  :mod:`attackprev.validation.sources`.
* **K-fold by technique.** The techniques M-Trends reports are split into K seeded folds; for
  each fold those techniques' M-Trends rows (every year) are removed — their rows of the other
  families stay — each model refitted, and each held-out count scored under the rate of that
  technique in that (known) year: the year's shift is the fit's, the technique's M-Trends cell
  is drawn from what the other families and the other techniques imply. This is the case of the
  318 techniques M-Trends does not report, whose target-scale value rests on exactly that.

Each count's log predictive density, log p(k), is summed per model and check; a model is
compared with the headline by the paired difference over the same counts, with standard error
sd(pointwise differences) × √n (the counts of one technique or one year are correlated, so that
standard error is if anything too small). Calibration is read from randomised PIT values (the
share inside the central 94 % interval).

**The choice rule** (:func:`choose`): the model with the highest total log score over both
checks is chosen; the headline, fixed before the comparison and behind every published figure,
is kept unless another model's total exceeds it by more than 2 standard errors of the paired
difference. The runner-up is the best-scoring model other than the choice. Both are then fitted
in full and compared technique by technique (:func:`runner_up_values`).

The held-out refits are shorter than a report's fit (:data:`REFIT_SETTINGS`): predictive log
scores need hundreds of draws, not thousands; each refit's diagnostics are reported.

**Running it.** Thirty refits take an hour or more on two shared cores (the ``exchangeable``
model's refits are the slowest, ~8–11 minutes each). ``--store DIR`` keeps each refit's scores and
each full fit's target draws in DIR as they finish, so an interrupted run resumes; with
``--refits-only`` a second process (``--models NAME``, ``--reverse`` to take the units last first)
fills the same store in parallel, and the main run then reads what it finds there.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from attackprev.analysis.synthesis import MATERIAL_RATIO, material_difference
from attackprev.atomic import write_bytes_atomic, write_text_atomic
from attackprev.config import DEFAULT_SEED, DIAGNOSTIC_LIMITS, HDI_PROB
from attackprev.evidence.counts import Count, CountTable, load_counts
from attackprev.inference.diagnostics import Diagnostics
from attackprev.inference.summaries import hdi
from attackprev.inference.synthesis import (
    SynthesisResult,
    SynthesisSettings,
    cell_logits,
    fit_synthesis,
    target_draws,
)
from attackprev.model.alternatives import DESCRIPTIONS, HEADLINE, MODELS
from attackprev.validation.sources import HeldOut, coverage, hold_out, score_counts

#: The target family, on whose scale every score is read.
TARGET = "mtrends"
#: Folds of the K-fold check by technique, and the seed of the split.
K_FOLDS = 5
FOLD_SEED = DEFAULT_SEED
#: Settings of each held-out refit (a report's fit: 4 × 1500 after 1000). Thirty refits had to fit in well under
#: an hour on two shared cores, where one headline refit of 4 × 600 after 600 took ~6 minutes: two chains of 400
#: draws give the 800 draws a predictive log score needs, not a converged posterior (the report gives each
#: refit's diagnostics).
REFIT_SETTINGS = SynthesisSettings(draws=400, tune=400, chains=2)
#: A report's fit, for comparison in the report.
REPORT_SETTINGS = SynthesisSettings()
#: Settings of the full fits of the choice and the runner-up, whose means and HDIs are compared technique by technique.
FULL_SETTINGS = SynthesisSettings(draws=500, tune=500, chains=4)
#: A model replaces the headline only if its total log score is higher by more than this many standard errors.
SWITCH_SE = 2.0
#: The two checks, in report order.
CHECKS = ("loso", "kfold")
CHECK_LABELS = {"loso": "leave one M-Trends year out", "kfold": f"{K_FOLDS}-fold by technique"}
#: Where the per-technique comparison goes, under the reports folder.
VALUES_CSV = Path("validation") / "model_comparison.csv"
REPORT_MD = "validation-comparison.md"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- the held-out units ---------------------------------------------------------------------------


def target_sources(table: CountTable, family: str = TARGET) -> list[str]:
    """The target family's sources (the M-Trends years), sorted."""
    return sorted(s for s in table.used_sources() if table.sources[s].family == family)


def target_techniques(table: CountTable, family: str = TARGET) -> list[str]:
    """Techniques with at least one row in the target family, sorted."""
    return sorted({c.technique_id for c in table.counts if c.family == family})


def technique_folds(
    table: CountTable, k: int = K_FOLDS, seed: int = FOLD_SEED, family: str = TARGET
) -> list[list[str]]:
    """The target family's techniques in ``k`` folds: a seeded permutation cut into near-equal parts."""
    techniques = target_techniques(table, family)
    order = np.random.default_rng(seed).permutation(len(techniques))
    return [sorted(techniques[i] for i in part) for part in np.array_split(order, k)]


def fold_rows(table: CountTable, techniques: list[str], family: str = TARGET) -> frozenset[tuple[str, str]]:
    """The (technique, source) rows of the target family held out with a fold."""
    chosen = set(techniques)
    return frozenset(
        (c.technique_id, c.source_id) for c in table.counts if c.family == family and c.technique_id in chosen
    )


# ---- predicting the held-out counts ---------------------------------------------------------------


def year_rate_draws(
    result: SynthesisResult, family: str, source_id: str, columns: list[int], seed: int = 0
) -> np.ndarray:
    """The rate of a known source (year) of ``family`` for the techniques ``columns``, draws × columns.

    θ = logit⁻¹(φ_tF + e_s) with the fit's year shift e_s, then a Beta(θκ_F, (1 − θ)κ_F) draw in a
    family with several sources; φ_tF from :func:`cell_logits` (a departure drawn from σ_F where the
    fit has no cell; a new year's shift e ~ Normal(0, τ) if the fit has no row of the year left). In a
    one-source family, θ itself.
    """
    data = result.data
    f = data.families.index(family)
    logit = cell_logits(result, family, seed_offset=3)[:, columns]
    multi = data.multi_source_families()
    if f not in multi:
        return 1.0 / (1.0 + np.exp(-logit))
    rng = np.random.default_rng([result.settings.seed, seed, f, 13])
    year_sources = [data.sources[i] for i, g in enumerate(data.source_family) if int(g) in multi]
    if source_id in year_sources:
        e = result.stacked("e")[:, year_sources.index(source_id)]
    else:  # every row of the year was held out: a new year's shift
        tau = result.stacked("tau")
        e = tau * rng.standard_normal(tau.shape)
    kappa = np.exp(result.stacked("log_kappa")[:, multi.index(f)])[:, None]
    theta = 1.0 / (1.0 + np.exp(-(logit + e[:, None])))
    return rng.beta(theta * kappa, (1.0 - theta) * kappa)


def hold_out_fold(
    table: CountTable,
    techniques: list[str],
    builder: Callable,
    settings: SynthesisSettings = REFIT_SETTINGS,
    seed: int = 0,
    family: str = TARGET,
) -> tuple[list[HeldOut], SynthesisResult]:
    """Refit without the target family's rows of ``techniques`` and score each held-out count."""
    rows = fold_rows(table, techniques, family)
    result = fit_synthesis(table, settings=settings, builder=builder, exclude_rows=rows)
    counts = [c for c in table.counts if (c.technique_id, c.source_id) in rows]
    draws: dict[tuple[str, str], np.ndarray] = {}
    for sid in sorted({c.source_id for c in counts}):
        ids = [c.technique_id for c in counts if c.source_id == sid]
        columns = [result.data.techniques.index(t) for t in ids]
        theta = year_rate_draws(result, family, sid, columns, seed=seed)
        draws |= {(t, sid): theta[:, j] for j, t in enumerate(ids)}
    rng = np.random.default_rng([settings.seed, seed, 17])

    def draws_of(c: Count) -> np.ndarray:
        return draws[(c.technique_id, c.source_id)]

    return score_counts(counts, draws_of, rng), result


# ---- scores and the choice ------------------------------------------------------------------------


@dataclass(frozen=True)
class Refit:
    """One refit's cost and health (its draws are not kept: thirty posteriors would not fit in memory)."""

    model: str
    check: str
    unit: str
    diagnostics: Diagnostics
    seconds: float


@dataclass(frozen=True)
class Paired:
    """A model's summed log score and its paired difference from the headline over the same counts."""

    total: float
    count: int
    difference: float
    difference_se: float


def _keyed(rows: list[HeldOut], tag: str = "") -> dict[tuple[str, str, str], float]:
    return {(tag, r.technique_id, r.source_id): r.log_score for r in rows}


def paired_scores(mine: dict, theirs: dict) -> Paired:
    """:func:`paired` on log scores keyed by count."""
    if set(mine) != set(theirs):
        raise ValueError("the models' held-out counts differ; paired scores need the same counts")
    keys = sorted(mine)
    diff = np.array([mine[k] - theirs[k] for k in keys])
    se = float(np.std(diff, ddof=1) * math.sqrt(len(diff))) if len(diff) > 1 else float("nan")
    return Paired(float(sum(mine.values())), len(keys), float(diff.sum()), se)


def paired(rows: list[HeldOut], headline: list[HeldOut]) -> Paired:
    """Sum of log scores of ``rows`` and its difference from ``headline``'s over the same counts.

    The difference's standard error is sd(pointwise differences) × √n.
    """
    return paired_scores(_keyed(rows), _keyed(headline))


def coverage94(rows: list[HeldOut]) -> float:
    """Share of counts whose randomised PIT lies inside the central 94 % interval."""
    inside, total, _ = coverage(rows)[0.94]
    return inside / total if total else float("nan")


def choose(held_out: dict[str, dict[str, list[HeldOut]]]) -> tuple[str, str, dict[str, Paired]]:
    """The chosen model, the runner-up and each model's total over both checks.

    ``held_out``: check -> model -> scored counts. The rule is the module docstring's: the highest
    total log score over both checks wins, but the headline is kept unless the winner's lead over
    it exceeds :data:`SWITCH_SE` standard errors of the paired difference (pointwise differences of
    both checks together). The runner-up is the best-scoring model other than the choice.
    """
    models = list(next(iter(held_out.values())))
    both = {m: {k: v for check, by in held_out.items() for k, v in _keyed(by[m], check).items()} for m in models}
    totals = {m: paired_scores(both[m], both[HEADLINE]) for m in models}
    ranked = sorted(models, key=lambda m: totals[m].total, reverse=True)
    best = ranked[0]
    lead = totals[best]
    keep = best != HEADLINE and not lead.difference > SWITCH_SE * lead.difference_se
    choice = HEADLINE if keep else best
    runner_up = next(m for m in ranked if m != choice)
    return choice, runner_up, totals


# ---- the runner-up's values -----------------------------------------------------------------------


def runner_up_values(
    headline: np.ndarray, runner_up: np.ndarray, techniques: list[str], reported: set[str]
) -> list[dict]:
    """Per technique: headline and runner-up target-scale mean and 94 % HDI, and whether they differ materially.

    ``headline``, ``runner_up``: draws × techniques of :func:`target_draws` on the same techniques.
    ``differs`` is true when the runner-up's mean lies outside the headline's 94 % HDI or the two
    means differ by more than a factor :data:`MATERIAL_RATIO`.
    """
    rows = []
    for j, t in enumerate(techniques):
        h, r = headline[:, j], runner_up[:, j]
        h_lo, h_hi = hdi(h, HDI_PROB)
        r_lo, r_hi = hdi(r, HDI_PROB)
        hm, rm = float(h.mean()), float(r.mean())
        ratio, outside, differs = material_difference(hm, h_lo, h_hi, rm)
        rows.append(
            {
                "technique_id": t,
                "target_reports": t in reported,
                "headline_mean": hm,
                "headline_hdi_low": h_lo,
                "headline_hdi_high": h_hi,
                "runner_up_mean": rm,
                "runner_up_hdi_low": r_lo,
                "runner_up_hdi_high": r_hi,
                "ratio": ratio,
                "outside_hdi": outside,
                "differs": differs,
            }
        )
    return rows


def values_csv(rows: list[dict], headline: str, runner_up: str) -> str:
    """The per-technique comparison as CSV text (floats to 6 significant figures)."""
    out = io.StringIO()
    fields = ["technique_id", "target_reports", "headline_model", "runner_up_model", *list(rows[0])[2:]]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        cells = {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()}
        writer.writerow(cells | {"headline_model": headline, "runner_up_model": runner_up})
    return out.getvalue()


# ---- the whole comparison -------------------------------------------------------------------------


@dataclass
class ComparisonResult:
    """Everything the report needs (no posterior is kept)."""

    models: list[str]
    held_out: dict[str, dict[str, list[HeldOut]]]
    refits: list[Refit]
    choice: str
    runner_up: str
    totals: dict[str, Paired]
    values: list[dict]
    full_fits: dict[str, Refit]
    settings: SynthesisSettings
    full_settings: SynthesisSettings
    folds: int
    loso_sources: list[str]
    seconds: dict[str, float] = field(default_factory=dict)


def _refit(model: str, check: str, unit: str, result: SynthesisResult) -> Refit:
    d = result.diagnostics
    refit = Refit(model, check, unit, d, sum(result.seconds.values()))
    _log(f"  {refit.seconds:.0f} s; divergences {d.divergences}, R-hat {d.max_rhat:.3f}, ESS {d.min_ess_bulk:.0f}")
    return refit


def _unit_path(store: Path, table: CountTable, model: str, check: str, unit: str, settings: SynthesisSettings) -> Path:
    """Where one refit's scored counts are kept: named by what decides them (data, model, unit, settings)."""
    key = json.dumps([table.digest, model, check, unit, asdict(settings)], sort_keys=True)
    return store / f"{model}-{check}-{unit.replace(' ', '')}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"


def _save_unit(path: Path, rows: list[HeldOut], refit: Refit) -> None:
    record = {"rows": [asdict(r) for r in rows], "refit": asdict(refit)}
    write_text_atomic(path, json.dumps(record))


def _load_unit(path: Path) -> tuple[list[HeldOut], Refit]:
    record = json.loads(path.read_text())
    refit = dict(record["refit"])
    refit["diagnostics"] = Diagnostics(**refit["diagnostics"])
    return [HeldOut(**r) for r in record["rows"]], Refit(**refit)


def _run_unit(
    store: Path | None,
    table: CountTable,
    model: str,
    check: str,
    unit: str,
    settings: SynthesisSettings,
    fit: Callable[[], tuple[list[HeldOut], SynthesisResult]],
) -> tuple[list[HeldOut], Refit]:
    """One held-out refit, or its saved scores from an earlier run when ``store`` has them."""
    path = _unit_path(store, table, model, check, unit, settings) if store else None
    if path and path.exists():
        _log(f"{model}: {check} {unit} from {path}")
        return _load_unit(path)
    _log(f"{model}: holding out {unit} ({check})")
    rows, result = fit()
    refit = _refit(model, check, unit, result)
    if path:
        _save_unit(path, rows, refit)
    return rows, refit


def run_held_out(
    table: CountTable,
    models: list[str],
    loso_sources: list[str],
    folds: list[list[str]],
    settings: SynthesisSettings,
    store: Path | None = None,
    reverse: bool = False,
) -> tuple[dict[str, dict[str, list[HeldOut]]], list[Refit]]:
    """Every held-out refit of every model: check -> model -> scored counts, and each refit's health.

    With ``store`` (a folder), each refit's scored counts are saved there as it finishes and reused by a
    later run with the same data, model, held-out unit and settings, so an interrupted run resumes;
    ``reverse`` takes each model's units last first, so that a second process sharing ``store`` meets
    the first halfway. The returned scores are in the forward order either way.
    """
    held: dict[str, dict[str, list[HeldOut]]] = {check: {m: [] for m in models} for check in CHECKS}
    refits = []
    for m in models:
        units = [
            ("loso", sid, partial(hold_out, table, sid, settings=settings, seed=i, builder=MODELS[m]))
            for i, sid in enumerate(loso_sources)
        ] + [
            ("kfold", f"fold {i + 1}", partial(hold_out_fold, table, fold, MODELS[m], settings=settings, seed=i))
            for i, fold in enumerate(folds)
        ]
        done = {}
        for check, unit, fit in reversed(units) if reverse else units:
            done[(check, unit)] = _run_unit(store, table, m, check, unit, settings, fit)
        for check, unit, _ in units:
            rows, refit = done[(check, unit)]
            held[check][m] += rows
            refits.append(refit)
    return held, refits


def _full_target(
    table: CountTable, model: str, settings: SynthesisSettings, store: Path | None = None
) -> tuple[np.ndarray, list[str], Refit]:
    """A full fit's target-scale draws (draws × techniques), its techniques and health; kept in ``store`` if given."""
    path = _unit_path(store, table, model, "full", "all data", settings) if store else None
    if path and path.exists() and path.with_suffix(".npy").exists():
        _log(f"{model}: full fit from {path}")
        record = json.loads(path.read_text())
        refit = dict(record["refit"]) | {"diagnostics": Diagnostics(**record["refit"]["diagnostics"])}
        return np.load(path.with_suffix(".npy")), record["techniques"], Refit(**refit)
    _log(f"{model}: full fit")
    result = fit_synthesis(table, settings=settings, builder=MODELS[model])
    draws, techniques = target_draws(result, TARGET), result.data.techniques
    refit = _refit(model, "full", "all data", result)
    if path:
        buffer = io.BytesIO()
        np.save(buffer, draws)
        write_bytes_atomic(path.with_suffix(".npy"), buffer.getvalue())
        write_text_atomic(path, json.dumps({"techniques": techniques, "refit": asdict(refit)}))
    return draws, techniques, refit


def run_comparison(
    table: CountTable,
    models: list[str] | None = None,
    loso_sources: list[str] | None = None,
    k: int = K_FOLDS,
    settings: SynthesisSettings = REFIT_SETTINGS,
    full_settings: SynthesisSettings | None = None,
    store: Path | None = None,
) -> ComparisonResult:
    """Both held-out checks for every model, the choice, and full fits of the choice and the runner-up.

    Parameters
    ----------
    table
        From :func:`attackprev.evidence.counts.load_counts`.
    models
        Names in :data:`attackprev.model.alternatives.MODELS`; the headline is always included.
    loso_sources
        Target-family sources to hold out (default: every one).
    k
        Folds of the check by technique.
    settings, full_settings
        Of each held-out refit, and of the two full fits (default :data:`FULL_SETTINGS`).
    store
        A folder where each held-out refit's scores are saved and from which a later run resumes.
    """
    models = [HEADLINE, *[m for m in (models or MODELS) if m != HEADLINE]]
    full_settings = full_settings or FULL_SETTINGS
    loso_sources = loso_sources if loso_sources is not None else target_sources(table)
    folds = technique_folds(table, k)
    start = time.perf_counter()
    held, refits = run_held_out(table, models, loso_sources, folds, settings, store)
    held_out_at = time.perf_counter()
    choice, runner_up, totals = choose(held)
    first, techniques, first_fit = _full_target(table, choice, full_settings, store)
    second, _, second_fit = _full_target(table, runner_up, full_settings, store)
    values = runner_up_values(first, second, techniques, set(target_techniques(table)))
    return ComparisonResult(
        models=models,
        held_out=held,
        refits=refits,
        choice=choice,
        runner_up=runner_up,
        totals=totals,
        values=values,
        full_fits={choice: first_fit, runner_up: second_fit},
        settings=settings,
        full_settings=full_settings,
        folds=k,
        loso_sources=loso_sources,
        seconds={"held_out": held_out_at - start, "full": time.perf_counter() - held_out_at},
    )


# ---- the report -----------------------------------------------------------------------------------


def _diff(p: Paired, model: str) -> str:
    return "—" if model == HEADLINE else f"{p.difference:+.1f} ± {p.difference_se:.1f}"


def _score_table(result: ComparisonResult) -> list[str]:
    lines = [
        "| model | LOSO log score | LOSO Δ vs headline ± SE | LOSO 94 % coverage | K-fold log score | "
        "K-fold Δ ± SE | K-fold 94 % coverage | total | total Δ ± SE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in result.models:
        cells = []
        for check in CHECKS:
            rows = result.held_out[check][m]
            p = paired(rows, result.held_out[check][HEADLINE])
            cells += [f"{p.total:.1f} ({p.count})", _diff(p, m), f"{coverage94(rows):.3f}"]
        t = result.totals[m]
        lines.append(f"| `{m}` | {' | '.join(cells)} | {t.total:.1f} | {_diff(t, m)} |")
    return lines


def _diagnostics_table(result: ComparisonResult) -> list[str]:
    lines = [
        "| model | fit | held out | divergences | max R-hat | min bulk ESS | seconds | passes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in [*result.refits, *result.full_fits.values()]:
        d = r.diagnostics
        lines.append(
            f"| `{r.model}` | {r.check} | {r.unit} | {d.divergences} | {d.max_rhat:.3f} | {d.min_ess_bulk:.0f} | "
            f"{r.seconds:.0f} | {'yes' if d.passed else 'no'} |"
        )
    return lines


def _failures(result: ComparisonResult) -> list[str]:
    lines = []
    for m in result.models:
        fits = [r for r in [*result.refits, *result.full_fits.values()] if r.model == m]
        failed = [r for r in fits if not r.diagnostics.passed]
        if not failed:
            lines.append(f"- `{m}`: all {len(fits)} fits pass the diagnostics.")
            continue
        worst = max(failed, key=lambda r: r.diagnostics.max_rhat)
        lines.append(
            f"- `{m}`: **{len(failed)} of {len(fits)} fits fail the diagnostics** (divergences > "
            f"{DIAGNOSTIC_LIMITS['divergences']}, R-hat > {DIAGNOSTIC_LIMITS['max_rhat']} or bulk ESS < "
            f"{DIAGNOSTIC_LIMITS['min_ess_bulk']}); worst: {worst.check} {worst.unit}, "
            f"{'; '.join(worst.diagnostics.problems)}. Its scores carry Monte Carlo error beyond a healthy fit's."
        )
    return lines


def _values_lines(result: ComparisonResult) -> list[str]:
    values = result.values
    differ = [v for v in values if v["differs"]]
    outside = sum(v["outside_hdi"] for v in values)
    ratio = sum(max(v["ratio"], 1 / v["ratio"]) > MATERIAL_RATIO for v in values)
    reported = sum(v["target_reports"] for v in differ)
    lines = [
        f"**{len(differ)} of {len(values)} techniques differ materially** between `{result.choice}` and the "
        f"runner-up `{result.runner_up}` on the {TARGET} scale ({reported} of them reported by {TARGET}, "
        f"{len(differ) - reported} not): the runner-up's mean lies outside the headline's 94 % HDI for {outside}, "
        f"and the means differ by more than a factor {MATERIAL_RATIO:g} for {ratio}. Every technique's pair is in "
        f"`reports/{VALUES_CSV.as_posix()}`. The ten that differ most (by the ratio of means):",
        "",
        f"| technique | {TARGET} reports it | `{result.choice}` mean (94 % HDI) | `{result.runner_up}` mean (94 % HDI) "
        "| ratio |",
        "|---|---|---|---|---|",
    ]
    top = sorted(differ, key=lambda v: abs(math.log(v["ratio"])), reverse=True)[:10]
    for v in top:
        lines.append(
            f"| {v['technique_id']} | {'yes' if v['target_reports'] else 'no'} | {v['headline_mean']:.4f} "
            f"({v['headline_hdi_low']:.4f}–{v['headline_hdi_high']:.4f}) | {v['runner_up_mean']:.4f} "
            f"({v['runner_up_hdi_low']:.4f}–{v['runner_up_hdi_high']:.4f}) | {v['ratio']:.2f} |"
        )
    return lines


def comparison_section(result: ComparisonResult) -> list[str]:
    """The "Model choice" section: scores, the choice and rule, the runner-up's differing values, diagnostics."""
    s, f = result.settings, result.full_settings
    n_loso = len(result.held_out["loso"][HEADLINE])
    n_kfold = len(result.held_out["kfold"][HEADLINE])
    lead = result.totals[result.choice]
    lines = [
        "## Model choice",
        "",
        "Models compared (`src/attackprev/model/alternatives.py`):",
        "",
        *[f"- `{m}`: {DESCRIPTIONS[m]}" for m in result.models],
        "",
        f"Scores are log predictive densities of held-out {TARGET} counts (higher is better): leave one source out "
        f"({len(result.loso_sources)} {TARGET} years, {n_loso} counts; a new year's shift) and {result.folds}-fold by "
        f"technique (the {TARGET} rows of a fold's techniques held out, their other families kept; {n_kfold} counts, "
        "the year's shift known). Δ is the paired difference from the headline over the same counts, with standard "
        "error sd(pointwise Δ) × √n; counts of one year or technique are correlated, so these errors are if anything "
        "too small. Coverage: share of randomised PIT values inside the central 94 % interval (nominal 0.94). "
        f"Each held-out refit: {s.chains} chains × {s.draws} draws after {s.tune} tuning steps, seed {s.seed}; the "
        f"full fits of the choice and the runner-up: {f.chains} × {f.draws} after {f.tune} (a report's fit: "
        f"{REPORT_SETTINGS.chains} × {REPORT_SETTINGS.draws} after {REPORT_SETTINGS.tune}). These are shorter than a "
        "report's fit to keep the comparison's cost within an hour on two shared cores; the diagnostics below say "
        "what that costs.",
        "",
        *_score_table(result),
        "",
        f"**Rule.** The model with the highest total log score over both checks is chosen, but the headline "
        f"(`{HEADLINE}`, fixed before this comparison) is kept unless another model's total exceeds it by more than "
        f"{SWITCH_SE:g} standard errors of the paired difference. The runner-up is the best-scoring other model.",
        "",
        f"**Choice: `{result.choice}`**"
        + (
            ""
            if result.choice == HEADLINE
            else f" (total {lead.difference:+.1f} ± {lead.difference_se:.1f} over the headline)"
        )
        + f"; runner-up: `{result.runner_up}` (total {result.totals[result.runner_up].total:.1f}).",
        "",
        *_values_lines(result),
        "",
        "### Diagnostics of every fit",
        "",
        f"With {s.chains} × {s.draws} draws a refit reaches the bulk-ESS threshold of "
        f"{DIAGNOSTIC_LIMITS['min_ess_bulk']} only if every quantity mixes at better than "
        f"{DIAGNOSTIC_LIMITS['min_ess_bulk'] / (s.chains * s.draws):.2g} effective draws per draw; the headline's "
        "slowest (a family's departure scale) mixes at about 0.08 in a report's fit, so its refits fail that threshold "
        "by design. What a failing refit costs is Monte Carlo error in its log scores, small against the differences "
        "between models when those are tens of log units; an R-hat well above 1.01 says the two chains disagree, "
        "and the refit's scores are then less certain than their standard error says.",
        "",
        *_failures(result),
        "",
        *_diagnostics_table(result),
        "",
        f"Time, compiling and sampling summed over fits: held-out refits "
        f"{sum(r.seconds for r in result.refits) / 60:.1f} min, full fits "
        f"{sum(r.seconds for r in result.full_fits.values()) / 60:.1f} min (on two cores shared with other jobs).",
    ]
    return lines


def render(result: ComparisonResult) -> str:
    """``reports/validation-comparison.md``."""
    fits = [*result.refits, *result.full_fits.values()]
    failed = sum(not r.diagnostics.passed for r in fits)
    status = (
        [
            f"> **{failed} of {len(fits)} fits fail the sampler diagnostics** (shorter settings than a report's fit; "
            "the section on sampler health says which): the scores and the runner-up's values carry Monte Carlo "
            "error beyond a healthy fit's.",
            "",
        ]
        if failed
        else []
    )
    lines = [
        *status,
        "# Model choice for the multi-source synthesis",
        "",
        "Generated by `python -m attackprev.validation.comparison` (`src/attackprev/validation/comparison.py` says "
        "how).",
        "",
        *comparison_section(result),
        "",
        "*Generated by `attackprev`; do not edit by hand.*",
    ]
    return "\n".join(lines) + "\n"


def write_outputs(result: ComparisonResult, out: Path) -> list[Path]:
    """Write the report and the per-technique CSV under the reports folder ``out``, atomically."""
    md, values = out / REPORT_MD, out / VALUES_CSV
    write_text_atomic(values, values_csv(result.values, result.choice, result.runner_up))
    write_text_atomic(md, render(result))
    return [md, values]


def comparison_record(result, table) -> dict:
    """The model comparison's figures (:mod:`attackprev.validation.comparison`)."""
    from dataclasses import asdict

    return {
        "data_sha256": table.digest,
        "headline": HEADLINE,
        "choice": result.choice,
        "runner_up": result.runner_up,
        "totals": {m: asdict(t) for m, t in result.totals.items()},
        "fits": len(fits := [*result.refits, *result.full_fits.values()]),
        "fits_failing_diagnostics": sum(not r.diagnostics.passed for r in fits),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write its report."""
    parser = argparse.ArgumentParser(
        prog="python -m attackprev.validation.comparison", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("reports"), help="reports folder")
    parser.add_argument("--models", nargs="*", choices=list(MODELS), help="models (default: all)")
    parser.add_argument("--store", type=Path, help="folder to save each refit's scores in and resume from")
    parser.add_argument(
        "--refits-only", action="store_true", help="only the held-out refits into --store (to run models in parallel)"
    )
    parser.add_argument(
        "--reverse", action="store_true", help="with --refits-only: each model's held-out units last first"
    )
    args = parser.parse_args(argv)
    table = load_counts()
    if args.refits_only:
        if not args.store:
            parser.error("--refits-only needs --store")
        models = list(args.models or MODELS)
        run_held_out(
            table, models, target_sources(table), technique_folds(table), REFIT_SETTINGS, args.store, args.reverse
        )
        return 0
    result = run_comparison(table, models=args.models, store=args.store)
    for path in write_outputs(result, args.out):
        _log(f"wrote {path}")
    if not args.models:  # the figures of the whole comparison, for reports/validation.md
        from attackprev.validation.summary import write_record

        _log(f"wrote {write_record(args.out, 'comparison', comparison_record(result, table))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
