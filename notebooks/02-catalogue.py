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
# `reports/techniques/` holds the multi-technique model: one hierarchical Beta-Binomial model over every
# technique with countable evidence, which learns how far sources tend to disagree from all techniques at once.
# This notebook puts its posterior next to the probability enterpriseLang publishes for each technique, finds
# the largest disagreements and explains each one from the numbers:
#
# * **other figures**: the published value averages figures that the model does not use (they have no
#   denominator, count something else, or repeat another figure — see `data/excluded.csv`);
# * **shrinkage**: a technique with one small count is pulled toward the typical technique, because a count
#   like 1 of 227 says little on its own;
# * **sources disagree**: two sources that count different things (e.g. capabilities in malware families
#   against techniques seen in intrusions) give very different rates, and the model widens its interval;
# * **pooling**: agreeing sources combined by their sizes rather than averaged as percentages.
#
# It reads the saved posterior (`reports/techniques/posterior.nc`); nothing is refitted.
#
# The outputs shown are from a full run, made after `make report` with
# `.venv/bin/jupyter execute --inplace notebooks/*.ipynb`.

# %%
import csv
import math
import statistics

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from IPython.display import Markdown, display
from scipy.special import expit

from attackprev.analysis.weighting import (
    catalogue_comparison,
    excluded_figures,
    interval,
    markdown_table,
    repo_root,
)
from attackprev.evidence.tables import load_evidence
from attackprev.model.catalogue import VARIANTS

ROOT = repo_root()
FOLDER = ROOT / "reports" / "techniques"
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "axes.grid": True})

evidence = load_evidence()
tree = xr.open_datatree(FOLDER / "posterior.nc")
variant = tree.attrs.get("variant", "")
current = tree.attrs.get("data_sha256") == evidence.digest
rows = catalogue_comparison(tree, evidence)
typical = expit(tree["posterior"]["mu_logit_mean"].values.ravel().astype(float))
typical_median = float(np.median(typical))
tree.close()

with open(FOLDER / "catalogue.csv", encoding="utf-8", newline="") as f:
    saved = {r["technique_id"]: float(r["mean"]) for r in csv.DictReader(f)}
gap = max(abs(saved[r["technique_id"]] - r["mean"]) for r in rows if r["technique_id"] in saved)

compared = [r for r in rows if r["published"] is not None]
REASONS = ["other figures", "shrinkage", "sources disagree", "pooling", "agrees"]
COLOURS = dict(zip(REASONS, ["C3", "C0", "C1", "C2", "0.6"], strict=True))

display(
    Markdown(
        f"{len(rows)} techniques; {len(compared)} have a published Bernoulli probability to compare with. "
        f"Model variant `{variant}` ({VARIANTS[variant].description}). "
        + (
            "The posterior was fitted to the current evidence tables. "
            if current
            else "**The saved posterior was fitted to other evidence tables; rerun `attackprev fit --all`.** "
        )
        + f"Posterior means recomputed from `posterior.nc` match `catalogue.csv` to within {gap:.1e}."
    )
)

# %% [markdown]
# ## 1. The largest disagreements
#
# Sorted by how many times larger or smaller the posterior mean is than the published value.


# %%
def factor(r: dict) -> str:
    """Posterior mean / published, as '×k' or '÷k'."""
    k = math.exp(r["log_ratio"])
    return f"×{k:.2f}" if k >= 1 else f"÷{1 / k:.2f}"


top = compared[:12]
display(
    Markdown(
        markdown_table(
            top,
            {
                "technique": lambda r: f"{r['technique_id']} {r['name']}",
                "evidence used": lambda r: r["evidence"],
                "enterpriseLang": lambda r: f"{r['published']:g}",
                "posterior mean": lambda r: f"{r['mean']:.4f}",
                "94 % HDI": lambda r: interval(r["hdi_low"], r["hdi_high"]),
                "posterior / published": factor,
                "main reason": lambda r: r["reason"],
            },
        )
    )
)

# %%
fig, ax = plt.subplots(figsize=(8.5, 7))
for reason in REASONS:
    sel = [r for r in compared if r["reason"] == reason]
    if not sel:
        continue
    ax.errorbar(
        [r["published"] for r in sel],
        [r["mean"] for r in sel],
        yerr=[[r["mean"] - r["hdi_low"] for r in sel], [r["hdi_high"] - r["mean"] for r in sel]],
        fmt="o",
        ms=5,
        capsize=2,
        elinewidth=1,
        color=COLOURS[reason],
        label=f"{reason} ({len(sel)})",
    )
for r in compared[:7]:
    ax.annotate(r["technique_id"], (r["published"], r["mean"]), xytext=(5, -3), textcoords="offset points", fontsize=8)
lims = [3e-3, 1.0]
ax.plot(lims, lims, color="k", lw=0.8, ls="--", label="posterior = published")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlim(lims)
ax.set_ylim(2e-4, 1.0)
ax.set_xlabel("enterpriseLang's published probability")
ax.set_ylabel("posterior mean of μ and 94 % HDI (multi-technique model)")
ax.legend(title="main reason for the gap", loc="upper left", fontsize="small")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Why: splitting each gap in two
#
# For each technique the gap between the posterior mean and the published value is the product of two factors:
#
# * **figures**: the mean of the figures the model uses, divided by the published value. It differs from 1 when
#   the published arithmetic averages other figures too, or reads a figure differently;
# * **model**: the posterior mean divided by that same mean of figures. It differs from 1 when the model shrinks a
#   small count toward the typical technique, or weights sources by their size, or widens a disagreement.
#
# The "main reason" is whichever factor is further from 1 (both within 10 % counts as agreeing).

# %%
fig, ax = plt.subplots(figsize=(8.5, 4.8))
labels = [f"{r['technique_id']} {r['name'][:28]}" for r in top][::-1]
ev = [math.exp(r["evidence_part"]) for r in top][::-1]
mo = [math.exp(r["model_part"]) for r in top][::-1]
pos = np.arange(len(top))
# bars start at 1 (no change) and run to the factor, left for factors below 1, right for those above
ev_w, mo_w = np.array(ev) - 1.0, np.array(mo) - 1.0
ax.barh(pos + 0.2, ev_w, height=0.4, left=1.0, color="C3", label="figures: mean of modelled figures / published")
ax.barh(pos - 0.2, mo_w, height=0.4, left=1.0, color="C0", label="model: posterior mean / mean of modelled figures")
ax.axvline(1.0, color="k", lw=0.8)
ax.set_xscale("log")
ax.set_yticks(pos, labels, fontsize=8)
ax.set_xlabel("factor (1 = no change)")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small")
fig.tight_layout()
plt.show()

counts = {reason: [r for r in compared if r["reason"] == reason] for reason in REASONS}
display(
    Markdown(
        markdown_table(
            [{"reason": k, "rows": v} for k, v in counts.items()],
            {
                "main reason": lambda r: r["reason"],
                "techniques": lambda r: len(r["rows"]),
                "largest example": lambda r: (
                    f"{r['rows'][0]['technique_id']}: {r['rows'][0]['published']:g} → {r['rows'][0]['mean']:.4f}"
                    if r["rows"]
                    else "–"
                ),
            },
        )
    )
)

# %% [markdown]
# ## 3. Remote Desktop Protocol (T1076): the published value uses figures the model cannot count
#
# enterpriseLang averages four percentages for RDP. Only M-Trends' is a share of attacks with a known (inferred)
# denominator; the others are shares of sub-populations (ransomware infections, organisations) without one.

# %%
rdp = next(r for r in rows if r["technique_id"] == "T1076")
left_out = excluded_figures("T1076")
display(
    Markdown(
        f"Published: `{rdp['published_result']}`, from `{rdp['published_arithmetic']}`.\n\n"
        f"Used by the model: {rdp['evidence']} = {rdp['modelled_figures_mean']:.4f}. Left out:\n\n"
        + markdown_table(
            left_out,
            {
                "source": lambda r: f"`{r['source_key']}`",
                "as quoted": lambda r: r["reported_as"],
                "why": lambda r: r["reason"],
            },
        )
        + f"\n\nThe posterior mean is {rdp['mean']:.4f} (94 % HDI {interval(rdp['hdi_low'], rdp['hdi_high'])}), "
        f"{math.exp(-rdp['log_ratio']):.1f} times smaller than {rdp['published']:g}; "
        f"{100 * abs(rdp['evidence_part']) / (abs(rdp['evidence_part']) + abs(rdp['model_part'])):.0f} % of the gap "
        f"(on the log scale) comes from the figures, not the model. "
        + (
            "The published value lies outside the HDI."
            if not rdp["inside_hdi"]
            else "The published value lies inside the HDI."
        )
    )
)

# %% [markdown]
# ## 4. Single-source techniques are shrunk toward the typical technique
#
# A technique reported by one source with a small count (1 of 227 is 0.44 %) could be rare, or could have been
# unlucky in that sample. The model borrows strength from the other techniques: it pulls small counts toward the
# typical technique's prevalence, and pulls less the more cases a source counted.

# %%
single = [r for r in compared if r["sources"] == 1]
fig, ax = plt.subplots(figsize=(7.5, 5))
raw = np.array([r["pooled_rate"] for r in single])
post = np.array([r["mean"] for r in single])
cases = np.array([r["successes"] for r in single])
sc = ax.scatter(raw, post, c=np.log10(cases), cmap="viridis", s=30, zorder=3)
fig.colorbar(sc, ax=ax, label="log10(number of cases counted)")
ax.plot([1e-3, 1], [1e-3, 1], "k--", lw=0.8, label="posterior = raw rate")
ax.axhline(typical_median, color="C3", lw=1, ls=":", label=f"typical technique, {typical_median:.3f}")
groups: dict[float, list[dict]] = {}  # the most shrunk, labelled once per raw rate
for r in sorted(single, key=lambda r: -abs(math.log(r["mean"] / r["pooled_rate"])))[:5]:
    groups.setdefault(round(r["pooled_rate"], 5), []).append(r)
for group in groups.values():
    ids = ", ".join(r["technique_id"] for r in group)
    where = (group[0]["pooled_rate"], group[0]["mean"])
    ax.annotate(ids, where, xytext=(4, -12 if len(group) > 1 else 4), textcoords="offset points", fontsize=8)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlim(2e-3, 1)
ax.set_ylim(2e-3, 1)
ax.set_xlabel("the source's raw rate (cases / trials)")
ax.set_ylabel("posterior mean of μ")
ax.legend(loc="upper left", fontsize="small")
fig.tight_layout()
plt.show()

few = [r for r in single if r["successes"] <= 5]
many = [r for r in single if r["successes"] >= 20]
pull_few = statistics.median(r["mean"] / r["pooled_rate"] for r in few) if few else float("nan")
pull_many = statistics.median(r["mean"] / r["pooled_rate"] for r in many) if many else float("nan")
t1040 = next(r for r in rows if r["technique_id"] == "T1040")
display(
    Markdown(
        f"Of {len(single)} single-source techniques, the {len(few)} with at most 5 cases end with a posterior mean a "
        f"median {pull_few:.1f} times their raw rate; the {len(many)} with at least 20 cases, {pull_many:.2f} times. "
        f"T1040 Network Sniffing, {t1040['evidence']} = {t1040['pooled_rate']:.4f}, becomes {t1040['mean']:.4f} "
        f"(94 % HDI {interval(t1040['hdi_low'], t1040['hdi_high'])}). The typical technique's prevalence, "
        f"logit⁻¹ of the catalogue mean, has posterior median {typical_median:.3f}."
    )
)

# %% [markdown]
# ## 5. Two sources that count different things
#
# M-Trends 2020 reports the share of *attack lifecycles* (intrusions Mandiant investigated) in which a technique
# was seen. The SoK study reports the share of *Windows malware families* whose samples show the capability.
# A family that *can* list files (T1083) need not be used in an intrusion to do so, so SoK's rates can be far
# higher; and techniques done by hand in an intrusion (e.g. clearing logs) need not be in any malware, so they can
# also be lower. Where the two disagree, the model learns a small concentration κ for that technique (sources differ a
# lot) and gives a wide interval.

# %%
both = [r for r in rows if {"mtrends2020", "sok2019_windows_malware"} <= set(r["rates"])]
mt = np.array([r["rates"]["mtrends2020"] for r in both])
sok = np.array([r["rates"]["sok2019_windows_malware"] for r in both])
ratio = sok / mt
kappa_split = 3.0
fig, ax = plt.subplots(figsize=(7, 5.5))
far = (ratio > kappa_split) | (ratio < 1 / kappa_split)
ax.scatter(mt[far], sok[far], color="C1", s=30, zorder=3, label=f"rates differ by more than {kappa_split:g}×")
ax.scatter(mt[~far], sok[~far], color="C0", s=30, zorder=3, label=f"within {kappa_split:g}×")
for r, a, b in zip(both, mt, sok, strict=True):
    ax.annotate(r["technique_id"], (a, b), xytext=(4, 2), textcoords="offset points", fontsize=7)
ax.plot([1e-3, 1], [1e-3, 1], "k--", lw=0.8, label="same rate")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("M-Trends 2020: share of attack lifecycles")
ax.set_ylabel("SoK 2019: share of Windows malware families")
ax.legend(loc="upper left")
fig.tight_layout()
plt.show()

apart = [r for r, f in zip(both, far, strict=True) if f]
close = [r for r, f in zip(both, far, strict=True) if not f]
spread = float(np.median(np.maximum(ratio, 1 / ratio)))
width = {
    "apart": statistics.median(r["hdi_high"] / r["hdi_low"] for r in apart) if apart else float("nan"),
    "close": statistics.median(r["hdi_high"] / r["hdi_low"] for r in close) if close else float("nan"),
}
kap = {
    "apart": statistics.median(r["kappa_median"] for r in apart) if apart else float("nan"),
    "close": statistics.median(r["kappa_median"] for r in close) if close else float("nan"),
}
widest = both[int(np.argmax(np.maximum(ratio, 1 / ratio)))]
offsets = VARIANTS[variant].source_offsets
display(
    Markdown(
        f"Both sources report {len(both)} techniques. SoK's rate is the higher in {int(np.sum(ratio > 1))} of them "
        f"and the lower in {int(np.sum(ratio < 1))}; the two rates differ by a median factor of {spread:.1f} "
        f"(whichever is higher); the largest gap is "
        f"{widest['technique_id']} {widest['name']} ({widest['evidence']}: "
        f"{100 * widest['rates']['mtrends2020']:.1f} % against "
        f"{100 * widest['rates']['sok2019_windows_malware']:.1f} %). "
        f"For the {len(apart)} techniques whose two rates differ by more than a factor of {kappa_split:g}, the median "
        f"κ is {kap['apart']:.1f} and the HDI's upper end is a median {width['apart']:.0f} times its lower end; "
        f"for the "
        f"{len(close)} that agree better, κ is {kap['close']:.1f} and the ratio {width['close']:.0f}. "
        + (
            "The chosen model has a systematic offset per source, so μ is on M-Trends' scale."
            if offsets
            else "The chosen model has no systematic source offsets (PSIS-LOO preferred it), so for these "
            "techniques μ is the mean of what malware can do and what intrusions showed: read its interval, "
            "not just its mean."
        )
    )
)

# %% [markdown]
# ## 6. Conclusions

# %%
inside = sum(1 for r in compared if r["inside_hdi"])
outside = [r for r in compared if not r["inside_hdi"]]
first = compared[0]
higher = sum(1 for r in compared if r["mean"] > r["published"])
within = sum(1 for r in compared if abs(r["log_ratio"]) < math.log(1.25))

display(
    Markdown(
        f"""* enterpriseLang's published probability lies inside the 94 % HDI for {inside} of {len(compared)}
  techniques{"" if not outside else " (not for " + ", ".join(r["technique_id"] for r in outside) + ")"}; the
  posterior mean is within 25 % of it for {within}, and higher than it for {higher}.
* The largest disagreement is {first["technique_id"]} {first["name"]}: {first["published"]:g} published,
  {first["mean"]:.4f} posterior ({factor(first)}), reason: {first["reason"]}.
* **Other figures** ({len(counts["other figures"])} techniques): RDP (T1076) publishes {rdp["published"]:g}, the
  mean of {rdp["sources"] + len(left_out)} figures of which {len(left_out)} cannot be counted; the model's evidence,
  {rdp["evidence"]}, gives {rdp["mean"]:.4f}. Published values outside the HDI: {
            ", ".join(f"{r['technique_id']} ({r['reason']})" for r in outside) or "none"
        }.
* **Shrinkage** ({len(counts["shrinkage"])} techniques) raises small single counts: sources with at most 5 cases
  move up a median {pull_few:.1f} times (T1040: {t1040["pooled_rate"]:.4f} → {t1040["mean"]:.4f}); the published
  value stays inside the HDI for {sum(1 for r in counts["shrinkage"] if r["inside_hdi"])} of these
  {len(counts["shrinkage"])}. It is the price of treating techniques as comparable;
  where a technique is known to be rare, use the lower end of its HDI.
* **Sources disagree** ({len(counts["sources disagree"])} techniques as the main reason): of the {len(both)}
  techniques both M-Trends (intrusions) and SoK (malware capabilities) report, {len(apart)} have rates more than
  {kappa_split:g} times apart (up to {widest["technique_id"]}: {100 * widest["rates"]["mtrends2020"]:.1f} % against
  {100 * widest["rates"]["sok2019_windows_malware"]:.1f} %); the model gives them a median κ of {kap["apart"]:.1f}
  against {kap["close"]:.1f} for the rest, and HDIs whose upper end is a median {width["apart"]:.0f} times the lower
  (against {width["close"]:.0f}).
* For a simulation, the posterior mean is the value to use; for the techniques above, rerun with the ends of the
  94 % HDI to see whether the attack-path results depend on them."""
    )
)
