# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Which sources to trust for T1102 Web Service?
#
# The default model of `attackprev` is the **multi-source synthesis** (`src/attackprev/model/synthesis.py`): every
# source belongs to a *family* (a publisher or data set: M-Trends, ATT&CK groups, software and campaigns, CTID's
# TIE reports, CISA advisories, the SoK malware study, Red Canary, Recorded Future), and each family counts a
# different population. A technique t has a level a_t; family f sees it shifted by the family's offset b_f and
# by a technique-by-family departure d_tf ~ Normal(0, σ_f). A technique's probability is stated on the scale of a
# *target* family: by default `mtrends`, the share of intrusions investigated by incident responders in which the
# technique is seen.
#
# This notebook explores which sources T1102's value rests on, and how it moves when a threat modeller trusts
# them differently:
#
# 1. T1102's evidence, family by family and source by source, and the headline against enterpriseLang's
#    published value;
# 2. the target population: T1102 on every family's scale, and what a new report of each family would show;
# 3. how much each family's data count for T1102 (weights), and where each source pulls;
# 4. leave one family out: refits without each family;
# 5. the single-technique exploration of **the note's two sources only** (M-Trends 2020 and the SoK study, the
#    figures enterpriseLang averaged): source weights, M-Trends' unknown denominator, and the weights that give
#    back the published value. That part uses the exact single-technique engine, not the default model.
#
# Everything is computed by the `attackprev` package. The default fit is the one `make report` saves in the
# user's cache; the leave-one-family-out refits are shorter and cached too. Set `ATTACKPREV_NOTEBOOK_FAST=1` for a
# quick, coarse run on a subset of techniques (the tests do); its numbers are not for reading.
#
# The outputs shown are from a full run, made by `make report` (`jupyter execute --inplace notebooks/*.ipynb`).

# %%
from dataclasses import asdict

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from attackprev.analysis.families import (
    FAST_LOFO_FAMILIES,
    PRIOR,
    droppable_families,
    family_sources,
    family_weights,
    headline_by_target,
    notebook_inputs,
)
from attackprev.analysis.synthesis import (
    source_pulls,
    target_description,
    technique_headline,
    technique_predictive,
)
from attackprev.analysis.weighting import (
    Estimate,
    bisect,
    complete_pooling,
    denominator_sweep,
    fast_mode,
    hierarchical,
    interval,
    markdown_table,
    mean_of_percentages,
    no_pooling,
    pooled_rate,
    weight_sweep,
)
from attackprev.config import DEFAULT_TARGET, HDI_PROB
from attackprev.evidence.attack import attack_table
from attackprev.evidence.enterpriselang import published_steps
from attackprev.evidence.tables import load_evidence
from attackprev.inference.exact import fit_exact
from attackprev.inference.synthesis_cache import cached_fit_synthesis
from attackprev.model.priors import DEFAULT_PRIOR, PRIORS

FAST = fast_mode()
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (8, 4), "axes.grid": True})
PCT = f"{100 * HDI_PROB:.0f} %"

TECHNIQUE = "T1102"
OTHERS = ["T1059", "T1078", "T1083", "T1105", "T1566"]  # followed in the leave-one-family-out refits
TARGET = DEFAULT_TARGET
published = published_steps()
PUBLISHED = published[TECHNIQUE][0].p
NAME = attack_table()[TECHNIQUE].display_name

inputs = notebook_inputs(FAST, published)
table = inputs.table
result, origin = cached_fit_synthesis(table, settings=inputs.settings)
data = result.data
POPULATION = target_description(result, table, TARGET)


def settings_text(s) -> str:
    """Sampler settings in words."""
    return f"{s.chains} chains × {s.draws} draws after {s.tune} tuning steps, seed {s.seed}"


def diagnostics_text(r) -> str:
    """A fit's diagnostics in one line."""
    d = r.diagnostics
    status = "passed" if d.passed else "FAILED (" + "; ".join(d.problems) + ")"
    return (
        f"{d.divergences} divergences, largest R-hat {d.max_rhat:.3f}, smallest bulk ESS {d.min_ess_bulk:.0f}: {status}"
    )


def rate_text(k, n) -> str:
    """k / n and the rate."""
    return "–" if k is None else f"{k} / {n} ({100 * k / n:.2f} %)"


display(
    Markdown(
        (
            f"**Fast run**: {len(data.techniques)} of the techniques only, {settings_text(result.settings)}, fits "
            "cached in a temporary folder. The numbers below only show that the notebook works.\n\n"
            if FAST
            else ""
        )
        + f"The multi-source fit: {len(data.techniques)} techniques, {len(data.sources)} sources in "
        f"{len(data.families)} families, {settings_text(result.settings)} "
        f"({'fitted now' if origin == 'fitted' else 'reused from the cache'}); diagnostics: "
        f"{diagnostics_text(result)}.\n\n"
        f"**Target population** (`{TARGET}`): {POPULATION}. Every probability below is on this scale unless a "
        f"table says otherwise. enterpriseLang publishes {PUBLISHED} for {TECHNIQUE} {NAME}."
    )
)

# %% [markdown]
# ## 1. T1102's evidence and its headline
#
# Each row is one source's count: k of n, where n is what the source counts (its *unit*: one intrusion, one
# adversary group, one CTI report, one advisory, one malware family). Complete sources list every technique, so a
# zero there is a real zero; partial sources list only what they saw.

# %%
rows = [c for c in table.for_technique(TECHNIQUE) if c.source_id in data.sources]
display(
    Markdown(
        markdown_table(
            sorted(rows, key=lambda c: (data.families.index(c.family), c.source_id)),
            {
                "family": lambda c: f"`{c.family}`",
                "source": lambda c: f"`{c.source_id}`",
                "one trial is": lambda c: f"one {table.sources[c.source_id].unit}",
                "population": lambda c: table.sources[c.source_id].population,
                "coverage": lambda c: table.sources[c.source_id].coverage,
                "k / n": lambda c: f"{c.successes} / {c.trials}",
                "rate": lambda c: f"{100 * c.rate:.2f} %",
                "n is": lambda c: c.trials_basis,
            },
        )
    )
)

head = technique_headline(result, TECHNIQUE, TARGET, PUBLISHED)
display(
    Markdown(
        f"**Headline** ({TECHNIQUE} on the `{TARGET}` scale): mean {head['mean']:.4f}, {PCT} HDI "
        f"{interval(*head['hdi_94'])}. enterpriseLang's {PUBLISHED} is at percentile "
        f"{head['percentile_of_point']:.0f} of the posterior; P(p > {PUBLISHED}) = {head['prob_greater']:.2f}; it lies "
        f"{'inside' if head['point_inside_hdi'] else 'outside'} the {PCT} HDI."
    )
)
# checked: on the intrusion scale T1102 is rarer than enterpriseLang's value, which a full run puts above the HDI
assert head["mean"] < PUBLISHED
if not FAST:  # a fast run's short fit is too wide to say
    assert head["hdi_94"][1] < PUBLISHED and not head["point_inside_hdi"]

# %% [markdown]
# ## 2. The target population
#
# The same model states T1102 on any family's scale: p_t(F) = logit⁻¹(a_t + b_F + d_tF), the rate a typical
# report of family F would give. Where family F has no row for T1102, d_tF is drawn from Normal(0, σ_F). The
# predictive interval adds what one *new* report of the family would show (a new year's shift and the year-to-year
# variation for families of several years). The choice of target is a choice of question: "in what share of
# investigated intrusions" is not "in what share of adversary groups" or "of malware families".

# %%
by_target = headline_by_target(result, TECHNIQUE, PUBLISHED)
predictive = technique_predictive(result, table, TECHNIQUE)
display(
    Markdown(
        markdown_table(
            by_target,
            {
                "target family": lambda r: f"`{r['target']}`" + (" (default)" if r["target"] == TARGET else ""),
                "population": lambda r: target_description(result, table, r["target"]),
                "T1102 rows": lambda r: "yes" if r["target_data"] else "no",
                "observed k / n": lambda r: rate_text(
                    predictive[r["target"]]["observed_successes"], predictive[r["target"]]["observed_trials"]
                ),
                "mean p": lambda r: f"{r['mean']:.4f}",
                f"{PCT} HDI": lambda r: interval(*r["hdi_94"]),
                "new report": lambda r: interval(
                    predictive[r["target"]]["hdi_low"], predictive[r["target"]]["hdi_high"]
                ),
                f"P(p > {PUBLISHED})": lambda r: f"{r['prob_greater']:.2f}",
                "published inside HDI": lambda r: "yes" if r["point_inside_hdi"] else "no",
            },
        )
    )
)

fig, ax = plt.subplots(figsize=(9, 0.5 * len(by_target) + 1.2))
for i, r in enumerate(by_target[::-1]):
    pred = predictive[r["target"]]
    ax.plot([pred["hdi_low"], pred["hdi_high"]], [i - 0.15, i - 0.15], color="0.6", lw=1.5)
    ax.plot(r["hdi_94"], [i, i], color="C0", lw=3)
    ax.plot(r["mean"], i, "o", color="C0")
    if pred["observed_trials"]:
        ax.plot(pred["observed_successes"] / pred["observed_trials"], i + 0.15, "x", color="C1")
ax.plot([], [], color="C0", lw=3, label=f"p on the family's scale ({PCT} HDI)")
ax.plot([], [], color="0.6", lw=1.5, label="a new report of the family")
ax.plot([], [], "x", color="C1", label="observed rate (sources pooled)")
ax.axvline(PUBLISHED, color="C3", ls="--", lw=1, label=f"enterpriseLang {PUBLISHED}")
ax.set_xscale("log")
# a new report's interval can reach down to (nearly) 0; show the range of the families' own intervals
ax.set_xlim(left=min(min(r["hdi_94"][0] for r in by_target), PUBLISHED) / 3)
ax.set_yticks(range(len(by_target)), [r["target"] for r in by_target[::-1]])
ax.set_xlabel(f"probability of {TECHNIQUE} on each family's scale")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
fig.tight_layout()
plt.show()

lowest = min(by_target, key=lambda r: r["mean"])
highest = max(by_target, key=lambda r: r["mean"])
inside_targets = [r["target"] for r in by_target if r["point_inside_hdi"]]
display(
    Markdown(
        f"Across the {len(by_target)} possible targets {TECHNIQUE}'s mean runs from {lowest['mean']:.4f} "
        f"(`{lowest['target']}`) to {highest['mean']:.4f} (`{highest['target']}`), a factor of "
        f"{highest['mean'] / lowest['mean']:.1f}. "
        f"enterpriseLang's {PUBLISHED} lies inside the {PCT} HDI on the scale of "
        + (", ".join(f"`{t}`" for t in inside_targets) if inside_targets else "no family")
        + ". A threat model should name the population its probabilities are shares of."
    )
)
# checked: T1102 is rarest on the intrusion scale, and the population asked about changes the answer many times over
assert lowest["target"] == TARGET and highest["mean"] > 5 * lowest["mean"]
# every family's own pooled rate lies inside the interval a new report of that family would give
for r in by_target:
    pred = predictive[r["target"]]
    if pred["observed_trials"]:
        assert pred["hdi_low"] <= pred["observed_successes"] / pred["observed_trials"] <= pred["hdi_high"], r["target"]
# a family without a row for T1102 draws its departure from Normal(0, σ_F): its interval is wider than any with data
hdi_widths = {r["target"]: r["hdi_94"][1] - r["hdi_94"][0] for r in by_target}
assert min(hdi_widths[r["target"]] for r in by_target if not r["target_data"]) > max(
    hdi_widths[r["target"]] for r in by_target if r["target_data"]
)

# %% [markdown]
# ## 3. How much each family counts for T1102
#
# **Weights (an approximation).** Family f measures T1102's level a_t through its cell logit
# φ_tf = a_t + b_f + d_tf. Treat its counts as a normal measurement of φ_tf with variance v_f, and the offsets and
# departure scales as known at their posterior means: family f then measures a_t with variance v_f + σ_f², and
# contributes the precision 1 / (v_f + σ_f²); the level prior (the typical technique) adds 1 / s_a². Each family's
# **share of a_t** is its precision over the total. v_f is the binomial variance of the logit rate,
# 1 / (k + ½) + 1 / (n − k + ½); for a family of several sources (M-Trends' and CISA's years), each source's
# variance is inflated by the beta-binomial design effect (n + κ_f) / (1 + κ_f), the year shift's τ² is added, and
# the sources are combined by inverse variance. The **share of the target value** splits the precision of
# T1102 on the target scale between the target family's own counts (precision 1 / v_T) and the route through a_t,
# which has precision 1 / (1 / P + σ_T²) with P the other families' precision. The shares ignore the uncertainty
# in b_f and σ_f (`attackprev.analysis.families`).
#
# A family with a large σ_f (its rates stray far from the technique's level, technique by technique) says little
# about a_t however many trials it has.

# %%
weights = family_weights(result, table, TECHNIQUE, TARGET)
pooled_weights = {r["family"]: r for r in family_weights(result, table, TECHNIQUE, TARGET, overdispersion=False)}
display(
    Markdown(
        markdown_table(
            weights,
            {
                "family": lambda r: f"`{r['family']}`",
                "one trial is": lambda r: r["unit"] or "–",
                "k / n": lambda r: "–" if r["trials"] is None else f"{r['successes']} / {r['trials']}",
                "v_f": lambda r: "–" if r["logit_var"] is None else f"{r['logit_var']:.3f}",
                "σ_f (s_a for the prior)": lambda r: f"{r['departure_sd']:.2f}",
                "offset b_f": lambda r: "–" if r["offset"] is None else f"{r['offset']:+.2f}",
                "share of a_t": lambda r: f"{100 * r['level_share']:.1f} %",
                f"share of the `{TARGET}` value": lambda r: f"{100 * r['target_share']:.1f} %",
            },
        )
        + f"\n\nPosterior means of σ_f, b_f, s_a, κ_f and τ. Without the design effect (every family's counts pooled"
        f" as one binomial) the `{TARGET}` family's own share of the target value would be "
        f"{100 * pooled_weights[TARGET]['target_share']:.1f} % instead of "
        f"{100 * next(r['target_share'] for r in weights if r['family'] == TARGET):.1f} %."
    )
)

fig, ax = plt.subplots(figsize=(8, 0.4 * len(weights) + 1.2))
pos = np.arange(len(weights))
ax.barh(pos + 0.2, [100 * r["level_share"] for r in weights], height=0.4, label="share of the level a_t")
ax.barh(pos - 0.2, [100 * r["target_share"] for r in weights], height=0.4, label=f"share of the {TARGET} value")
ax.set_yticks(pos, [r["family"] for r in weights])
ax.invert_yaxis()
ax.set_xlabel("% of the precision (approximation)")
ax.legend(loc="lower right", fontsize="small")
fig.tight_layout()
plt.show()

# checked: each column of shares sums to 1; a one-source family's v_f is the binomial logit variance; the target
# family's own share is 1 / v_T over 1 / v_T plus the route through a_t, 1 / (1 / P + σ_T²), recomputed here
with_data = [r for r in weights if r["family"] != PRIOR]
level_prior = next(r for r in weights if r["family"] == PRIOR)
own_row = next(r for r in weights if r["family"] == TARGET)
for column in ("level_share", "target_share"):
    assert np.isclose(sum(r[column] for r in weights), 1.0), column
for r in with_data:
    if len(r["sources"]) == 1:
        k, n_f = r["successes"], r["trials"]
        assert np.isclose(r["logit_var"], 1 / (k + 0.5) + 1 / (n_f - k + 0.5)), r["family"]
p_others = 1 / level_prior["departure_sd"] ** 2 + sum(
    1 / (r["logit_var"] + r["departure_sd"] ** 2) for r in with_data if r["family"] != TARGET
)
via_level = 1 / (1 / p_others + own_row["departure_sd"] ** 2)
assert np.isclose(own_row["target_share"], (1 / own_row["logit_var"]) / (1 / own_row["logit_var"] + via_level))
# the target family's own counts carry most of its value, and less once its years' overdispersion is counted
assert max(weights, key=lambda r: r["target_share"])["family"] == TARGET
assert pooled_weights[TARGET]["target_share"] > own_row["target_share"]
# a family with a large σ_f says little about a_t however many trials it has
assert min(with_data, key=lambda r: r["level_share"]) is max(with_data, key=lambda r: r["departure_sd"])

# %% [markdown]
# **Where each source pulls.** A source's rate moved onto the target scale by its family's offset
# (logit rate − b_f + b_T, at posterior means) says where that source alone would put T1102; its family's σ_f
# says how loosely (`attackprev.analysis.synthesis.source_pulls`, a reading aid, not a refit).

# %%
pulls = source_pulls(result, table, TECHNIQUE, TARGET)
display(
    Markdown(
        markdown_table(
            pulls,
            {
                "source": lambda r: f"`{r['source_id']}`",
                "family": lambda r: f"`{r['family']}`",
                "k / n": lambda r: f"{r['successes']} / {r['trials']}",
                "rate": lambda r: f"{100 * r['rate']:.2f} %",
                f"on the `{TARGET}` scale": lambda r: f"{100 * r['on_target_scale']:.2f} %",
                "σ_f": lambda r: f"{r['departure_sd']:.2f}",
            },
        )
    )
)

fig, ax = plt.subplots(figsize=(8, 0.35 * len(pulls) + 1.4))
ax.axvspan(*head["hdi_94"], color="C0", alpha=0.15, label=f"headline {PCT} HDI")
ax.axvline(head["mean"], color="C0", lw=1.5, label="headline mean")
ax.axvline(PUBLISHED, color="C3", ls="--", lw=1, label=f"enterpriseLang {PUBLISHED}")
for i, r in enumerate(pulls):
    x = r["on_target_scale"]
    lo, hi = (x / np.exp(r["departure_sd"]), x * np.exp(r["departure_sd"]))  # ±σ_f, roughly, on the odds scale
    ax.plot([lo, hi], [i, i], color="0.6", lw=1)
    ax.plot(x, i, "o", color=f"C{1 + data.families.index(r['family']) % 8}")
ax.plot([], [], color="0.6", lw=1, label="± σ_f (approx.)")
ax.set_xscale("log")
ax.set_yticks(range(len(pulls)), [r["source_id"] for r in pulls])
ax.invert_yaxis()
ax.set_xlabel(f"where each source puts {TECHNIQUE} on the {TARGET} scale")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
fig.tight_layout()
plt.show()

# checked: a source of the target family is not moved (its pull is its own rate, (k + ½) / (n + 1)); a source of a
# family that counts T1102 more often than intrusions do (offset b_f > 0) is moved down, one with b_f < 0 up
offsets = {r["family"]: r["offset"] for r in with_data}
for r in pulls:
    raw = (r["successes"] + 0.5) / (r["trials"] + 1.0)
    if r["family"] == TARGET:
        assert np.isclose(r["on_target_scale"], raw), r["source_id"]
    else:
        assert (r["on_target_scale"] < raw) == (offsets[r["family"]] > 0), r["source_id"]

# %% [markdown]
# ## 4. Leave one family out
#
# Each refit drops every source of one family and keeps the rest. The reference family `mtrends` cannot be
# dropped: its offset is fixed at 0 to identify the others (only differences of offsets are identified) and it is
# the target scale itself, so without its counts the target would have no data and the model no reference. The
# refits are shorter than the default fit (settings below, with each refit's diagnostics); a full run refits every
# other family, a fast run only the families with the largest share of T1102's target value.

# %%
droppable = droppable_families(data.families, data.reference)
if FAST:
    share = {r["family"]: r["target_share"] for r in weights if r["family"] not in (PRIOR, TARGET)}
    droppable = sorted(droppable, key=lambda f: -share.get(f, 0.0))[:FAST_LOFO_FAMILIES]
followed = [TECHNIQUE, *[t for t in OTHERS if t in data.techniques]]
names = attack_table()


def summaries(r, techniques: list[str]) -> dict[str, dict]:
    """Target-scale summaries of some techniques, with P(p > published) for T1102."""
    return {t: technique_headline(r, t, TARGET, PUBLISHED) for t in techniques}


baseline = summaries(result, followed)
lofo = []
for family in droppable:
    held_out = family_sources(table, family)
    refit, refit_origin = cached_fit_synthesis(table, settings=inputs.lofo_settings, exclude_sources=held_out)
    lofo.append(
        {
            "family": family,
            "sources": held_out,
            "fit": refit,
            "origin": refit_origin,
            "summaries": summaries(refit, followed),
        }
    )

display(
    Markdown(
        f"Refits: {settings_text(inputs.lofo_settings)}; the baseline row is the default fit "
        f"({settings_text(result.settings)}).\n\n"
        + markdown_table(
            [{"family": "none (default fit)", "sources": (), "fit": result, "summaries": baseline}, *lofo],
            {
                "left out": lambda r: r["family"] if not r["sources"] else f"`{r['family']}`",
                f"{TECHNIQUE} mean": lambda r: f"{r['summaries'][TECHNIQUE]['mean']:.4f}",
                f"{PCT} HDI": lambda r: interval(*r["summaries"][TECHNIQUE]["hdi_94"]),
                f"P(p > {PUBLISHED})": lambda r: f"{r['summaries'][TECHNIQUE]['prob_greater']:.2f}",
            }
            | {f"{t} mean": (lambda r, t=t: f"{r['summaries'][t]['mean']:.4f}") for t in followed[1:]}
            | {
                "divergences": lambda r: r["fit"].diagnostics.divergences,
                "max R-hat": lambda r: f"{r['fit'].diagnostics.max_rhat:.3f}",
                "min ESS": lambda r: f"{r['fit'].diagnostics.min_ess_bulk:.0f}",
                "passed": lambda r: "yes" if r["fit"].diagnostics.passed else "**no**",
            },
        )
        + "\n\nThe other techniques followed: "
        + "; ".join(f"{t} {names[t].display_name}" for t in followed[1:])
        + "."
    )
)

fig, ax = plt.subplots(figsize=(8, 0.45 * (len(lofo) + 1) + 1.2))
labels = ["none", *[r["family"] for r in lofo]]
for i, s in enumerate([baseline, *[r["summaries"] for r in lofo]]):
    h = s[TECHNIQUE]
    ax.plot(h["hdi_94"], [i, i], color="C0", lw=2)
    ax.plot(h["mean"], i, "o", color="C0")
ax.axvline(PUBLISHED, color="C3", ls="--", lw=1, label=f"enterpriseLang {PUBLISHED}")
ax.set_yticks(range(len(labels)), labels)
ax.set_ylim(len(labels) - 0.5, -0.5)
ax.set_xscale("log")
ax.set_ylabel("family left out")
ax.set_xlabel(f"{TECHNIQUE} on the {TARGET} scale: mean and {PCT} HDI")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
fig.tight_layout()
plt.show()

moves = {r["family"]: r["summaries"][TECHNIQUE]["mean"] - baseline[TECHNIQUE]["mean"] for r in lofo}
biggest = max(moves, key=lambda f: abs(moves[f])) if moves else None
display(
    Markdown(
        (
            f"Leaving out `{biggest}` moves {TECHNIQUE}'s mean most, by {moves[biggest]:+.4f} (from "
            f"{baseline[TECHNIQUE]['mean']:.4f}); "
            + ", ".join(f"`{f}` {v:+.4f}" for f, v in moves.items() if f != biggest)
            + f". {sum(r['fit'].diagnostics.passed for r in lofo)} of {len(lofo)} refits passed their diagnostics."
        )
        if moves
        else "No family could be left out."
    )
)
# checked: each refit left its family's sources out, and none moves T1102's mean out of the default fit's HDI
for r in lofo:
    assert not set(r["sources"]) & set(r["fit"].data.sources), r["family"]
    assert baseline[TECHNIQUE]["hdi_94"][0] < r["summaries"][TECHNIQUE]["mean"] < baseline[TECHNIQUE]["hdi_94"][1]

# %% [markdown]
# ## 5. The note's two sources alone (single-technique model, not the default)
#
# enterpriseLang's value for T1102 is the plain mean of two percentages: M-Trends 2020's share of attack
# lifecycles and the SoK study's share of Windows malware families. This section keeps to those two sources, as the
# original note did, and fits the project's single-technique hierarchical Beta-Binomial model with the exact grid
# engine (`attackprev.inference.exact`). It asks what the note's arithmetic implies about weights and
# denominators; it does **not** describe the default multi-source model above.

# %%
evidence = load_evidence()
obs = evidence.for_technique(TECHNIQUE)
sources = [o.source_id for o in obs]
y = np.array([o.successes for o in obs], float)
n = np.array([o.trials for o in obs], float)
MT, SOK = sources.index("mtrends2020"), sources.index("sok2019_windows_malware")
MT_PERCENT = obs[MT].percent
MT_DECIMALS = evidence.sources["mtrends2020"].percent_decimals
recovery = evidence.recoveries["mtrends2020"]
prior = PRIORS[DEFAULT_PRIOR]
full = fit_exact(y, n, prior, sources=sources)


def weights_with(i: int, w: float) -> np.ndarray:
    """Weight w on source i, 1 on the others."""
    out = np.ones(len(y))
    out[i] = w
    return out


naive = mean_of_percentages([o.percent / 100 if o.percent is not None else o.rate for o in obs])
estimates = [
    Estimate("mean of percentages (enterpriseLang)", naive),
    complete_pooling(y, n),
    *no_pooling(y.astype(int), n.astype(int), sources),
    hierarchical(full, f"hierarchical, the two sources (exact, `{prior.name}`)"),
    Estimate(f"for comparison: the default multi-source model, `{TARGET}` scale", head["mean"], *head["hdi_94"]),
]
display(
    Markdown(
        f"**The note's two sources.** `{sources[MT]}`: {MT_PERCENT:g} % of attack lifecycles, read as "
        f"{y[MT]:.0f} of {n[MT]:.0f} (the denominator is inferred: {recovery.trials} is the smallest number of "
        f"lifecycles for which all {len(recovery.percents)} of its published percentages are whole counts). "
        f"`{sources[SOK]}`: {y[SOK]:.0f} of {n[SOK]:.0f} malware families. Prior: `{prior.name}` ({prior.label}).\n\n"
        + markdown_table(
            [e.as_row() for e in estimates],
            {
                "method": lambda r: r["method"],
                "estimate": lambda r: f"{r['mean']:.4f}",
                f"{PCT} interval": lambda r: interval(r["low"], r["high"]),
            },
        )
        + "\n\nIntervals: Jeffreys for the binomial rows, highest-density for the hierarchical and multi-source ones."
    )
)
# checked: enterpriseLang's arithmetic gives back its published value; one binomial is the pooled count, between the
# two rates; the two sources' hierarchical interval holds both rates, and every source on one scale narrows it
assert round(naive, 4) == PUBLISHED
assert np.isclose(estimates[1].mean, y.sum() / n.sum()) and min(y / n) < estimates[1].mean < max(y / n)
assert full.mu.hdi_94[0] < min(y / n) and max(y / n) < full.mu.hdi_94[1]
assert head["hdi_94"][1] - head["hdi_94"][0] < full.mu.hdi_94[1] - full.mu.hdi_94[0]

# %% [markdown]
# ### 5a. How much each of the two sources counts
#
# A weight w between 0 and 1 tempers a source's evidence (a *power prior*): with w = ½ a count of k of n counts
# like k/2 of n/2. One source's weight runs from 0 to 1 while the other stays at 1; the line is the posterior mean
# of μ (the rate for a new environment), the band its HDI.

# %%
grid = np.linspace(0.0, 1.0, 9 if FAST else 41)
sweeps = {s: weight_sweep(y, n, prior, i, grid, point=PUBLISHED) for i, s in enumerate(sources)}

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, (s, sweep) in zip(axes, sweeps.items(), strict=True):
    w = [r["weight"] for r in sweep]
    ax.fill_between(w, [r["hdi_low"] for r in sweep], [r["hdi_high"] for r in sweep], alpha=0.25, label=f"{PCT} HDI")
    ax.plot(w, [r["mean"] for r in sweep], lw=2, label="posterior mean of μ")
    ax.axhline(PUBLISHED, color="C3", ls="--", lw=1, label=f"enterpriseLang {PUBLISHED}")
    ax.set_xlabel(f"weight of {s} (the other source: 1)")
    ax.set_title(s)
axes[0].set_ylabel("μ (the note's two sources)")
axes[0].legend(loc="upper right")
fig.tight_layout()
plt.show()

display(
    Markdown(
        markdown_table(
            [{"source": s} | sweep[0] for s, sweep in sweeps.items()] + [{"source": "both"} | sweeps[sources[0]][-1]],
            {
                "weights": lambda r: (
                    f"`{r['source']}` at 0" if r["source"] != "both" else "both at 1 (the note's sources as counted)"
                ),
                "mean μ": lambda r: f"{r['mean']:.4f}",
                f"{PCT} HDI": lambda r: interval(r["hdi_low"], r["hdi_high"]),
                f"P(μ > {PUBLISHED})": lambda r: f"{r['prob_greater']:.2f}",
            },
        )
    )
)
# checked: down-weighting either source removes evidence: μ's mean rises and its interval widens as the weight falls
for s, sweep in sweeps.items():
    assert np.all(np.diff([r["mean"] for r in sweep]) < 0), s
    assert np.all(np.diff([r["hdi_high"] - r["hdi_low"] for r in sweep]) < 0), s

# %% [markdown]
# ### 5b. How many attack lifecycles did M-Trends 2020 cover?
#
# M-Trends 2020 prints percentages without a denominator; the smallest number of lifecycles that makes every one of
# its percentages a whole count is used (its multiples fit too). For each other denominator, the count that rounds
# to the published percentage is used when one exists ("consistent"), else the nearest count ("nearest"). A
# denominator and a weight are the same knob: fewer lifecycles at the same rate is a weight below 1.

# %%
named = sorted({100, 150, 300, 1000, *recovery.candidates[:2]})
den_table = denominator_sweep(y, n, prior, MT, MT_PERCENT, named, decimals=MT_DECIMALS, point=PUBLISHED)
display(
    Markdown(
        markdown_table(
            den_table,
            {
                "M-Trends lifecycles n": lambda r: f"{r['trials']}" + (" (recovered)" if r["trials"] == n[MT] else ""),
                "count": lambda r: f"{r['successes']}",
                "how": lambda r: r["how"],
                "rate": lambda r: f"{100 * r['rate']:.2f} %",
                "mean μ": lambda r: f"{r['mean']:.4f}",
                f"{PCT} HDI": lambda r: interval(r["hdi_low"], r["hdi_high"]),
                f"P(μ > {PUBLISHED})": lambda r: f"{r['prob_greater']:.2f}",
            },
        )
    )
)
# checked: more lifecycles at about the same rate is more evidence, so μ's mean falls as M-Trends' n grows; at the
# recovered n the count is the table's and the fit is section 5's
assert np.all(np.diff([r["mean"] for r in den_table]) < 0)
recovered = next(r for r in den_table if r["trials"] == n[MT])
assert recovered["successes"] == y[MT] and np.isclose(recovered["mean"], full.mu.mean, rtol=1e-9)

# %% [markdown]
# ### 5c. Which weights give back enterpriseLang's value?
#
# The mean of percentages gives both sources one equal vote. In a model that counts cases, that means shrinking the
# larger source. The weight is solved for by bisection, in one pooled binomial and in the hierarchical model.

# %%
w_sok_pooled = bisect(lambda w: pooled_rate(y, n, weights_with(SOK, w)), PUBLISHED)
w_hier = {
    s: bisect(lambda w, i=i: fit_exact(y, n, prior, weights=weights_with(i, w)).mu.mean, PUBLISHED)
    for i, s in enumerate(sources)
}
found = {s: w for s, w in w_hier.items() if w is not None}
display(
    Markdown(
        (
            f"**One pooled binomial.** The pooled rate equals {PUBLISHED} when the SoK study's weight is "
            f"{w_sok_pooled:.3f}: its {n[SOK]:.0f} families then count as {w_sok_pooled * n[SOK]:.0f}, about as many "
            f"as M-Trends' {n[MT]:.0f} lifecycles (equal sizes would need weight {n[MT] / n[SOK]:.3f}). "
            if w_sok_pooled is not None
            else f"**One pooled binomial.** No weight of the SoK study in [0, 1] gives {PUBLISHED}. "
        )
        + "**Hierarchical model.** "
        + (
            f"The posterior mean of μ equals {PUBLISHED} when "
            + "; ".join(f"`{s}` has weight {w:.3f}" for s, w in found.items())
            + " (the other source at weight 1)."
            if found
            else f"No weight in [0, 1] of either source gives a posterior mean of {PUBLISHED}: down-weighting a "
            "source removes evidence, the model grows less sure how much environments differ, and the mean for a new "
            "environment rises."
        )
        + f" Under the two sources' hierarchical posterior P(μ ≤ {PUBLISHED}) = {full.cdf_mu(PUBLISHED):.2f}."
    )
)
# checked: the pooled weight solves (k_MT + w k_SoK) / (n_MT + w n_SoK) = published in closed form; no hierarchical
# weight reaches the published value, as every weight of the sweeps leaves μ's mean above it
assert np.isclose(w_sok_pooled, (y[MT] - PUBLISHED * n[MT]) / (PUBLISHED * n[SOK] - y[SOK]), rtol=0, atol=1e-5)
assert not found and min(r["mean"] for sweep in sweeps.values() for r in sweep) > PUBLISHED

# %% [markdown]
# ## 6. What this means for T1102

# %%
top_level = max((r for r in weights if r["family"] != PRIOR), key=lambda r: r["level_share"])
top_target = max(weights, key=lambda r: r["target_share"])
own = next((r for r in weights if r["family"] == TARGET), None)
den_means = [r["mean"] for r in den_table]
display(
    Markdown(
        f"""* **Headline.** On the `{TARGET}` scale ({POPULATION}) {TECHNIQUE} has mean {head["mean"]:.4f}
  ({PCT} HDI {interval(*head["hdi_94"])}); enterpriseLang's {PUBLISHED} is at percentile
  {head["percentile_of_point"]:.0f} of it and {"inside" if head["point_inside_hdi"] else "outside"} the HDI.
* **The target matters.** On the other families' scales the mean runs from {lowest["mean"]:.4f} (`{lowest["target"]}`)
  to {highest["mean"]:.4f} (`{highest["target"]}`).
* **Weights.** By the precision approximation, `{top_level["family"]}` carries the largest share of T1102's level
  ({100 * top_level["level_share"]:.0f} %) and `{top_target["family"]}` the largest share of its `{TARGET}` value
  ({100 * top_target["target_share"]:.0f} %){
            ""
            if own is None
            else f"; the `{TARGET}` family's own counts, {own['successes']} of {own['trials']}, carry "
            f"{100 * own['target_share']:.0f} % of the target value"
        }.
* **Leaving a family out** {
            f"moves the mean by at most {abs(moves[biggest]):.4f} (without `{biggest}`)"
            if moves
            else "was not possible"
        }{" (fast run: only " + str(len(lofo)) + " families refitted)" if FAST else ""}.
* **The note's two sources alone**, in the single-technique model, give {full.mu.mean:.4f}
  ({PCT} HDI {interval(*full.mu.hdi_94)}); M-Trends' denominator moves that between
  {min(den_means):.4f} and {max(den_means):.4f} over {min(named)} to {max(named)} lifecycles."""
    )
)
display(Markdown(f"Settings of the default fit: `{asdict(result.settings)}`."))
# checked: the ATT&CK groups' count carries the largest share of T1102's level
assert top_level["family"] == "attack_groups"
