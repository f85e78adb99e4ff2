"""Writing a technique's report folder: ``report.md``, ``summary.json``, ``posterior.nc``, figures.

The Markdown is rendered from the summary dictionary alone (:func:`render_markdown`), so
every sentence that states a number states one computed in :mod:`attackprev.analysis.technique`. The
folder is written to a temporary sibling and swapped in only when complete
(:func:`write_report_folder`), so a failed run never leaves a half-written report nor
clobbers an earlier one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from attackprev.analysis.technique import TechniqueAnalysis
from attackprev.atomic import json_text, write_folder_atomic

FIGURES = {
    "forest": "Each source's raw rate (open) and its posterior rate θ_s (filled), beside μ and θ_new",
    "mu_posterior": "Posterior of the prevalence μ, with enterpriseLang's value and the 94 % HDI",
    "prior_posterior": "Prior against posterior",
    "ppc": "Posterior predictive check: replicated counts against the observed ones",
    "rank": "Rank plots of the sampled parameters (uniform ranks mean the chains agree)",
    "trace": "Traces of the sampled parameters",
}


# ------------------------------------------------------------------------------ formatting
def pct(x: float, digits: int = 2) -> str:
    """0.0396 -> '3.96 %'."""
    return f"{100 * x:.{digits}f} %"


def num(x: float | None, digits: int = 4) -> str:
    """Round for a table; small numbers keep significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.1f}"
    if abs(x) < 10 ** (-digits + 1):
        return f"{x:.2g}"
    return f"{x:.{digits}f}"


def k3(x: float) -> str:
    """Three significant digits, thousands separated (for κ, which spans orders of magnitude)."""
    return f"{x:,.3g}" if x < 999.5 else f"{x:,.0f}"  # 999.5 and up would round to "1e+03"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, …, 21st, 22nd."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def kint(pair) -> str:
    """'[lo, hi]' with :func:`k3`."""
    return f"[{k3(pair[0])}, {k3(pair[1])}]"


def interval(pair, fmt: Callable = num) -> str:
    """'[lo, hi]'; a bound below 10⁻⁶ is shown as 0."""
    lo, hi = (0.0 if abs(x) < 1e-6 else x for x in pair)
    return f"[{fmt(lo)}, {fmt(hi)}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


# ------------------------------------------------------------------------------ sections
def _single(s: dict) -> dict:
    return s["models"]["single_technique"]


def _multi(s: dict) -> dict | None:
    """The pooled model at the headline (multi-source or multi-technique), or ``None``."""
    models = s["models"]
    return models.get("multi_source") or models["multi_technique"]


def _source(s: dict) -> dict | None:
    return s["models"].get("multi_source")


def _diag_text(d: dict) -> str:
    return (
        f"{d['divergences']} divergent transitions, max R-hat {d['max_rhat']:.3f}, min bulk ESS "
        f"{d['min_ess_bulk']:.0f} ({d['chains']} chains × {d['draws']} draws)"
    )


def _status(s: dict) -> list[str]:
    """The report's first lines: which model is the headline, and whether its fits passed their diagnostics."""
    d = s["diagnostics"]
    single, multi = _single(s), _multi(s)
    out = []
    if _source(s):
        out += [
            f"> **Target population: {_source(s)['target_description']}** (`--target {_source(s)['target']}`): "
            "the headline probability is on this scale.",
            ">",
        ]
    if not s["estimand"]["default"]:
        out += [
            f"> **Headline: the {s['model']} model, not the default multi-source model** — "
            f"{s['estimand']['note']}. Its probability is not on the same footing as the catalogue's "
            "(`reports/techniques/`), which `attackprev export-mal` uses by default.",
            ">",
        ]
    if not d["passed"]:
        return [
            *out,
            "> **⚠ THIS RUN FAILED ITS DIAGNOSTICS — do not use its numbers as they stand.**",
            *[f"> - {p}" for p in d["problems"]],
        ]
    if s["engine"] == "exact":
        return [*out, "> **Engine: exact grid quadrature** (no sampling, so no sampler diagnostics)."]
    text = f"> **Diagnostics passed.** {s['model'].capitalize()} model (the headline): {_diag_text(d)}."
    if multi is not None and single["engine"] == "mcmc":
        text += f" Single-technique fit beside it: {_diag_text(single['diagnostics'])}."
    if single["agreement"]:
        text += (
            f" The single-technique MCMC mean of μ is {single['agreement']['mu_mean_diff_in_mcse']:.1f} Monte Carlo "
            "standard errors from the exact one."
        )
    return [*out, text]


def _question(s: dict) -> list[str]:
    pub = s["published"]
    name = f"{s['technique_id']} {s['technique_name']}".strip()
    text = [
        "## The question",
        "",
        f"How often do attacks use ATT&CK **{name}**, and how sure can we be? "
        f"enterpriseLang gives it `{pub['published_result']}`"
        + (f" (note `{pub['note_path']}`)." if pub["note_path"] else "."),
        "This report fits a hierarchical Beta-Binomial model to each source's count and compares "
        "its posterior with that point estimate."
        if not _source(s)
        else "This report puts every source's count for it on one scale with the multi-source model, sets that "
        "beside the note's own sources fitted alone, and compares both with that point estimate.",
    ]
    if s["attack_migration"]:
        text += ["", f"ATT&CK v18.1: {s['attack_migration']}."]
    return text


def _evidence(s: dict) -> list[str]:
    rows = []
    for e in s["evidence"]:
        published = e["reported_as"] or (f"{e['percent']:g} %" if e["percent"] is not None else "")
        rows.append(
            [
                f"`{e['source_id']}`",
                e["population"],
                published,
                f"{e['successes']} / {e['trials']}",
                e["trials_basis"],
                pct(e["rate"]),
                interval(e["interval_94"], pct),
                f"{e['weight']:g}",
            ]
        )
    out = [
        "## The note's sources" if _source(s) else "## Evidence",
        "",
        *_table(
            [
                "source",
                "what was counted",
                "as published",
                "count",
                "trials known by",
                "rate",
                "94 % interval",
                "weight",
            ],
            rows,
        ),
        "",
        "Intervals are Jeffreys binomial intervals for each source alone. A weight below 1 "
        "tempers that source's likelihood (a power prior).",
    ]
    for rec in s["recoveries"].values():
        out += ["", f"**Denominator inferred.** {rec['text']}"]
    out += [""] + [f"- `{e['source_id']}`: {e['citation']}" for e in s["evidence"] if e["citation"]]
    return out


def _synthesis_section(s: dict) -> list[str]:
    """The headline of the multi-source model: every source on the target scale, and each family's view."""
    m = _source(s)
    if not m:
        return []
    target, prev = m["target"], m["prevalence"]
    c = m["comparison"]
    inside = "inside" if c["inside_hdi_94"] else "outside"
    rows = [
        [
            f"`{r['source_id']}`",
            r["family"],
            r["unit"],
            f"{r['successes']} / {r['trials']:,}",
            num(r["rate"]),
            num(r["on_target_scale"]),
            f"{r['departure_sd']:.2f}",
        ]
        for r in m["pulls"]
    ]
    fam_rows = []
    for f, r in m["by_family"].items():
        obs = f"{r['observed_successes']} / {r['observed_trials']:,}" if r["observed_trials"] else "—"
        scale = m["scales"][f]
        fam_rows.append(
            [
                f,
                num(scale["mean"]),
                interval(scale["hdi_94"]),
                num(r["mean"]),
                f"[{num(r['hdi_low'])}, {num(r['hdi_high'])}]",
                obs,
            ]
        )
    absent = (
        ""
        if m["target_data"]
        else f" No `{target}` source reports this technique: its value comes from the other families, moved by "
        "their offsets, with a departure drawn from the target family's spread, so its interval is wide."
    )
    return [
        "## Every source, on one scale (the headline)",
        "",
        f"**{num(prev['mean'])}** (94 % HDI {interval(prev['hdi_94'])}) on the `{target}` scale: the share of "
        f"{m['target_description']} that use the technique, in a typical year. enterpriseLang's "
        f"{num(c['point_estimate'])} sits at the {c['percentile']:.1f}th percentile of this posterior, "
        f"P(p > {num(c['point_estimate'])}) = {c['prob_greater']:.3f}, {inside} the 94 % HDI.{absent}",
        "",
        f"The model ({m['description']}; `src/attackprev/model/synthesis.py`) lets each family of sources count "
        "its own population: a family enters through a systematic offset learned from every technique that "
        "several families report, and a technique-by-family departure. The table gives each source's count and "
        f"where it alone would put the technique on the `{target}` scale (its rate moved by its family's offset, "
        "at posterior means), to within its family's departure σ_f: sources whose value there is far from the "
        "headline pull it towards themselves, the more so the smaller σ_f.",
        "",
        *_table(["source", "family", "one trial is", "k / n", "rate", f"on the {target} scale", "σ_f"], rows),
        "",
        "The technique on every family's scale (its rate in a typical year of that family's reports), and what "
        "each family would report: the 94 % predictive interval of the rate one new report of that family (a new "
        "year, for M-Trends and CISA) would give.",
        "",
        *_table(
            ["family", "rate on its scale", "94 % HDI", "new report: mean", "94 % interval", "observed k / n"],
            fam_rows,
        ),
        "",
        "Every family and the sources' populations: `reports/evidence.md`; the offsets: "
        "[the catalogue](../techniques/catalogue.md).",
    ]


def _point_estimate(s: dict) -> list[str]:
    pub = s["published"]
    terms = " + ".join(pct(f) for f in pub["figures"])
    k = len(pub["figures"])
    out = ["## enterpriseLang's point estimate", ""]
    arithmetic = f"({terms}) / {k}" if k > 1 else terms
    line = f"Recomputed from the data: {arithmetic} = {pct(pub['naive_mean'], 3)}"
    if pub["published_p"] is not None:
        verdict = "reproduces" if pub["reproduces"] else "does **not** reproduce"
        line += f", which {verdict} the published `Bernoulli({pub['published_p']:g})`"
        line += f" (the note's arithmetic: {pub['published_arithmetic']})." if pub["published_arithmetic"] else "."
    else:
        line += "; the note publishes no Bernoulli probability, so this mean is the point compared."
    out += [
        line,
        "",
        "A mean of percentages weights every source equally whatever its size, and says nothing "
        "about how uncertain the value is.",
    ]
    return out


def _posterior(s: dict) -> list[str]:
    single = _single(s)
    rows_src = single["posterior_table"]
    exact = single["exact"]["table"]
    labels = {"mu": "μ (prevalence)", "kappa": "κ (concentration)¹", "theta_new": "θ_new (a new source)"}
    rows = []
    for key, r in rows_src.items():
        label = labels.get(key, key.replace("theta[", "θ[").replace("]", "]"))
        e = exact[key]
        ivl = kint if key == "kappa" else interval
        if single["engine"] == "mcmc":
            rows.append(
                [
                    label,
                    num(r["mean"]),
                    num(r["sd"]),
                    ivl(r["hdi_94"]),
                    f"{r['ess_bulk']:.0f}",
                    f"{r['ess_tail']:.0f}",
                    f"{r['r_hat']:.3f}",
                    num(e["mean"]),
                    ivl(e["hdi_94"]),
                ]
            )
        else:
            rows.append([label, num(r["mean"]), num(r["sd"]), num(r["median"]), interval(r["hdi_94"])])
    prior = single["priors"]
    heading = "## Posterior of this technique alone" if _multi(s) else "## Posterior"
    out = [
        heading,
        "",
        f"Prior: {prior['label']} — {prior['rationale']} ({prior['reference']}). "
        f"Model: θ_s ~ Beta(μκ, (1 − μ)κ), y_s ~ Binomial(n_s, θ_s), θ integrated out for sampling.",
        "",
    ]
    if single["engine"] == "mcmc":
        out += _table(
            ["quantity", "mean", "sd", "94 % HDI", "ESS bulk", "ESS tail", "R-hat", "exact mean", "exact 94 % HDI"],
            rows,
        )
        a = single["agreement"]
        out += [
            "",
            "¹ κ is heavy-tailed, so its interval is the 94 % HDI of log κ mapped back; its mean is dominated "
            "by the tail and says little.",
            "",
            f"MCMC against the exact grid posterior: the means of μ differ by {num(a['mu_mean_diff'], 5)} "
            f"({a['mu_mean_diff_in_mcse']:.1f} Monte Carlo standard errors of {num(a['mu_mcse'], 5)}); "
            f"the sds by {num(a['mu_sd_diff'], 5)}; the HDI bounds by {num(a['mu_hdi_diff'][0], 5)} "
            f"and {num(a['mu_hdi_diff'][1], 5)}. The exact figures are accurate to "
            f"{num(single['exact']['accuracy']['max_abs_change'], 2)} (largest change of any figure when the "
            f"grid is refined from {single['exact']['accuracy']['resolution']}² to "
            f"{single['exact']['accuracy']['refined_resolution']}² cells).",
        ]
    else:
        out += _table(["quantity", "mean", "sd", "median", "94 % HDI"], rows)
        out += ["", "¹ κ is heavy-tailed, so its interval is the 94 % HDI of log κ mapped back."]
    return out


def _catalogue_section(s: dict) -> list[str]:
    """Two-source-only against multi-technique, side by side, with a paragraph from the numbers."""
    c, single = _multi(s), _single(s)
    if not c:
        return []
    if _source(s):
        return _source_against_single(s)
    a, b = single["prevalence"], s["prevalence"]
    wa, wb = a["hdi_94"][1] - a["hdi_94"][0], b["hdi_94"][1] - b["hdi_94"][0]
    ka, kb = single["concentration"], c["concentration"]
    point = s["comparison"]["point_estimate"]
    rows = [
        ["mean μ", num(a["mean"]), num(b["mean"])],
        ["median μ", num(a["median"]), num(b["median"])],
        ["94 % HDI of μ", interval(a["hdi_94"]), interval(b["hdi_94"])],
        ["width of that HDI", num(wa), num(wb)],
        ["94 % HDI of θ_new", interval(single["predictive"]["hdi_94"]), interval(s["predictive"]["hdi_94"])],
        [
            "median κ (94 % HDI)",
            f"{k3(ka['median'])} {kint(ka['hdi_94'])}",
            f"{k3(kb['median'])} {kint(kb['hdi_94'])}",
        ],
        [
            f"P(μ > {num(point)})",
            f"{single['comparison']['prob_greater']:.2f}",
            f"{s['comparison']['prob_greater']:.2f}",
        ],
        ["MAL expression", f"`{single['mal']['expression']}`", f"`{s['mal']['expression']}`"],
    ]

    change = "narrower" if wb < wa else "wider"
    factor = wa / wb if wb < wa else wb / wa
    text = (
        f"Fitted alone, this technique's {len(single['sources'])} sources say little about how far sources disagree: "
        f"κ's posterior spans {kint(ka['hdi_94'])} (94 % HDI of log κ, median {k3(ka['median'])}). The "
        f"multi-technique model (variant `{c['variant']}`, {c['techniques']} techniques) learns the concentration "
        f"from every technique that several sources report and puts this technique's κ at a median of "
        f"{k3(kb['median'])} (94 % HDI {kint(kb['hdi_94'])}). With it, μ's 94 % HDI is {interval(b['hdi_94'])} "
        f"instead of {interval(a['hdi_94'])} — {factor:.1f} times {change} — and the posterior mean moves from "
        f"{num(a['mean'])} to {num(b['mean'])}. The multi-technique posterior is the default: it is the one the "
        "comparison and the MAL value below use."
    )
    return [
        "## Two-source-only against multi-technique",
        "",
        *_table(["", "this technique alone", "multi-technique (default)"], rows),
        "",
        text,
    ]


def _source_against_single(s: dict) -> list[str]:
    """The note's sources alone against every source on the target scale."""
    m, single = _source(s), _single(s)
    a, b = single["prevalence"], s["prevalence"]
    wa, wb = a["hdi_94"][1] - a["hdi_94"][0], b["hdi_94"][1] - b["hdi_94"][0]
    point = s["comparison"]["point_estimate"]
    head = f"every source, `{m['target']}` scale (default)"
    rows = [
        ["mean", num(a["mean"]), num(b["mean"])],
        ["median", num(a["median"]), num(b["median"])],
        ["94 % HDI", interval(a["hdi_94"]), interval(b["hdi_94"])],
        ["width of that HDI", num(wa), num(wb)],
        [
            "94 % interval of a new source / report",
            interval(single["predictive"]["hdi_94"]),
            interval(s["predictive"]["hdi_94"]),
        ],
        [
            f"P(p > {num(point)})",
            f"{single['comparison']['prob_greater']:.2f}",
            f"{s['comparison']['prob_greater']:.2f}",
        ],
        ["MAL expression", f"`{single['mal']['expression']}`", f"`{s['mal']['expression']}`"],
    ]
    change = "narrower" if wb < wa else "wider"
    factor = wa / wb if wb < wa else wb / wa
    n = len(single["sources"])
    text = (
        f"The note's {n} source{'s' if n != 1 else ''} alone (the single-technique model, μ: the mean rate of "
        "sources like them, whatever each counts) give a mean of "
        f"{num(a['mean'])}, 94 % HDI {interval(a['hdi_94'])}. Every source on the `{m['target']}` scale gives "
        f"{num(b['mean'])}, {interval(b['hdi_94'])} — {factor:.1f} times {change}. The two are different "
        "quantities: the first averages whatever populations the note's sources count; the second is the share "
        f"of {m['target_description']}, with the other families' sources moved onto that scale by their learned "
        "offsets. The multi-source value is the default: the comparison and the MAL value below use it."
    )
    return [
        "## The note's sources alone against every source",
        "",
        *_table(["", "the note's sources alone", head], rows),
        "",
        text,
    ]


def _comparison(s: dict) -> list[str]:
    c = s["comparison"]
    prev = s["prevalence"]
    inside = "inside" if c["inside_hdi_94"] else "outside"
    ratio = prev["mean"] / c["point_estimate"] if c["point_estimate"] > 0 else math.inf
    lo, hi = prev["hdi_94"]
    if _source(s):
        which, x = f"the multi-source model, on the `{_source(s)['target']}` scale", "p"
    else:
        which, x = (f"the {_multi(s)['model']} model" if _multi(s) else "this model"), "μ"
    return [
        "## Comparison with the point estimate",
        "",
        f"Under {which}:",
        "",
        f"enterpriseLang's {num(c['point_estimate'])} sits at the {ordinal(round(c['percentile']))} percentile of the "
        f"posterior of {x}: P({x} > {num(c['point_estimate'])}) = {c['prob_greater']:.2f}. It lies {inside} the "
        f"94 % HDI [{num(lo)}, {num(hi)}]. The posterior mean, {num(prev['mean'])}, is {ratio:.2f} times the point "
        f"estimate, and the posterior median is {num(prev['median'])}; the interval's upper end is "
        f"{hi / lo:.1f} times its lower end."
        if lo > 0
        else "",
    ]


def _mal(s: dict, step: str | None) -> list[str]:
    m = s["mal"]
    prev, pred = s["prevalence"], s["predictive"]
    step_name = step or "<attackStep>"
    if _source(s):
        src = _source(s)
        return [
            "## Recommended MAL value",
            "",
            "```",
            f"| {step_name} [{m['expression']}]",
            "```",
            "",
            f"p = {m['p']:g} is the posterior mean of the technique's rate on the `{src['target']}` scale: the "
            f"probability that one of the {src['target_description']} uses it. Its 94 % HDI is "
            f"{interval(prev['hdi_94'])}; the rate one new `{src['target']}` report would give has 94 % interval "
            f"{interval(pred['hdi_94'])}. MAL takes one number, so the interval is not in the expression: use it "
            "to choose values for sensitivity runs of the simulation." + _mcse_sentence(m.get("mcse")),
            "",
            "What the number means, and what it does not:",
            "",
            '- It is a proxy for "the step is possible in the modelled environment": how often investigated '
            "intrusions used the technique, not a property of the environment being modelled.",
            "- It is on one stated scale; another target (`attackprev fit --target FAMILY`) gives another number, "
            "and every technique of the catalogue is on the same scale, so values are comparable across steps.",
            "- Steps of one simulated environment share the uncertainty of these estimates (the family offsets "
            "move every technique together); one number per step cannot carry that, draws from the posterior can.",
        ]
    return [
        "## Recommended MAL value",
        "",
        "```",
        f"| {step_name} [{m['expression']}]",
        "```",
        "",
        f"p = {m['p']:g} is the posterior mean of μ, which is also the posterior predictive probability "
        f"that the step is available in a new environment (E[θ_new] = E[μ]). The 94 % HDI of μ is "
        f"{interval(prev['hdi_94'])}; a single new source's rate θ_new has 94 % HDI "
        f"{interval(pred['hdi_94'])}. MAL takes one number, so the interval is "
        "not in the expression: use it to choose values for sensitivity runs of the simulation."
        + _mcse_sentence(m.get("mcse")),
    ]


def _mcse_sentence(mcse: float | None) -> str:
    """How many of p's digits the draws support (nothing for the exact engine)."""
    if mcse is None:
        return ""
    return (
        f" The draws fix p to within about ±{2 * mcse:.1g} (two Monte Carlo standard errors of {mcse:.2g}); "
        "its further digits are kept only so that a rerun with the same seed writes the same expression."
    )


def _ttc_section(s: dict) -> list[str]:
    t = s["ttc"]
    if t["kind"] == "degenerate":
        body = [
            "Given that the step is available, its time is exactly 0 days: the TTC is a point mass at 0 "
            f"(a degenerate distribution). Basis: {t['basis']}. In MAL a lone `[Bernoulli(p)]` says exactly "
            "this: TTC = 0 with probability p, and the step is impossible with probability 1 − p."
        ]
    else:
        body = [
            f"Given that the step is available, its time is the published factor `{t['time_factor']}` "
            f"(days; basis: {t['basis']}). Only the Bernoulli factor is replaced."
        ]
    if t.get("remark"):
        body += ["", f"Note: {t['remark']}."]
    return ["## Time to compromise", "", *body]


def _sensitivity(s: dict) -> list[str]:
    from attackprev.model.priors import DEFAULT_PRIOR

    single = _single(s)
    table = single["sensitivity"]
    rows = []
    for r in table:
        marks = [
            m for m, on in (("default", r["prior"] == DEFAULT_PRIOR), ("this run", r["prior"] == single["prior"])) if on
        ]
        mark = f" ({', '.join(marks)})" if marks else ""
        rows.append(
            [
                f"`{r['prior']}`{mark}",
                r["label"],
                num(r["mean"]),
                num(r["median"]),
                interval(r["hdi_94"]),
                f"{r['prob_greater']:.2f}",
                num(r["kappa_median"], 3),
            ]
        )
    means = [r["mean"] for r in table]
    point = s["comparison"]["point_estimate"]
    lo_name = min(table, key=lambda r: r["mean"])["prior"]
    hi_name = max(table, key=lambda r: r["mean"])["prior"]
    spread = max(means) / min(means)
    n_src = len(single["sources"])
    if spread > 1.25:
        verdict = (
            f"With {n_src} source{'s' if n_src != 1 else ''}, this technique's data do not pin down how far "
            "sources disagree (κ), so the choice of heterogeneity prior moves the answer."
        )
    else:
        verdict = "The data dominate: the choice of prior moves the mean by less than 25 %."
    return [
        "## Prior sensitivity",
        "",
        *_table(["prior", "hyperprior", "mean μ", "median μ", "94 % HDI", f"P(μ > {num(point)})", "median κ"], rows),
        "",
        "Of the single-technique model (the hyperprior is that model's; "
        + ("the headline model has its own, fixed priors). " if _multi(s) else "the headline here). ")
        + f"Computed with the exact engine. Across these {len(means)} priors the posterior mean of μ ranges from "
        f"{num(min(means))} (`{lo_name}`) to {num(max(means))} (`{hi_name}`), a factor of {spread:.1f}. {verdict}",
        "",
        *[f"- `{r['prior']}`: {r['reference']}" for r in table],
    ]


def _diag_rows(d: dict) -> list[list[str]]:
    return [
        ["divergent transitions", str(d["divergences"]), f"= {d['limits']['divergences']}"],
        ["max R-hat", f"{d['max_rhat']:.4f}", f"≤ {d['limits']['max_rhat']}"],
        ["min bulk ESS", f"{d['min_ess_bulk']:.0f}", f"≥ {d['limits']['min_ess_bulk']}"],
        ["min tail ESS", f"{d['min_ess_tail']:.0f}", ""],
        ["chains × draws", f"{d['chains']} × {d['draws']}", ""],
    ]


def _diagnostics(s: dict) -> list[str]:
    single, multi = _single(s), _multi(s)
    out = ["## Diagnostics", ""]
    if multi is not None:
        label = (
            f"Multi-source model ({multi['description']}, the headline; every sampled parameter and technique level):"
            if _source(s)
            else f"Multi-technique model (variant `{multi['variant']}`, the headline):"
        )
        out += [label, ""]
        out += _table(["check", "value", "required"], _diag_rows(multi["diagnostics"]))
        out += ["", "Single-technique model:" if single["engine"] == "mcmc" else "Single-technique model (exact):", ""]
    if single["engine"] == "exact":
        acc = single["exact"]["accuracy"]
        text = (
            f"Exact grid engine, {acc['resolution']}² cells; refining to {acc['refined_resolution']}² moved no "
            f"figure by more than {num(acc['max_abs_change'], 2)} (largest: {acc['max_abs_change_figure']})."
        )
        return [*out, text]
    agreement = single["agreement"]["mu_mean_diff_in_mcse"]
    rows = [*_diag_rows(single["diagnostics"]), ["|MCMC − exact| mean of μ", f"{agreement:.2f} MCSE", "≤ 3"]]
    return out + _table(["check", "value", "required"], rows)


def settings_text(settings: dict | None) -> str:
    """'seed S, C chains × D draws after T tuning steps' (or the exact engine's words when nothing was sampled)."""
    if settings is None:
        return "exact grid engine (no sampling)"
    return (
        f"seed {settings['seed']}, {settings['chains']} chains × {settings['draws']} draws after "
        f"{settings['tune']} tuning steps"
    )


def _reproduce(s: dict, command: str) -> list[str]:
    versions = ", ".join(f"{k} {v}" for k, v in s["versions"].items())
    single = _single(s)
    beside = ""
    if _multi(s) is not None and single["settings"]:
        beside = f" The single-technique fit beside it: {settings_text(single['settings'])}."
    data = f"Data SHA-256 `{s['data_sha256'][:16]}…` (`{s['data_file']}`)"
    if _source(s):
        data = (
            f"Headline data: `data/evidence/counts.csv` with `data/sources.csv`, SHA-256 "
            f"`{_source(s)['data_sha256'][:16]}…`; the note's sources: `{s['data_file']}`, SHA-256 "
            f"`{s['data_sha256'][:16]}…`"
        )
    return [
        "## Reproduce",
        "",
        f"`{command}` — headline: {s['reproduce']['headline']}.{beside} {data}. Versions: {versions}.",
    ]


def render_markdown(s: dict, figures: dict[str, str], step: str | None = None, command: str = "") -> str:
    """The report, from the summary dictionary alone."""
    title = f"# {s['technique_id']} {s['technique_name']}: how often attacks use it".replace("  ", " ")
    parts = [
        [title],
        _status(s),
        _question(s),
        _synthesis_section(s),
        _evidence(s),
        _point_estimate(s),
        _posterior(s),
        _catalogue_section(s),
        _comparison(s),
        _mal(s, step),
        _ttc_section(s),
        _sensitivity(s),
        _diagnostics(s),
    ]
    if figures:
        which = []
        if _source(s):
            which = [
                "The μ figure shows the headline, the multi-source rate on the target scale, with the note's sources "
                "fitted alone as a grey dashed line; the forest plot shows both (open markers: the note's sources "
                "alone). The prior, predictive, rank and trace figures are of the single-technique fit sampled for "
                "this report; the multi-source fit's diagnostics are in [the catalogue](../techniques/catalogue.md).",
                "",
            ]
        elif _multi(s):
            which = [
                "The μ figure shows the headline, the multi-technique posterior, with this technique's own "
                "posterior as a grey dashed line; the forest plot shows both (open markers: this technique alone). "
                "The prior, predictive, rank and trace figures are of the single-technique fit sampled for this "
                "report; the multi-technique fit's diagnostics are in [its report](../techniques/catalogue.md).",
                "",
            ]
        parts.append(
            ["## Figures", "", *which]
            + [f"![{FIGURES.get(k, k)}]({v})\n\n*{FIGURES.get(k, k)}.*\n" for k, v in figures.items()]
        )
    parts.append(_reproduce(s, command))
    parts.append(["", "*Generated by `attackprev`; do not edit by hand.*"])
    return "\n\n".join("\n".join(p) for p in parts if p) + "\n"


# ------------------------------------------------------------------------------ writing
def write_technique_report(
    analysis: TechniqueAnalysis,
    out_dir: Path,
    command: str = "",
    figures: bool = True,
) -> Path:
    """Write ``<out_dir>/<technique id, lower case>/`` for one analysis.

    The folder appears whole or not at all (:func:`attackprev.atomic.write_folder_atomic`). When
    the analysis's figures are being drawn by worker processes (``analysis.figures``), they
    are collected last; otherwise they are drawn here.
    """
    from attackprev.inference.diagnostics import package_versions

    s = analysis.summary
    s["reproduce"] = {"command": command, "headline": f"{s['model_description']}, {settings_text(s['settings'])}"}
    s["versions"] = package_versions()
    target = Path(out_dir) / s["technique_id"].lower()
    step = None
    try:
        from attackprev.mal.mapping import load_steps

        mapping = load_steps().get(s["technique_id"])
        step = mapping.attack_step if mapping else None
    except Exception:
        step = None
    s["mal"]["attack_step"] = step
    pending = analysis.figures
    draw = figures and analysis.tree is not None

    def write(tmp: Path) -> None:
        from attackprev.reporting.figures import FILENAMES, write_figures

        if analysis.tree is not None:
            save_posterior(analysis.tree, tmp / "posterior.nc")
        figs = dict(FILENAMES) if draw else {}
        (tmp / "summary.json").write_text(json_text(s), encoding="utf-8")
        (tmp / "report.md").write_text(render_markdown(s, figs, step, command), encoding="utf-8")
        if draw and pending is not None:
            pending.collect(tmp)
        elif draw:
            write_figures(
                analysis.tree,
                tmp,
                s["comparison"]["point_estimate"],
                tuple(s["prevalence"]["hdi_94"]),
                s["technique_id"],
                headline=analysis.headline,
            )

    try:
        write_folder_atomic(target, write)
    finally:
        if pending is not None and not pending.done:  # not collected: free the workers, drop the files
            pending.discard()
    return target


def save_posterior(tree, path: Path) -> None:
    """Save the DataTree compactly (sample statistics the report does not use are dropped).

    ArviZ's ``created_at`` time stamps are dropped too, so the same fit writes the same file.
    """
    import xarray as xr

    keep = ["diverging", "step_size", "depth", "energy", "mean_tree_accept", "n_steps"]
    groups = {}
    for name, node in tree.children.items():
        ds = node.to_dataset()
        if name == "sample_stats":
            ds = ds[[v for v in keep if v in ds.data_vars]]
        ds.attrs = {k: v for k, v in ds.attrs.items() if k != "created_at"}
        groups[name] = ds
    out = xr.DataTree.from_dict(groups)
    out.attrs.update(tree.attrs)
    encoding = {
        f"/{g}": {v: {"zlib": True, "complevel": 4} for v in ds.data_vars if ds[v].dtype != object}
        for g, ds in groups.items()
    }
    out.to_netcdf(path, engine="h5netcdf", encoding=encoding)
