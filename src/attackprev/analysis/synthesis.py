"""The numbers of the multi-source synthesis: per technique on a target scale, per family, per source.

Everything here is computed from a :class:`~attackprev.inference.synthesis.SynthesisResult` and
the count table it was fitted to; the report (:mod:`attackprev.reporting.synthesis`) only
formats it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attackprev.config import DEFAULT_TARGET, REPORTS_DIR
from attackprev.evidence.attack import attack_table
from attackprev.evidence.counts import CountTable
from attackprev.inference.summaries import Headline, draw_summary, hdi
from attackprev.inference.synthesis import SynthesisResult, predictive_draws, target_draws

#: enterpriseLang's published value for T1102, the project's point of comparison.
ELANG_T1102 = 0.0445


@dataclass
class SynthesisView:
    """A multi-source fit seen on one target scale: what a technique report needs of it."""

    result: SynthesisResult
    table: CountTable
    target: str
    _p: np.ndarray | None = field(default=None, repr=False)

    @property
    def description(self) -> str:
        """The target population in words."""
        return target_description(self.result, self.table, self.target)

    def headline(self, technique_id: str) -> Headline:
        """The technique's target-scale rate and a new target report's rate, shape ``(chain, draw)``."""
        if self._p is None:
            self._p = target_draws(self.result, self.target)
        j = self.result.data.techniques.index(technique_id)
        chains = self.result.settings.chains
        new = predictive_draws(self.result, self.target)[:, j]
        return Headline(
            mu=self._p[:, j].reshape(chains, -1),
            theta_new=new.reshape(chains, -1),
            label=f"multi-source ({self.target} scale)",
        )


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
    """Every technique's probability on the target family's scale, with what it rests on, its MAL
    value, and enterpriseLang's published probability where one of its steps maps to the technique."""
    from attackprev.evidence.enterpriselang import published_steps
    from attackprev.mal.expressions import ttc_expression

    p = target_draws(result, target)
    families_with = {}
    for t, fam in result.data.cells:
        families_with.setdefault(t, []).append(fam)
    positive = {}
    for c in table.counts:
        if c.successes > 0 and c.source_id in result.data.sources:
            positive.setdefault(c.technique_id, set()).add(c.source_id)
    names = attack_table()
    published = published_steps()
    rows = []
    for j, t in enumerate(result.data.techniques):
        s = draw_summary(p[:, j])
        steps = published.get(t, [])
        pub = steps[0].p if steps else None
        rows.append(
            {
                "technique_id": t,
                "name": names[t].display_name,
                "target": target,
                "mean": s["mean"],
                "sd": s["sd"],
                "hdi_low": s["hdi_94"][0],
                "hdi_high": s["hdi_94"][1],
                # the columns `attackprev export-mal` reads (p is the MAL value: the posterior mean)
                "p": float(f"{s['mean']:.4g}"),
                "hdi_94_low": s["hdi_94"][0],
                "hdi_94_high": s["hdi_94"][1],
                "mal_expression": ttc_expression(s["mean"], None),
                "target_data": target in families_with.get(t, []),
                "families": len(families_with.get(t, [])),
                "sources_positive": len(positive.get(t, ())),
                "enterpriselang_steps": " ".join(f"{x.asset}.{x.attack_step}" for x in steps),
                "published_p": pub,
                "prob_above_published": float((p[:, j] > pub).mean()) if steps else None,
                "published_inside_hdi_94": bool(s["hdi_94"][0] <= pub <= s["hdi_94"][1]) if steps else None,
            }
        )
    return rows


#: The per-technique values of the model comparison's runner-up (written by
#: ``python -m attackprev.validation.comparison``, part of ``make validation``), on :data:`DEFAULT_TARGET`'s scale.
RUNNER_UP_CSV = REPORTS_DIR / "validation" / "model_comparison.csv"
#: The runner-up's value differs materially from the headline's when its mean lies outside the headline's
#: 94 % HDI, or when the two means differ by more than this factor (either way).
MATERIAL_RATIO = 1.5


def material_difference(mean: float, hdi_low: float, hdi_high: float, other: float) -> tuple[float, bool, bool]:
    """``other`` against an estimate (``mean`` and its 94 % HDI): the ratio other / mean, whether
    ``other`` lies outside the HDI, and whether the two differ materially (outside, or a ratio beyond
    :data:`MATERIAL_RATIO` either way)."""
    ratio = other / mean
    outside = not hdi_low <= other <= hdi_high
    return ratio, outside, outside or max(ratio, 1.0 / ratio) > MATERIAL_RATIO


def load_runner_up(path: Path = RUNNER_UP_CSV) -> dict[str, dict]:
    """The runner-up model's mean and 94 % HDI per technique, from the model comparison's CSV
    (empty when the comparison has not been run)."""
    if not path.exists():
        return {}
    with path.open(newline="") as fh:
        return {
            r["technique_id"]: {
                "model": r["runner_up_model"],
                "mean": float(r["runner_up_mean"]),
                "hdi_low": float(r["runner_up_hdi_low"]),
                "hdi_high": float(r["runner_up_hdi_high"]),
            }
            for r in csv.DictReader(fh)
        }


def add_runner_up(estimates: list[dict], values: dict[str, dict], target: str) -> dict:
    """Put the runner-up's value beside each estimate (in place) and say where they differ materially.

    The comparison is on :data:`DEFAULT_TARGET`'s scale only; on another target nothing is added.
    ``runner_up_differs``: the runner-up's mean lies outside this headline's 94 % HDI, or the means
    differ by more than :data:`MATERIAL_RATIO`.
    """
    if target != DEFAULT_TARGET or not values:
        return {"model": None, "techniques": 0, "differ": [], "material_ratio": MATERIAL_RATIO}
    differ = []
    for r in estimates:
        v = values.get(r["technique_id"])
        if v is None:
            continue
        ratio, outside, differs = material_difference(r["mean"], r["hdi_low"], r["hdi_high"], v["mean"])
        r |= {
            "runner_up_model": v["model"],
            "runner_up_mean": v["mean"],
            "runner_up_hdi_94_low": v["hdi_low"],
            "runner_up_hdi_94_high": v["hdi_high"],
            "runner_up_differs": differs,
        }
        if differs:
            differ.append(r | {"ratio": ratio, "outside_hdi": outside})
    differ.sort(key=lambda r: -abs(np.log(r["ratio"])))
    model = next(iter(values.values()))["model"]
    compared = sum("runner_up_model" in r for r in estimates)
    return {"model": model, "techniques": compared, "differ": differ, "material_ratio": MATERIAL_RATIO}


def elang_comparison(estimates: list[dict], top: int = 15) -> dict:
    """enterpriseLang's published values against the target-scale estimates: how many fall inside the
    94 % HDI, the median ratio, and the techniques where the two disagree most (by |log ratio|)."""
    rows = [r for r in estimates if r["published_p"] is not None]
    if not rows:
        return {"techniques": 0, "inside": 0, "median_ratio": None, "largest": []}
    ratio = np.array([r["published_p"] / r["mean"] for r in rows])
    order = np.argsort(-np.abs(np.log(ratio)))
    return {
        "techniques": len(rows),
        "inside": sum(bool(r["published_inside_hdi_94"]) for r in rows),
        "above_hdi": sum(r["published_p"] > r["hdi_high"] for r in rows),
        "median_ratio": float(np.median(ratio)),
        "largest": [rows[i] | {"ratio": float(ratio[i])} for i in order[:top]],
    }


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


def technique_predictive(result: SynthesisResult, table: CountTable, technique_id: str) -> dict[str, dict]:
    """Per family, the rate a new report of that family would give for one technique (mean, 94 % HDI),
    with the family's observed k / n summed over its sources."""
    j = result.data.techniques.index(technique_id)
    out = {}
    for family in result.data.families:
        x = predictive_draws(result, family)[:, j]
        rows = [
            c for c in table.for_technique(technique_id) if c.family == family and c.source_id in result.data.sources
        ]
        lo, hi = hdi(x)
        out[family] = {
            "family": family,
            "mean": float(x.mean()),
            "hdi_low": lo,
            "hdi_high": hi,
            "observed_successes": sum(c.successes for c in rows) if rows else None,
            "observed_trials": sum(c.trials for c in rows) if rows else None,
        }
    return out


def target_description(result: SynthesisResult, table: CountTable, target: str) -> str:
    """What the target family's sources count (the population named in every report): the population most
    of its sources state, with a year that names one report ("advisories of 2021") dropped."""
    import re
    from collections import Counter

    populations = Counter(
        re.sub(r" of (19|20)\d\d\b", "", table.sources[s].population)
        for s in result.data.sources
        if table.sources[s].family == target
    )
    return populations.most_common(1)[0][0]
