"""The simulation report: ``report.md``, ``summary.json`` and figures in ``OUT/simulation/<name>/``.

Written by ``attackprev simulate``; every number comes from :mod:`attackprev.analysis.simulation`
and is rendered from ``summary.json`` alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from attackprev.atomic import json_text, round_floats, write_folder_atomic
from attackprev.reporting.figures import _new_figure, _percent_axis, _save

SIMULATION_DIR = "simulation"
REACH_FIGURE = "reach.png"
SENSITIVITY_FIGURE = "sensitivity.png"
#: Inputs listed per target in the report's sensitivity table.
TOP_INPUTS = 8


def _p(x: float | None) -> str:
    if x is None:
        return "–"
    if x == 0:
        return "0"
    return f"{x:.3g}" if x >= 0.001 else f"{x:.2e}"


def _days(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g} d"


def _time(t: dict) -> str:
    if t["mean"] is None:
        return f"– (reached in {t['episodes']} episodes)"
    return f"{_days(t['mean'])} ({_days(t['hdi_94'][0])}–{_days(t['hdi_94'][1])}; {t['episodes']} episodes)"


def render_simulation_markdown(s: dict) -> str:
    """The report from its summary (``summary.json``) alone."""
    lines = []
    fit = s["posterior"]
    if not fit["diagnostics_passed"]:
        lines += [
            "> **Sampler diagnostics failed** for the posterior these draws come from: "
            + "; ".join(fit["problems"])
            + ". The simulation below carries that fit's problems; read it with care.",
            "",
        ]
    lines += [f"# Attack simulation with the posterior: {s['model']['name']}", ""]
    t0 = s["targets"][0]
    lines += [
        f"> **{t0['target']}** is reached with probability **{_p(t0['posterior']['mean'])}** "
        f"(94 % interval across posterior draws {_p(t0['posterior']['hdi_94'][0])}–"
        f"{_p(t0['posterior']['hdi_94'][1])}); with the language's own values {_p(t0['language']['p'])}, "
        f"with the posterior means plugged in {_p(t0['plug_in']['p'])}."
        + (
            f" The input that moves it most: {t0['sensitivity'][0]['input']} "
            f"({t0['sensitivity'][0]['name']}, {100 * t0['sensitivity'][0]['share']:.0f} % of its variance)."
            if t0["sensitivity"] and (t0["sensitivity"][0]["share"] or 0) > 0
            else ""
        ),
        "",
        "## The question",
        "",
        f"An attacker starts at {', '.join(f'`{e}`' for e in s['entry_points'])} in the instance model "
        f"`{s['model']['file']}` of the language `{s['language']['file']}` "
        f"({s['graph']['nodes']} attack-graph nodes, {s['graph']['and_steps']} of them AND steps). "
        f"{s['graph']['mapped_nodes']} steps stand for {len(s['techniques'])} ATT&CK techniques "
        f"(step table `{s['steps']['file']}`); each gets, in every one of {s['draws']} joint draws from the "
        f"multi-source posterior, its technique's probability on the **{s['scale']}** scale "
        f"({s['scale_description']}). Joint draws keep what the techniques share: one draw sets every "
        "technique at once. The other steps keep the language's own TTC. For each draw, "
        f"{s['episodes']} simulated episodes give the probability that each target is reached "
        "(a step is possible with its probability, independently in each episode; an OR step is reached "
        "from any reached parent, an AND step from all of them; mal-simulator's rules, checked against "
        "it in the tests).",
        "",
        "## P(reached): across the posterior, and with point values",
        "",
        "| target | posterior: mean | median | 94 % interval across draws | language's own values | "
        "posterior means plugged in | Monte Carlo SE per draw |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in s["targets"]:
        p = t["posterior"]
        lines.append(
            f"| `{t['target']}` | {_p(p['mean'])} | {_p(p['median'])} | {_p(p['hdi_94'][0])}–{_p(p['hdi_94'][1])} | "
            f"{_p(t['language']['p'])} ± {_p(t['language']['se'])} | {_p(t['plug_in']['p'])} ± "
            f"{_p(t['plug_in']['se'])} | {_p(p['mc_se'])} |"
        )
    lines += [
        "",
        f"![P(reached) across posterior draws]({REACH_FIGURE})",
        "",
        "The posterior mean is the probability that the target is reached once the uncertainty about every "
        "step is averaged over; plugging the posterior means into the graph gives another number, because "
        "reaching a target is a product and a union of many steps (a nonlinear function of them). The "
        "interval is the spread of the per-draw probability across the posterior: how much the answer "
        f"could move given what the evidence leaves open. Each per-draw value carries Monte Carlo noise "
        f"(SE in the last column, from {s['episodes']} episodes); "
        + "; ".join(
            f"for `{t['target']}` it makes up {100 * t['posterior']['noise_share']:.0f} % of the spread's variance"
            for t in s["targets"]
        )
        + ". The point-value columns use "
        f"{s['point_episodes']} episodes (± one SE).",
        "",
    ]
    timed = [t for t in s["targets"] if t["ttc"] is not None]
    if timed:
        lines += [
            "## Time to compromise",
            "",
            "Steps with a time factor in the language take that time once possible (days); a target's time is "
            "the earliest it can be reached when every possible path is attacked at once (an OR step after its "
            "first reached parent, an AND step after its last). The table gives the distribution of that time "
            f"over the episodes in which the target is reached ({s['ttc_episodes']} per posterior draw, pooled "
            f"over the draws; the point-value columns from {s['ttc_point_episodes']} episodes): its mean, the "
            "94 % interval of the time itself and how many episodes reached the target (a rare target's "
            "point-value times rest on few episodes). With so few episodes per draw the pooled distribution "
            "mixes the posterior's uncertainty with the episodes' own randomness; it does not separate them.",
            "",
            "| target | posterior draws: mean (94 % interval; episodes reached) | language's own values | "
            "posterior means plugged in |",
            "|---|---|---|---|",
        ]
        for t in timed:
            c = t["ttc"]
            lines.append(
                f"| `{t['target']}` | {_time(c['posterior'])} | {_time(c['language'])} | {_time(c['plug_in'])} |"
            )
        lines += [""]
    lines += [
        "## Which uncertainties matter",
        "",
        "For each target, the share of the variance of P(reached) across posterior draws that each "
        "technique's probability explains alone (first-order variance share, estimated from the same draws "
        "by binning them on the input; Monte Carlo noise and the bins' own scatter are taken out), and "
        "P(reached) over the draws in which the technique's probability lies in its lowest and its highest "
        "tenth. The techniques' probabilities are correlated in the posterior (they share the model's "
        "hyperparameters), so a share also counts what moves with the technique, and the shares need not "
        "add up to 1.",
        "",
    ]
    for t in s["targets"]:
        lines += [
            f"**`{t['target']}`**",
            "",
            "| technique | steps | share of variance | P(reached), lowest tenth | highest tenth |",
            "|---|---|---|---|---|",
        ]
        ranked = all(r["share"] is not None for r in t["sensitivity"])
        for r in t["sensitivity"][:TOP_INPUTS]:
            share = f"{100 * r['share']:.1f} %" if ranked else "–"
            lines.append(
                f"| {r['input']} {r['name']} | {r['steps']} | {share} | {_p(r['low_decile'])} | "
                f"{_p(r['high_decile'])} |"
            )
        if not ranked:
            lines += [
                "",
                f"Monte Carlo noise makes up {100 * t['posterior']['noise_share']:.0f} % of the spread of this "
                "target's P(reached) across draws, so the shares cannot be told from noise: run with more "
                "`--episodes` to rank the inputs.",
            ]
        lines += [""]
    lines += [
        f"![Sensitivity]({SENSITIVITY_FIGURE})",
        "",
        "## The techniques' probabilities",
        "",
        "| technique | steps | posterior mean | 94 % HDI | language's value |",
        "|---|---|---|---|---|",
    ]
    for r in s["techniques"]:
        lines.append(
            f"| {r['technique_id']} {r['name']} | {r['steps']} | {_p(r['mean'])} | {_p(r['hdi_94'][0])}–"
            f"{_p(r['hdi_94'][1])} | {r['language']} |"
        )
    lines += [
        "",
        "## What this assumes",
        "",
        f"- A technique's probability is read as the chance that its step is possible in an intrusion, as "
        f"enterpriseLang reads its published percentages; on the {s['scale']} scale it is the share of "
        f"{s['scale_description']} in which the technique is seen. That is a statement about how common a "
        "technique is, not about whether it would succeed against this model's assets.",
        "- Steps are independent within an episode given the draw: two steps of the same technique share "
        "its probability, never its outcome.",
        f"- {s['graph']['unmapped_probabilistic']} steps that no technique maps keep a probability from the "
        "language below 1; they do not vary across draws.",
        "",
        "## Reproduce",
        "",
        f"`{s['command']}` (seed {s['seed']}; posterior: multi-source model, data sha256 "
        f"{fit['data_sha256'][:12]}, {fit['settings']}). Inputs: language sha256 "
        f"{s['language']['sha256'][:12]}, model sha256 {s['model']['sha256'][:12]}, step table sha256 "
        f"{s['steps']['sha256'][:12]}.",
        "",
    ]
    return "\n".join(lines)


def _reach_figure(s: dict, draws: dict[str, np.ndarray], path: Path) -> None:
    targets = s["targets"]
    fig = _new_figure((6.4, 2.2 * len(targets) + 0.6))
    axes = fig.subplots(len(targets), 1, squeeze=False)[:, 0]
    for ax, t in zip(axes, targets, strict=True):
        x = draws[t["target"]]
        ax.hist(x, bins=40, color="#7aa6d6", edgecolor="white", linewidth=0.4)
        ax.axvline(t["posterior"]["mean"], color="#08306b", lw=1.6, label="posterior: mean over draws")
        ax.axvspan(*t["posterior"]["hdi_94"], color="#08306b", alpha=0.08, label="94 % interval across draws")
        ax.axvline(t["language"]["p"], color="#d7191c", lw=1.4, ls="--", label="language's own values")
        ax.axvline(t["plug_in"]["p"], color="#fdae61", lw=1.4, ls=":", label="posterior means plugged in")
        ax.set_title(t["target"], fontsize=9, loc="left")
        ax.set_yticks([])
        _percent_axis(ax)
    axes[-1].set_xlabel("P(reached) per posterior draw")
    axes[0].legend(fontsize=7, loc="upper right", frameon=False)
    _save(fig, path)


def _sensitivity_figure(s: dict, path: Path) -> None:
    targets = s["targets"]
    fig = _new_figure((6.4, 0.35 * TOP_INPUTS * len(targets) + 0.8))
    axes = fig.subplots(len(targets), 1, squeeze=False)[:, 0]
    for ax, t in zip(axes, targets, strict=True):
        rows = t["sensitivity"][:TOP_INPUTS][::-1]
        ax.barh([f"{r['input']} {r['name'][:28]}" for r in rows], [r["share"] or 0.0 for r in rows], color="#7aa6d6")
        ax.set_title(t["target"], fontsize=9, loc="left")
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=7)
        _percent_axis(ax)
    axes[-1].set_xlabel("first-order share of the variance of P(reached) across draws")
    _save(fig, path)


def write_simulation_report(summary: dict, reach_draws: dict[str, np.ndarray], out: str | Path, name: str) -> Path:
    """Write ``OUT/simulation/<name>/`` atomically (all files or none). Returns the folder."""
    folder = Path(out) / SIMULATION_DIR / name
    summary = round_floats(summary)
    text = render_simulation_markdown(summary)

    def write(tmp: Path) -> None:
        (tmp / "report.md").write_text(text, encoding="utf-8")
        (tmp / "summary.json").write_text(json_text(summary), encoding="utf-8")
        _reach_figure(summary, reach_draws, tmp / REACH_FIGURE)
        _sensitivity_figure(summary, tmp / SENSITIVITY_FIGURE)

    write_folder_atomic(folder, write)
    return folder
