"""Small count tables for the multi-source model's tests, built in memory."""

from __future__ import annotations

import hashlib

import numpy as np

from attackprev.evidence.counts import Count, CountTable
from attackprev.evidence.tables import Source


def make_table(rows: list[tuple[str, str, int, int]], sources: dict[str, tuple[str, str]]) -> CountTable:
    """``rows``: (technique, source, k, n); ``sources``: source -> (family, coverage)."""
    table = {
        sid: Source(source_id=sid, trials=None, trials_basis="counted", family=fam, coverage=cov, unit="trial")
        for sid, (fam, cov) in sources.items()
    }
    counts = tuple(
        Count(t, s, sources[s][0], k, n, "counted", None, "", "", "", i + 2) for i, (t, s, k, n) in enumerate(rows)
    )
    digest = hashlib.sha256(repr(rows).encode()).hexdigest()
    return CountTable("memory", counts, table, {}, digest)


def simulate_table(
    techniques: list[str],
    offsets: dict[str, float],
    departures: dict[str, float],
    trials: dict[str, int],
    coverage: dict[str, str],
    seed: int,
    level_mean: float = -3.0,
    level_sd: float = 1.2,
    listed: float = 0.6,
) -> CountTable:
    """A catalogue drawn from the model (one source per family, binomial counts).

    A partial family lists each technique with probability ``listed``, and never a zero.
    """
    rng = np.random.default_rng(seed)
    a = rng.normal(level_mean, level_sd, len(techniques))
    rows = []
    for fam, b in offsets.items():
        for j, t in enumerate(techniques):
            if coverage[fam] == "partial" and rng.uniform() > listed:
                continue
            logit = a[j] + b + rng.normal(0.0, departures[fam])
            k = int(rng.binomial(trials[fam], 1.0 / (1.0 + np.exp(-logit))))
            if coverage[fam] == "partial" and k == 0:
                continue
            rows.append((t, f"{fam}_src", k, trials[fam]))
    sources = {f"{fam}_src": (fam, coverage[fam]) for fam in offsets}
    return make_table(rows, sources)
