"""ATT&CK Navigator layers (format 4.5, ATT&CK Enterprise v18) of the catalogue.

One layer per family's scale (the target's among them) scores each technique by its posterior
mean probability, and one layer scores how far the evidence moves enterpriseLang's published
values. Scores are integers, because Navigator clients such as mitreattack-python's ``navlayers``
turn a float score into an int: a probability layer's score is the mean in basis points
(1 bp = 0.01 %), the shift layer's is 100 × log10(estimate / published). The exact mean, its
94 % HDI and the counts behind it are in each technique's comment and metadata.
"""

from __future__ import annotations

import math

from attackprev.analysis.browse import evidence_text
from attackprev.atomic import json_text
from attackprev.evidence.attack import ATTACK_VERSION

LAYER_VERSIONS = {"attack": ATTACK_VERSION.split(".")[0], "navigator": "5.1.0", "layer": "4.5"}
DOMAIN = "enterprise-attack"
#: Basis points per unit probability: a probability layer's score.
BASIS_POINTS = 10_000
#: The gradient's top, in basis points: the smallest of these at or above most (95 %) of a layer's scores.
GRADIENT_TOPS = (100, 200, 500, 1_000, 2_000, 5_000, 10_000)
PROBABILITY_COLOURS = ["#ffffff", "#fdae61", "#d7191c"]
#: The shift layer: 100 × log10(estimate / published), shown from a factor 100 down to a factor 100 up.
SHIFT_LIMIT = 200
SHIFT_COLOURS = ["#2166ac", "#ffffff", "#b2182b"]
SHIFT_LAYER = "enterpriselang_shift"
_LAYOUT = {
    "layout": "side",
    "aggregateFunction": "average",
    "showID": True,
    "showName": True,
    "showAggregateScores": False,
    "countUnscored": False,
    "expandedSubtechniques": "annotated",
}


def probability_score(p: float) -> int:
    """A probability as a layer score: basis points, rounded."""
    return round(float(p) * BASIS_POINTS)


def shift_score(estimate: float, published: float) -> int:
    """How far the estimate lies from a published value: 100 × log10 of their ratio, rounded."""
    return round(100 * math.log10(float(estimate) / float(published)))


def gradient_top(scores: list[int]) -> int:
    """The gradient's top for these scores (see :data:`GRADIENT_TOPS`)."""
    ordered = sorted(scores)
    q95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else 0
    return next((t for t in GRADIENT_TOPS if t >= q95), GRADIENT_TOPS[-1])


def _pct(p: float) -> str:
    return f"{100 * p:.3g} %"


def _layer(name: str, description: str, techniques: list[dict], gradient: dict, legend: list[dict], meta) -> dict:
    return {
        "name": name,
        "versions": LAYER_VERSIONS,
        "domain": DOMAIN,
        "description": description,
        "sorting": 3,
        "layout": _LAYOUT,
        "hideDisabled": False,
        "techniques": techniques,
        "gradient": gradient,
        "legendItems": legend,
        "metadata": meta,
        "showTacticRowBackground": False,
        "tacticRowBackground": "#dddddd",
        "selectTechniquesAcrossTactics": True,
        "selectSubtechniquesWithParent": False,
        "selectVisibleTechniques": False,
    }


def _provenance(summary: dict) -> list[dict]:
    record = summary["record"]
    s = record["settings"]
    d = summary["diagnostics"]
    return [
        {"name": "model", "value": "attackprev multi-source synthesis"},
        {"name": "data sha256", "value": record["data_sha256"]},
        {"name": "sampler", "value": f"seed {s['seed']}, {s['chains']} chains x {s['draws']} after {s['tune']}"},
        {"name": "diagnostics", "value": "passed" if d["passed"] else "FAILED: " + "; ".join(d["problems"])},
        {"name": "attackprev", "value": record["versions"]["attackprev"]},
    ]


def probability_layer(family: str, label: str, description: str, estimates: list[dict], evidence, summary) -> dict:
    """A family's scale as a layer: each technique's posterior mean in basis points.

    Parameters
    ----------
    family
        The family whose scale ``estimates`` are on.
    label
        The family with its unit, for the layer's name.
    description
        The population the family's sources count.
    estimates
        :func:`attackprev.analysis.synthesis.technique_estimates` on that scale.
    evidence
        :func:`attackprev.analysis.browse.technique_evidence`.
    summary
        The catalogue's summary (for the record and diagnostics).
    """
    techniques = []
    for e in estimates:
        t = e["technique_id"]
        counts = evidence.get(t, [])
        own = "" if e["target_data"] else f" No {family} source reports it: the value comes from the other families."
        comment = (
            f"{e['mean']:.4g} ({_pct(e['mean'])}; 94 % HDI {e['hdi_94_low']:.4g}–{e['hdi_94_high']:.4g}) of "
            f"{description} ({family} scale).{own} Counts (k/n): {evidence_text(counts)}."
        )
        techniques.append(
            {
                "techniqueID": t,
                "score": probability_score(e["mean"]),
                "comment": comment,
                "enabled": True,
                "metadata": [
                    {"name": "mean", "value": f"{e['mean']:.6g}"},
                    {"name": "94 % HDI", "value": f"{e['hdi_94_low']:.6g}–{e['hdi_94_high']:.6g}"},
                    {"name": "MAL", "value": e["mal_expression"]},
                    {"name": "sources", "value": str(len(counts))},
                ],
                "showSubtechniques": False,
            }
        )
    top = gradient_top([x["score"] for x in techniques])
    gradient = {"colors": PROBABILITY_COLOURS, "minValue": 0, "maxValue": top}
    legend = [
        {"label": "0 %", "color": PROBABILITY_COLOURS[0]},
        {"label": _pct(top / 2 / BASIS_POINTS), "color": PROBABILITY_COLOURS[1]},
        {"label": f"{_pct(top / BASIS_POINTS)} or more", "color": PROBABILITY_COLOURS[2]},
    ]
    text = (
        f"Posterior mean probability that a technique is seen, as a share of {description} ({family} scale), "
        f"from attackprev's multi-source model of {summary['counts']['sources']} sources in "
        f"{summary['counts']['families']} families. Score: the mean in basis points (100 = 1 %); the exact "
        "mean, its 94 % HDI and the counts behind it are in each technique's comment."
    )
    return _layer(f"attackprev: {label}", text, techniques, gradient, legend, _provenance(summary))


def shift_layer(estimates: list[dict], summary: dict) -> dict:
    """How far the evidence moves enterpriseLang's published values, for every technique it maps."""
    techniques = []
    target = summary["target"]
    for e in estimates:
        p = e.get("published_p")
        if p is None:
            continue
        score = shift_score(e["mean"], p)
        where = "inside" if e["published_inside_hdi_94"] else "outside"
        comment = (
            f"enterpriseLang: Bernoulli({p:g}) ({e['enterpriselang_steps']}). Evidence ({target} scale): "
            f"{e['mean']:.4g} (94 % HDI {e['hdi_94_low']:.4g}–{e['hdi_94_high']:.4g}), {e['mean'] / p:.3g} times "
            f"the published value, which lies {where} the interval; P(p > {p:g}) = {e['prob_above_published']:.3f}."
        )
        techniques.append(
            {
                "techniqueID": e["technique_id"],
                "score": score,
                "comment": comment,
                "enabled": True,
                "metadata": [
                    {"name": "published", "value": f"{p:g}"},
                    {"name": "mean", "value": f"{e['mean']:.6g}"},
                    {"name": "ratio", "value": f"{e['mean'] / p:.4g}"},
                ],
                "showSubtechniques": False,
            }
        )
    gradient = {"colors": SHIFT_COLOURS, "minValue": -SHIFT_LIMIT, "maxValue": SHIFT_LIMIT}
    legend = [
        {"label": "estimate 1/100 of enterpriseLang's or less", "color": SHIFT_COLOURS[0]},
        {"label": "estimate = enterpriseLang's", "color": SHIFT_COLOURS[1]},
        {"label": "estimate 100 times enterpriseLang's or more", "color": SHIFT_COLOURS[2]},
    ]
    text = (
        f"How far the evidence moves enterpriseLang's published probabilities ({len(techniques)} techniques that "
        f"its steps map): score = 100 × log10(posterior mean on the {target} scale / published value), so -100 "
        "is a tenth and +100 ten times; the values are in each comment."
    )
    name = "attackprev: evidence against enterpriseLang"
    return _layer(name, text, techniques, gradient, legend, _provenance(summary))


def catalogue_layers(scales: dict[str, list[dict]], labels: dict, descriptions: dict, evidence, summary) -> dict:
    """Every layer of a catalogue run, as file name -> JSON text.

    Parameters
    ----------
    scales
        Every family's estimates (:func:`attackprev.analysis.browse.family_scales`).
    labels, descriptions
        Each family's label and the population its sources count.
    evidence
        :func:`attackprev.analysis.browse.technique_evidence`.
    summary
        The catalogue's summary.
    """
    layers = {
        f"{f}.json": json_text(probability_layer(f, labels[f], descriptions[f], rows, evidence, summary))
        for f, rows in scales.items()
    }
    layers[f"{SHIFT_LAYER}.json"] = json_text(shift_layer(scales[summary["target"]], summary))
    return layers
