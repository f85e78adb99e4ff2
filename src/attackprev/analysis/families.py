"""Which families of sources a technique's multi-source estimate rests on, and what happens without each.

The notebooks ``01-source-weighting`` and ``02-catalogue`` read the multi-source synthesis
(:mod:`attackprev.model.synthesis`) family by family. Everything here is a transparent reading
aid computed from the counts and a fit's posterior means — not a refit:

* :func:`notebook_inputs`: the count table and sampler settings of a full or a fast run;
* :func:`subset_table` and :func:`fast_subset`: a smaller count table (the notebooks' fast runs);
* :func:`logit_variance`, :func:`family_logit_variance`: how precisely a family's counts pin a
  technique's logit rate in that family;
* :func:`precision_shares` and :func:`target_shares`: the share of the precision each family
  contributes to a technique's level a_t and to its target-scale value;
* :func:`family_weights`: those shares for one technique of a fit, family by family;
* :func:`headline_by_target`: one technique on every family's scale;
* :func:`family_sources`, :func:`droppable_families`: what leaving one family out removes;
* :func:`read_catalogue`, :func:`gap_reason`, :func:`disagreements`: why a technique's estimate and
  enterpriseLang's published value differ.

**The weights are an approximation.** The model's technique level a_t is informed by every family
f that reports the technique through its cell logit φ_tf = a_t + b_f + d_tf. Treating the
posterior means of the offsets b_f and the departure scales σ_f as known, and a family's counts as
a normal measurement of φ_tf with the variance v_f of a binomial logit, family f measures a_t with
variance v_f + σ_f² and contributes the precision 1 / (v_f + σ_f²); the level prior
Normal(m, s_a) adds 1 / s_a² (the pull toward the typical technique). The shares ignore the
uncertainty of b_f and σ_f and the correlations they induce between techniques.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from attackprev.evidence.counts import CountTable, load_counts
from attackprev.inference.summaries import draw_summary
from attackprev.inference.synthesis import SynthesisSettings, target_draws

#: The name of the level prior's share in :func:`precision_shares` (the pull toward the typical technique).
PRIOR = "level prior"
#: Techniques every fast run keeps (T1102 and the few others the notebooks follow).
FAST_TECHNIQUES = ("T1102", "T1059", "T1078", "T1083", "T1105", "T1566")
#: How many techniques a fast run fits.
FAST_SIZE = 36
#: Sampler settings of a fast run (far too short for inference: the diagnostics fail, by design).
FAST_SETTINGS = SynthesisSettings(draws=200, tune=200, chains=2)
#: Sampler settings of the leave-one-family-out refits of a full run.
LOFO_SETTINGS = SynthesisSettings(draws=500, tune=500, chains=4)
#: How many families a fast run leaves out, one at a time.
FAST_LOFO_FAMILIES = 2


# ------------------------------------------------------------------------ the notebooks' inputs
@dataclass(frozen=True)
class NotebookInputs:
    """What a notebook fits: the count table and the sampler settings, full or fast."""

    table: CountTable
    settings: SynthesisSettings
    lofo_settings: SynthesisSettings
    fast: bool


def fast_cache_dir() -> Path:
    """The cache folder of fast runs: in the system's temporary folder, apart from the user's cache."""
    return Path(tempfile.gettempdir()) / "attackprev-notebook-fast"


def notebook_inputs(fast: bool, published: Iterable[str] = ()) -> NotebookInputs:
    """The evidence base v2 and the settings a notebook fits with.

    Parameters
    ----------
    fast
        A fast run: a subset of :data:`FAST_SIZE` techniques (:func:`fast_subset`, with
        :data:`FAST_TECHNIQUES`), :data:`FAST_SETTINGS`, and fits cached in :func:`fast_cache_dir`
        (this sets ``ATTACKPREV_CACHE_DIR`` for the process). Otherwise every technique, the default
        settings (so the fit of ``make report`` is reused) and :data:`LOFO_SETTINGS` for refits.
    published
        Techniques a fast subset fills up with first (those enterpriseLang publishes).

    Returns
    -------
    NotebookInputs
    """
    table = load_counts()
    if not fast:
        return NotebookInputs(table, SynthesisSettings(), LOFO_SETTINGS, False)
    os.environ["ATTACKPREV_CACHE_DIR"] = str(fast_cache_dir())
    ids = fast_subset(table, FAST_TECHNIQUES, FAST_SIZE, prefer=sorted(published))
    return NotebookInputs(subset_table(table, ids), FAST_SETTINGS, FAST_SETTINGS, True)


# ------------------------------------------------------------------------ subsets of the count table
def subset_table(table: CountTable, techniques: Iterable[str]) -> CountTable:
    """The count table restricted to some techniques, with a digest of its own.

    Parameters
    ----------
    table
        From :func:`attackprev.evidence.counts.load_counts`.
    techniques
        Technique IDs to keep.

    Returns
    -------
    CountTable
        Every row of those techniques (zeros of complete sources included); the digest combines the
        table's and the kept IDs, so a fit of the subset is cached apart from the full one.

    Raises
    ------
    ValueError
        If a technique has no rows.
    """
    keep = sorted(set(techniques))
    present = {c.technique_id for c in table.counts}
    missing = [t for t in keep if t not in present]
    if missing:
        raise ValueError(f"no counts for {', '.join(missing)}")
    chosen = set(keep)
    counts = tuple(c for c in table.counts if c.technique_id in chosen)
    digest = hashlib.sha256(f"{table.digest}|subset:{','.join(keep)}".encode()).hexdigest()
    return replace(table, counts=counts, digest=digest)


def fast_subset(
    table: CountTable, keep: Sequence[str], size: int, prefer: Iterable[str] = (), few: int = 10
) -> list[str]:
    """Techniques for a quick fit that still holds every family.

    Parameters
    ----------
    table
        The full count table.
    keep
        Techniques that must be in (e.g. T1102).
    size
        How many techniques to aim for (more when ``keep`` and the small families need more).
    prefer
        Techniques to fill up with first, in their order (e.g. those enterpriseLang publishes).
    few
        A family with at most this many techniques of positive count enters with all of them (else
        with its first one), so every family keeps rows and its σ_f is learned from the same
        techniques as in the full fit.

    Returns
    -------
    list of str
        Sorted technique IDs.
    """
    positive: dict[str, list[str]] = {}
    for c in table.counts:
        if c.successes > 0:
            positive.setdefault(c.family, [])
            if c.technique_id not in positive[c.family]:
                positive[c.family].append(c.technique_id)
    chosen = list(dict.fromkeys(keep))
    for family in sorted(positive):
        techniques = sorted(positive[family])
        for t in techniques if len(techniques) <= few else techniques[:1]:
            if t not in chosen:
                chosen.append(t)
    everything = sorted({c.technique_id for c in table.counts})
    for t in [*prefer, *everything]:
        if len(chosen) >= size:
            break
        if t not in chosen and t in set(everything):
            chosen.append(t)
    return sorted(chosen)


# ------------------------------------------------------------------------ precision of a family's counts
def logit_variance(successes, trials):
    """The binomial variance of a logit rate, 1 / (k + ½) + 1 / (n − k + ½).

    Parameters
    ----------
    successes, trials
        k and n (scalars or arrays); the halves keep a zero count finite.

    Returns
    -------
    float or numpy.ndarray
    """
    k = np.asarray(successes, float)
    n = np.asarray(trials, float)
    v = 1.0 / (k + 0.5) + 1.0 / (n - k + 0.5)
    return float(v) if v.ndim == 0 else v


def family_logit_variance(rows: Sequence[tuple[int, int]], kappa: float | None = None, year_sd: float = 0.0) -> float:
    """How precisely a family's counts of one technique pin its logit rate in that family.

    Parameters
    ----------
    rows
        (k, n) of each of the family's sources for the technique.
    kappa
        ``None``: the binomial logit variance of the pooled counts, Σk of Σn. Otherwise the family's
        beta-binomial concentration κ_f: each source's variance is inflated by the design effect
        (n + κ) / (1 + κ) and the year shift's variance ``year_sd``² is added, and the sources are
        combined by inverse variance (a family of several years counts for less than its pooled n).
    year_sd
        τ, the sd of a year's shift (used only with ``kappa``).

    Returns
    -------
    float
    """
    if not rows:
        raise ValueError("a family without counts has no variance")
    if kappa is None:
        return logit_variance(sum(k for k, _ in rows), sum(n for _, n in rows))
    precision = 0.0
    for k, n in rows:
        v = logit_variance(k, n) * (n + kappa) / (1.0 + kappa) + year_sd**2
        precision += 1.0 / v
    return 1.0 / precision


def precision_shares(
    variances: Mapping[str, float], departure_sd: Mapping[str, float], level_sd: float | None = None
) -> dict[str, float]:
    """Each family's share of the precision of a technique's level a_t.

    Parameters
    ----------
    variances
        Family → v_f, the variance of its counts' logit (:func:`family_logit_variance`).
    departure_sd
        Family → σ_f.
    level_sd
        s_a; when given, the level prior's precision 1 / s_a² gets the share named :data:`PRIOR`.

    Returns
    -------
    dict
        Family (and :data:`PRIOR`) → share; the shares sum to 1.
    """
    precision = {f: 1.0 / (v + departure_sd[f] ** 2) for f, v in variances.items()}
    if level_sd is not None:
        precision[PRIOR] = 1.0 / level_sd**2
    total = sum(precision.values())
    if not total > 0:
        raise ValueError("no precision to share")
    return {f: p / total for f, p in precision.items()}


def target_shares(
    variances: Mapping[str, float],
    departure_sd: Mapping[str, float],
    target: str,
    level_sd: float | None = None,
) -> dict[str, float]:
    """Each family's share of the precision of a technique's value on the target family's scale.

    The target-scale logit φ_tT = a_t + b_T + d_tT is measured directly by the target family's own
    counts (precision 1 / v_T, when it has any) and, through the level a_t, by the other families:
    a_t from them has variance 1 / P (P their precision, as in :func:`precision_shares` without the
    target), and d_tT adds σ_T², so the route through a_t has precision 1 / (1 / P + σ_T²), shared
    among the other families in proportion to their precisions.

    Parameters
    ----------
    variances, departure_sd, level_sd
        As in :func:`precision_shares`; ``departure_sd`` must hold the target.
    target
        The target family.

    Returns
    -------
    dict
        Family (and :data:`PRIOR`) → share; the shares sum to 1.
    """
    own = 1.0 / variances[target] if target in variances else 0.0
    others = {f: 1.0 / (v + departure_sd[f] ** 2) for f, v in variances.items() if f != target}
    if level_sd is not None:
        others[PRIOR] = 1.0 / level_sd**2
    p_others = sum(others.values())
    via_level = 1.0 / (1.0 / p_others + departure_sd[target] ** 2) if p_others > 0 else 0.0
    total = own + via_level
    if not total > 0:
        raise ValueError("no precision to share")
    out = {f: via_level * p / p_others / total for f, p in others.items()}
    if target in variances:
        out[target] = own / total
    return out


def _family_counts(
    table: CountTable, technique_id: str, sources: Sequence[str]
) -> dict[str, list[tuple[str, int, int]]]:
    """Family → [(source, k, n)] of one technique, for the sources of a fit."""
    used = set(sources)
    out: dict[str, list[tuple[str, int, int]]] = {}
    for c in table.for_technique(technique_id):
        if c.source_id in used:
            out.setdefault(c.family, []).append((c.source_id, c.successes, c.trials))
    return out


def family_weights(
    result, table: CountTable, technique_id: str, target: str, overdispersion: bool = True
) -> list[dict]:
    """One technique's evidence family by family, with each family's share of its level and target value.

    Parameters
    ----------
    result
        A :class:`attackprev.inference.synthesis.SynthesisResult`.
    table
        The count table it was fitted to.
    technique_id
        The technique.
    target
        The target family.
    overdispersion
        Use the families' κ_f and τ (posterior means) for families of several sources
        (:func:`family_logit_variance`); else the pooled counts' binomial variance.

    Returns
    -------
    list of dict
        One row per family that reports the technique (k and n summed over its sources), then one for
        the level prior: ``family``, ``unit``, ``sources``, ``successes``, ``trials``, ``rate``,
        ``logit_var`` (v_f), ``departure_sd`` (σ_f), ``offset`` (b_f), ``on_target_scale`` (the family's
        pooled rate moved onto the target scale, logit⁻¹(logit((k + ½) / (n + 1)) − b_f + b_T), as
        :func:`attackprev.analysis.synthesis.source_pulls` does for one source), ``level_share``,
        ``target_share``.
    """
    data = result.data
    sigma = result.stacked("sigma").mean(axis=0)
    b = result.stacked("b").mean(axis=0)
    level_sd = float(result.stacked("level_sd").mean())
    multi = data.multi_source_families()
    kappa = np.exp(result.stacked("log_kappa")).mean(axis=0) if multi else []
    tau = float(result.stacked("tau").mean()) if multi else 0.0
    pos = {f: i for i, f in enumerate(data.families)}
    counts = _family_counts(table, technique_id, data.sources)
    variances = {}
    for family, rows in counts.items():
        f = pos[family]
        k_f = float(kappa[multi.index(f)]) if overdispersion and f in multi else None
        variances[family] = family_logit_variance([(k, n) for _, k, n in rows], k_f, tau if k_f else 0.0)
    sds = {f: float(sigma[i]) for f, i in pos.items()}
    level = precision_shares(variances, sds, level_sd)
    on_target = target_shares(variances, sds, target, level_sd)
    out = []
    for family in sorted(counts, key=lambda f: pos[f]):
        rows = counts[family]
        k, n = sum(r[1] for r in rows), sum(r[2] for r in rows)
        moved = math.log((k + 0.5) / (n - k + 0.5)) - b[pos[family]] + b[pos[target]]
        out.append(
            {
                "family": family,
                "unit": ", ".join(sorted({table.sources[s].unit for s, _, _ in rows})),
                "sources": [s for s, _, _ in rows],
                "successes": k,
                "trials": n,
                "rate": k / n,
                "logit_var": variances[family],
                "departure_sd": sds[family],
                "offset": float(b[pos[family]]),
                "on_target_scale": float(1.0 / (1.0 + math.exp(-moved))),
                "level_share": level[family],
                "target_share": on_target[family],
            }
        )
    out.append(
        {
            "family": PRIOR,
            "unit": "",
            "sources": [],
            "successes": None,
            "trials": None,
            "rate": None,
            "logit_var": None,
            "departure_sd": level_sd,
            "offset": None,
            "on_target_scale": None,
            "level_share": level[PRIOR],
            "target_share": on_target[PRIOR],
        }
    )
    return out


# ------------------------------------------------------------------------ one technique on every scale
def headline_by_target(result, technique_id: str, point: float) -> list[dict]:
    """One technique's probability on every family's scale, against a published point value.

    Parameters
    ----------
    result
        A :class:`attackprev.inference.synthesis.SynthesisResult`.
    technique_id
        The technique.
    point
        The published value (enterpriseLang's).

    Returns
    -------
    list of dict
        One row per family (the reference first): ``target``, ``mean``, ``sd``, ``median``,
        ``hdi_94``, ``prob_greater`` (P(p > point)), ``percentile_of_point``, ``point_inside_hdi``
        and ``target_data`` (whether the family has a row for the technique).
    """
    j = result.data.techniques.index(technique_id)
    cells = {f for t, f in result.data.cells if t == technique_id}
    rows = []
    for family in result.data.families:
        x = target_draws(result, family)[:, j]
        s = draw_summary(x)
        rows.append(
            {
                "target": family,
                **s,
                "prob_greater": float((x > point).mean()),
                "percentile_of_point": float(100.0 * (x < point).mean()),
                "point_inside_hdi": bool(s["hdi_94"][0] <= point <= s["hdi_94"][1]),
                "target_data": family in cells,
            }
        )
    return rows


# ------------------------------------------------------------------------ leaving families out
def family_sources(table: CountTable, family: str) -> tuple[str, ...]:
    """The sources of a family that have rows in the table (what leaving the family out removes)."""
    return tuple(s for s in table.used_sources() if table.sources[s].family == family)


def droppable_families(families: Sequence[str], reference: str) -> list[str]:
    """The families a fit can leave out: all but the reference, whose offset is fixed at 0 and which
    defines the target scale (without its counts the scale has no data)."""
    return [f for f in families if f != reference]


# ------------------------------------------------------------------------ why estimates and published values differ
def log_ratio(estimate: float, published: float) -> float:
    """log(estimate / published)."""
    return math.log(estimate / published)


def gap_reason(estimate: float, published: float, target_rate: float | None) -> str:
    """Which part of the evidence a gap between an estimate and a published value comes from.

    Parameters
    ----------
    estimate
        The target-scale posterior mean.
    published
        enterpriseLang's value.
    target_rate
        The target family's own pooled rate for the technique, ``None`` when it has no row.

    Returns
    -------
    str
        ``"no target data"`` when the target family has no row; ``"target data"`` when the target
        family's own rate is at least half the gap (on the log scale) away from the published value,
        on the same side; else ``"other families"``.
    """
    if target_rate is None:
        return "no target data"
    gap = log_ratio(estimate, published)
    own = log_ratio(max(target_rate, 1e-9), published)
    if gap == 0.0 or (own * gap > 0 and abs(own) >= abs(gap) / 2):
        return "target data"
    return "other families"


def read_catalogue(path: str | Path) -> list[dict] | None:
    """``catalogue.csv`` of the multi-source catalogue with numbers as numbers and flags as booleans (``None``
    where empty); ``None`` if the file is missing or was written by another model (it lacks the ``target``
    column)."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "target" not in rows[0]:
        return None
    numeric = ("mean", "sd", "hdi_low", "hdi_high", "p", "hdi_94_low", "hdi_94_high", "published_p")
    numeric += ("prob_above_published",)
    flags = ("target_data", "published_inside_hdi_94")
    out = []
    for r in rows:
        r = dict(r)
        for k in numeric:
            if k in r:
                r[k] = float(r[k]) if r[k] != "" else None
        for k in flags:
            if k in r:
                r[k] = None if r[k] == "" else r[k] == "True"
        for k in ("families", "sources_positive"):
            if k in r:
                r[k] = int(r[k])
        out.append(r)
    return out


def disagreements(estimates: Sequence[dict], pulls: Mapping[str, Sequence[dict]], target: str, top: int) -> list[dict]:
    """The techniques whose estimate and published value differ most, each with what it rests on.

    Parameters
    ----------
    estimates
        Rows of :func:`attackprev.analysis.synthesis.technique_estimates` (or ``catalogue.csv`` read
        with numbers as numbers); only those with a ``published_p`` are compared.
    pulls
        Technique → its :func:`attackprev.analysis.synthesis.source_pulls` rows.
    target
        The target family.
    top
        How many to return.

    Returns
    -------
    list of dict
        The estimate rows, largest |log(mean / published)| first, with ``log_ratio``, ``target_successes``,
        ``target_trials``, ``target_rate`` (``None`` without a target row), ``pull_low``, ``pull_high``
        (range of the other families' pulls, ``None`` without any), ``reporting`` (families with a
        positive count) and ``reason`` (:func:`gap_reason`).
    """
    rows = [r for r in estimates if r.get("published_p") not in (None, "")]
    rows = sorted(rows, key=lambda r: -abs(log_ratio(float(r["mean"]), float(r["published_p"]))))[:top]
    out = []
    for r in rows:
        p = pulls.get(r["technique_id"], [])
        own = [x for x in p if x["family"] == target]
        k = sum(x["successes"] for x in own) if own else None
        n = sum(x["trials"] for x in own) if own else None
        other = [x["on_target_scale"] for x in p if x["family"] != target]
        rate = k / n if own else None
        out.append(
            r
            | {
                "log_ratio": log_ratio(float(r["mean"]), float(r["published_p"])),
                "target_successes": k,
                "target_trials": n,
                "target_rate": rate,
                "pull_low": min(other) if other else None,
                "pull_high": max(other) if other else None,
                "reporting": sorted({x["family"] for x in p if x["successes"] > 0}),
                "reason": gap_reason(float(r["mean"]), float(r["published_p"]), rate),
            }
        )
    return out
