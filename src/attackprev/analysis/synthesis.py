"""The numbers of the multi-source synthesis: per technique on a target scale, per family, per source.

Everything here is computed from a :class:`~attackprev.inference.synthesis.SynthesisResult` and
the count table it was fitted to; the report (:mod:`attackprev.reporting.synthesis`) only
formats it.
"""

from __future__ import annotations

import numpy as np

from attackprev.evidence.attack import attack_table
from attackprev.evidence.counts import CountTable
from attackprev.inference.summaries import draw_summary, hdi
from attackprev.inference.synthesis import SynthesisResult, predictive_draws, target_draws

#: enterpriseLang's published value for T1102, the project's point of comparison.
ELANG_T1102 = 0.0445


def family_rows(result: SynthesisResult, table: CountTable) -> list[dict]:
    """One row per family: what one trial is, its sources, offset b_f and departure scale σ_f."""
    b = result.stacked("b")
    sigma = result.stacked("sigma")
    rows = []
    for f, family in enumerate(result.data.families):
        sources = [s for s in result.data.sources if table.sources[s].family == family]
        units = sorted({table.sources[s].unit for s in sources})
        cells = sum(1 for _, fam in result.data.cells if fam == family)
        rows.append(
            {
                "family": family,
                "unit": ", ".join(units),
                "sources": sources,
                "techniques": cells,
                "offset": None if f == 0 else draw_summary(b[:, f]),
                "departure_sd": draw_summary(sigma[:, f]),
            }
        )
    return rows


def technique_estimates(result: SynthesisResult, table: CountTable, target: str) -> list[dict]:
    """Every technique's probability on the target family's scale, with what it rests on."""
    p = target_draws(result, target)
    families_with = {}
    for t, fam in result.data.cells:
        families_with.setdefault(t, []).append(fam)
    positive = {}
    for c in table.counts:
        if c.successes > 0 and c.source_id in result.data.sources:
            positive.setdefault(c.technique_id, set()).add(c.source_id)
    names = attack_table()
    rows = []
    for j, t in enumerate(result.data.techniques):
        s = draw_summary(p[:, j])
        rows.append(
            {
                "technique_id": t,
                "name": names[t].display_name,
                "target": target,
                "mean": s["mean"],
                "sd": s["sd"],
                "hdi_low": s["hdi_94"][0],
                "hdi_high": s["hdi_94"][1],
                "target_data": target in families_with.get(t, []),
                "families": len(families_with.get(t, [])),
                "sources_positive": len(positive.get(t, ())),
            }
        )
    return rows


def predictive_rows(result: SynthesisResult, table: CountTable) -> list[dict]:
    """Per technique and family: the rate a new report of the family would give, with the observed one."""
    observed: dict[tuple[str, str], list[int]] = {}
    for c in table.counts:
        if c.source_id in result.data.sources:
            k = observed.setdefault((c.technique_id, c.family), [0, 0])
            k[0] += c.successes
            k[1] += c.trials
    rows = []
    for family in result.data.families:
        draws = predictive_draws(result, family)
        lo_hi = [hdi(draws[:, j]) for j in range(draws.shape[1])]
        means = draws.mean(axis=0)
        for j, t in enumerate(result.data.techniques):
            k, n = observed.get((t, family), (None, None))
            rows.append(
                {
                    "technique_id": t,
                    "family": family,
                    "mean": float(means[j]),
                    "hdi_low": lo_hi[j][0],
                    "hdi_high": lo_hi[j][1],
                    "observed_successes": k,
                    "observed_trials": n,
                }
            )
    return rows


def technique_headline(result: SynthesisResult, technique_id: str, target: str, point: float) -> dict:
    """A technique's headline on the target scale and its comparison with a published point value."""
    j = result.data.techniques.index(technique_id)
    x = target_draws(result, target)[:, j]
    s = draw_summary(x)
    return {
        "technique_id": technique_id,
        "target": target,
        **s,
        "point": point,
        "prob_greater": float((x > point).mean()),
        "percentile_of_point": float(100.0 * (x < point).mean()),
        "point_inside_hdi": bool(s["hdi_94"][0] <= point <= s["hdi_94"][1]),
        "by_family": {f: draw_summary(target_draws(result, f)[:, j]) for f in result.data.families},
    }


def source_pulls(result: SynthesisResult, table: CountTable, technique_id: str, target: str) -> list[dict]:
    """Each source's figure for a technique, and where it would put the target-scale value alone.

    A source's rate, moved onto the target scale by its family's offset (logit rate − b_f + b_T,
    at the posterior means), says where that source alone pulls the technique; its departure
    σ_f says how loosely. A transparent reading aid, not a refit.
    """
    b = result.stacked("b").mean(axis=0)
    sigma = result.stacked("sigma").mean(axis=0)
    fam = {f: i for i, f in enumerate(result.data.families)}
    out = []
    for c in table.for_technique(technique_id):
        if c.source_id not in result.data.sources:
            continue
        k, n = c.successes, c.trials
        rate = (k + 0.5) / (n + 1.0)
        logit = np.log(rate / (1.0 - rate)) - b[fam[c.family]] + b[fam[target]]
        out.append(
            {
                "source_id": c.source_id,
                "family": c.family,
                "unit": table.sources[c.source_id].unit,
                "successes": k,
                "trials": n,
                "rate": k / n,
                "on_target_scale": float(1.0 / (1.0 + np.exp(-logit))),
                "departure_sd": float(sigma[fam[c.family]]),
            }
        )
    return out
