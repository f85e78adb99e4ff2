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
# # Where the evidence-based probabilities and enterpriseLang's disagree, and why
#
# `reports/techniques/` holds the catalogue of the default model, the **multi-source synthesis**
# (`src/attackprev/model/synthesis.py`): every technique with countable evidence, stated on the scale of one
# target family — by default `mtrends`, the share of intrusions investigated by incident responders in which the
# technique is seen. Sources enter by family, each with a systematic offset b_f relative to `mtrends` and a
# technique-by-family departure of scale σ_f, so a family that counts adversary groups or malware families does not
# speak for intrusions one to one.
#
# enterpriseLang publishes one probability per attack step, mostly the plain mean of a few published percentages.
# This notebook puts those values next to the catalogue, finds the largest disagreements and explains each from
# the numbers: which families report the technique, whether `mtrends` itself does, where each family pulls on the
# target scale, and the families' offsets. Each gap is put in one of three groups:
#
# * **no target data**: `mtrends` has no row for the technique, so its value rests on the other families, moved
#   onto the `mtrends` scale by their offsets (and a departure drawn for `mtrends`);
# * **target data**: `mtrends`' own count is itself far from the published value (at least half the gap, on the
#   log scale, on the same side);
# * **other families**: `mtrends`' own count is near the published value, and the other families pull the
#   estimate away.
#
# It reads `reports/techniques/catalogue.csv` and `summary.json` (written by `make report`) and the saved fit they
# came from (reused from the user's cache); nothing is refitted in a full run. Set `ATTACKPREV_NOTEBOOK_FAST=1` for
# a quick, coarse run on a subset of techniques (the tests do).
#
# The outputs shown are from a full run, made by `make report` (`jupyter execute --inplace notebooks/*.ipynb`).

# %%
import json
import math
import statistics

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from attackprev.analysis.families import (
    disagreements,
    family_weights,
    notebook_inputs,
    read_catalogue,
)
from attackprev.analysis.synthesis import (
    elang_comparison,
    family_rows,
    source_pulls,
    target_description,
    technique_estimates,
)
from attackprev.analysis.weighting import fast_mode, interval, markdown_table, repo_root
from attackprev.config import DEFAULT_TARGET, HDI_PROB
from attackprev.evidence.enterpriselang import published_steps
from attackprev.inference.synthesis_cache import cached_fit_synthesis

FAST = fast_mode()
FOLDER = repo_root() / "reports" / "techniques"
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "axes.grid": True})
PCT = f"{100 * HDI_PROB:.0f} %"
TARGET = DEFAULT_TARGET
REASONS = {
    "no target data": "C0",
    "target data": "C3",
    "other families": "C1",
}

inputs = notebook_inputs(FAST, published_steps())
table = inputs.table
result, origin = cached_fit_synthesis(table, settings=inputs.settings)
data = result.data
fitted = technique_estimates(result, table, TARGET)

saved = None if FAST else read_catalogue(FOLDER / "catalogue.csv")
summary_path = FOLDER / "summary.json"
summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() and not FAST else None
current = (
    saved is not None
    and summary is not None
    and summary.get("target") == TARGET
    and summary.get("record", {}).get("data_sha256") == table.digest
)
if current:
    estimates = saved
    by_id = {r["technique_id"]: r["mean"] for r in fitted}
    gap = max(abs(by_id[r["technique_id"]] - r["mean"]) for r in saved)
    source_text = (
        f"Read from `reports/techniques/catalogue.csv` ({summary['command']}); its means match the saved fit's to "
        f"within {gap:.1e}."
    )
else:
    estimates = fitted
    source_text = (
        "Computed from the fast fit."
        if FAST
        else "**`reports/techniques/catalogue.csv` is missing, from another model, or from other data; the values "
        "below are computed from the saved fit. Run `make report`.**"
    )

compared = [r for r in estimates if r["published_p"] is not None]
comparison = elang_comparison(estimates)
pulls = {r["technique_id"]: source_pulls(result, table, r["technique_id"], TARGET) for r in compared}
ranked = disagreements(estimates, pulls, TARGET, top=len(compared))
diag = result.diagnostics
display(
    Markdown(
        (
            f"**Fast run**: {len(data.techniques)} techniques only, {inputs.settings.chains} chains × "
            f"{inputs.settings.draws} draws after {inputs.settings.tune} tuning steps; the numbers only show that the "
            "notebook works.\n\n"
            if FAST
            else ""
        )
        + f"{len(estimates)} techniques on the `{TARGET}` scale (**target population**: "
        f"{target_description(result, table, TARGET)}); {len(compared)} have a probability published by "
        f"enterpriseLang. {source_text} The fit: {len(data.sources)} sources in {len(data.families)} families, "
        f"{result.settings.chains} chains × {result.settings.draws} draws "
        f"({'fitted now' if origin == 'fitted' else 'reused from the cache'}); diagnostics "
        + ("passed." if diag.passed else "FAILED: " + "; ".join(diag.problems) + ".")
        + f"\n\nenterpriseLang's value lies inside the technique's {PCT} HDI for {comparison['inside']} of "
        f"{comparison['techniques']}, above it for {comparison['above_hdi']} and below it for "
        f"{comparison['techniques'] - comparison['inside'] - comparison['above_hdi']}; the median of published / "
        f"estimate is {comparison['median_ratio']:.2f}."
    )
)
# checked: the counts are the rows' own, and enterpriseLang's values lie mostly above the estimates (more of them above
# the HDI than below it, and a median ratio above 1)
n_below = comparison["techniques"] - comparison["inside"] - comparison["above_hdi"]
assert comparison["inside"] == sum(r["hdi_low"] <= r["published_p"] <= r["hdi_high"] for r in compared)
assert n_below == sum(r["published_p"] < r["hdi_low"] for r in compared)
assert comparison["above_hdi"] > n_below and comparison["median_ratio"] > 1
if current:  # the committed catalogue is this fit's
    assert gap < 1e-5

# %% [markdown]
# ## 1. The families and their offsets
#
# A family's offset b_f is how much more (b_f > 0) or less often, on the log-odds scale, it reports the typical
# technique than `mtrends` does; exp(b_f) is the factor on the odds. σ_f is how far a technique's rate in the family
# strays from what its level and the offset imply. A published value that averages figures from families with large
# offsets reads as high on the `mtrends` scale.

# %%
fams = family_rows(result, table)
display(
    Markdown(
        markdown_table(
            fams,
            {
                "family": lambda r: f"`{r['family']}`" + (" (reference)" if r["offset"] is None else ""),
                "one trial is": lambda r: r["unit"],
                "sources": lambda r: len(r["sources"]),
                "techniques": lambda r: r["techniques"],
                "offset b_f": lambda r: "0" if r["offset"] is None else f"{r['offset']['mean']:+.2f}",
                f"{PCT} HDI": lambda r: "–" if r["offset"] is None else interval(*r["offset"]["hdi_94"], digits=2),
                "odds factor exp(b_f)": lambda r: (
                    "1" if r["offset"] is None else f"{math.exp(r['offset']['mean']):.2f}"
                ),
                "σ_f": lambda r: f"{r['departure_sd']['mean']:.2f}",
            },
        )
    )
)
# checked: most families report the typical technique more often than `mtrends` (b_f > 0), so averaging their figures
# reads high on the `mtrends` scale; Recorded Future's offset is the largest
offset_means = {r["family"]: r["offset"]["mean"] for r in fams if r["offset"] is not None}
assert sum(b > 0 for b in offset_means.values()) > sum(b < 0 for b in offset_means.values())
assert max(offset_means, key=lambda f: abs(offset_means[f])) == "recordedfuture"

# %% [markdown]
# ## 2. The largest disagreements
#
# Sorted by how many times larger or smaller the estimate is than the published value. "`mtrends` k / n" is
# M-Trends' own count summed over its years; the pulls are where the other families' sources, one by one, put the
# technique on the `mtrends` scale (`attackprev.analysis.synthesis.source_pulls`).


# %%
def factor(r: dict) -> str:
    """Estimate / published, as '×k' or '÷k'."""
    k = math.exp(r["log_ratio"])
    return f"×{k:.2f}" if k >= 1 else f"÷{1 / k:.2f}"


top = ranked[:15]
display(
    Markdown(
        markdown_table(
            top,
            {
                "technique": lambda r: f"{r['technique_id']} {r['name']}",
                "enterpriseLang": lambda r: f"{r['published_p']:g}",
                "estimate": lambda r: f"{r['mean']:.4f}",
                f"{PCT} HDI": lambda r: interval(r["hdi_low"], r["hdi_high"]),
                "estimate / published": factor,
                f"`{TARGET}` k / n": lambda r: (
                    "–" if r["target_trials"] is None else f"{r['target_successes']} / {r['target_trials']}"
                ),
                "families reporting": lambda r: len(r["reporting"]),
                "other pulls": lambda r: (
                    "–" if r["pull_low"] is None else interval(r["pull_low"], r["pull_high"], digits=3)
                ),
                "group": lambda r: r["reason"],
            },
        )
    )
)
# checked: sorted by |log(estimate / published)|; `mtrends` k / n is the table's own count; each group is the one the
# introduction defines (target data: `mtrends`' own rate on the gap's side, at least half the gap away on the log scale)
assert [abs(r["log_ratio"]) for r in ranked] == sorted((abs(r["log_ratio"]) for r in ranked), reverse=True)
for r in ranked:
    t = r["technique_id"]
    assert math.isclose(r["log_ratio"], math.log(r["mean"] / r["published_p"])), t
    own = [c for c in table.for_technique(t) if c.family == TARGET and c.source_id in data.sources]
    assert r["target_trials"] == (sum(c.trials for c in own) if own else None), t
    if not own:
        assert r["reason"] == "no target data", t
    else:
        own_gap = math.log(max(r["target_successes"] / r["target_trials"], 1e-9) / r["published_p"])
        far = own_gap * r["log_ratio"] > 0 and abs(own_gap) >= abs(r["log_ratio"]) / 2
        assert (r["reason"] == "target data") == far, t

# %%
fig, ax = plt.subplots(figsize=(8.5, 7))
for reason, colour in REASONS.items():
    sel = [r for r in ranked if r["reason"] == reason]
    if not sel:
        continue
    ax.errorbar(
        [r["published_p"] for r in sel],
        [r["mean"] for r in sel],
        yerr=[[r["mean"] - r["hdi_low"] for r in sel], [r["hdi_high"] - r["mean"] for r in sel]],
        fmt="o",
        ms=5,
        capsize=2,
        elinewidth=1,
        color=colour,
        label=f"{reason} ({len(sel)})",
    )
for r in ranked[:8]:
    ax.annotate(
        r["technique_id"], (r["published_p"], r["mean"]), xytext=(5, -3), textcoords="offset points", fontsize=8
    )
values = [r["published_p"] for r in ranked] + [r["hdi_low"] for r in ranked] + [r["hdi_high"] for r in ranked]
lims = [max(min(values) / 1.5, 1e-5), min(max(values) * 1.5, 1.0)]
ax.plot(lims, lims, color="k", lw=0.8, ls="--", label="estimate = published")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlim(lims)
ax.set_ylim(lims)
ax.set_xlabel("enterpriseLang's published probability")
ax.set_ylabel(f"estimate on the {TARGET} scale: mean and {PCT} HDI")
ax.legend(title="where the gap comes from", loc="upper left", fontsize="small")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Why, technique by technique
#
# For the largest disagreements: each family that reports the technique, its pooled count, where that count sits
# on the `mtrends` scale once the family's offset is removed, and its share of the precision of the `mtrends`
# value (an approximation that treats offsets and departure scales as known; see notebook 01 and
# `attackprev.analysis.families`).


# %%
def explain(r: dict) -> str:
    """One disagreement in words, from its numbers."""
    pub, est = r["published_p"], r["mean"]
    side = "above" if est > pub else "below"
    if r["reason"] == "no target data":
        why = (
            f"`{TARGET}` has no row for it, so the estimate rests on the other families moved onto the `{TARGET}` "
            "scale by their offsets"
        )
    elif r["reason"] == "target data":
        why = (
            f"`{TARGET}`'s own count, {r['target_successes']} of {r['target_trials']} "
            f"({100 * r['target_rate']:.2f} %), is itself {side} the published value"
        )
    else:
        why = (
            f"`{TARGET}`'s own count, {r['target_successes']} of {r['target_trials']} "
            f"({100 * r['target_rate']:.2f} %), is close to the published value; the other families pull it {side}"
        )
    return (
        f"**{r['technique_id']} {r['name']}**: published {pub:g}, estimate {est:.4f} ({PCT} HDI "
        f"{interval(r['hdi_low'], r['hdi_high'])}, {factor(r)}, P(p > published) = {r['prob_above_published']:.2f}). "
        f"The estimate is {side} because {why}."
    )


for r in ranked[:5]:
    rows = family_weights(result, table, r["technique_id"], TARGET)
    display(
        Markdown(
            explain(r)
            + "\n\n"
            + markdown_table(
                rows,
                {
                    "family": lambda w: f"`{w['family']}`",
                    "k / n": lambda w: "–" if w["trials"] is None else f"{w['successes']} / {w['trials']}",
                    "rate": lambda w: "–" if w["rate"] is None else f"{100 * w['rate']:.2f} %",
                    "offset b_f": lambda w: "–" if w["offset"] is None else f"{w['offset']:+.2f}",
                    f"on the `{TARGET}` scale": lambda w: (
                        "–" if w["on_target_scale"] is None else f"{100 * w['on_target_scale']:.2f} %"
                    ),
                    "σ_f": lambda w: f"{w['departure_sd']:.2f}",
                    f"share of the `{TARGET}` value": lambda w: f"{100 * w['target_share']:.0f} %",
                },
            )
        )
    )

# %% [markdown]
# ## 4. The groups in numbers

# %%
groups = {reason: [r for r in ranked if r["reason"] == reason] for reason in REASONS}


def median_factor(rows: list[dict]) -> str:
    """The median of |log(estimate / published)|, as a factor."""
    return f"{math.exp(statistics.median(abs(r['log_ratio']) for r in rows)):.2f}" if rows else "–"


display(
    Markdown(
        markdown_table(
            [{"reason": k, "rows": v} for k, v in groups.items()],
            {
                "group": lambda g: g["reason"],
                "techniques": lambda g: len(g["rows"]),
                "median factor (either way)": lambda g: median_factor(g["rows"]),
                "estimate above published": lambda g: sum(r["mean"] > r["published_p"] for r in g["rows"]),
                f"published inside the {PCT} HDI": lambda g: sum(
                    r["hdi_low"] <= r["published_p"] <= r["hdi_high"] for r in g["rows"]
                ),
                "largest": lambda g: (
                    f"{g['rows'][0]['technique_id']}: {g['rows'][0]['published_p']:g} → {g['rows'][0]['mean']:.4f}"
                    if g["rows"]
                    else "–"
                ),
            },
        )
    )
)

log_ratios = np.array([r["log_ratio"] for r in ranked])
fig, ax = plt.subplots(figsize=(8, 3.5))
bins = np.linspace(log_ratios.min() - 0.1, log_ratios.max() + 0.1, 25)
ax.hist(
    [[r["log_ratio"] for r in g] for g in groups.values()],
    bins=bins,
    stacked=True,
    color=list(REASONS.values()),
    label=list(REASONS),
)
ax.axvline(0.0, color="k", lw=0.8)
ax.set_xlabel("log(estimate / published)")
ax.set_ylabel("techniques")
ax.legend(fontsize="small")
fig.tight_layout()
plt.show()

# checked: every compared technique is in one group, and those without an `mtrends` row disagree most
assert sum(len(g) for g in groups.values()) == len(ranked) == len(compared)
medians = {k: statistics.median(abs(r["log_ratio"]) for r in g) for k, g in groups.items() if g}
assert max(medians, key=medians.get) == "no target data"

# %% [markdown]
# ## 5. Conclusions

# %%
first = ranked[0]
CLOSE = 1.25  # "close": within this factor either way
within = sum(abs(r["log_ratio"]) < math.log(CLOSE) for r in ranked)
higher = sum(r["mean"] > r["published_p"] for r in ranked)
largest_group = max(groups, key=lambda k: len(groups[k]))
widest_offset = max((f for f in fams if f["offset"] is not None), key=lambda f: abs(f["offset"]["mean"]))
widest_b = widest_offset["offset"]["mean"]
display(
    Markdown(
        f"""* Of the {len(ranked)} techniques with a published value, the estimate on the `{TARGET}` scale is within
  {100 * (CLOSE - 1):.0f} % of it for {within} and higher for {higher}; the published value lies inside the
  {PCT} HDI for {comparison["inside"]}.
* The largest disagreement is {first["technique_id"]} {first["name"]}: {first["published_p"]:g} published,
  {first["mean"]:.4f} estimated ({factor(first)}), group "{first["reason"]}".
* The most common group is "{largest_group}" ({len(groups[largest_group])} techniques). Techniques without an
  `{TARGET}` row rest on the other families through their offsets; the largest offset is
  `{widest_offset["family"]}`'s, {widest_b:+.2f} on the log-odds scale (odds × {math.exp(widest_b):.2f}).
* enterpriseLang's values average percentages published for other populations (M-Trends
  2020's attack lifecycles, the SoK study's malware families and others), so part of a gap can be a question of
  population rather than of error: read each estimate as a share of {target_description(result, table, TARGET)},
  and for a simulation also run the ends of its {PCT} HDI."""
    )
)
# checked: "target data" is the most common group, and fewer estimates lie above their published value than below
assert largest_group == "target data" and higher < len(ranked) / 2
