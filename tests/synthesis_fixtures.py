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


#: (technique, source, k, n); mtrends has two sources (years), groups is complete, malware partial
ROWS = [
    ("T1102", "mtrends2020", 9, 227),
    ("T1102", "mtrends2021", 5, 180),
    ("T1059", "mtrends2020", 60, 227),
    ("T1059", "groups", 40, 170),
    ("T1102", "groups", 12, 170),
    ("T1003", "groups", 30, 170),
    ("T1566", "groups", 0, 170),
    ("T1003", "malware", 47, 951),
    ("T1566", "malware", 20, 951),
]
SOURCES = {
    "mtrends2020": ("mtrends", "partial", "intrusions of 2020", "intrusion"),
    "mtrends2021": ("mtrends", "partial", "intrusions of 2021", "intrusion"),
    "groups": ("groups", "complete", "adversary groups", "group"),
    "malware": ("malware", "partial", "malware samples", "sample"),
}


def small_table(rows: list[tuple[str, str, int, int]] | None = None, units: dict[str, str] | None = None) -> CountTable:
    """Four real techniques in three families: mtrends (two years), groups (complete), malware (partial)."""
    sources = {
        sid: Source(
            source_id=sid,
            population=pop,
            family=fam,
            coverage=cov,
            unit=(units or {}).get(sid, unit),
            trials_basis="counted",
        )
        for sid, (fam, cov, pop, unit) in SOURCES.items()
    }
    counts = tuple(
        Count(t, s, SOURCES[s][0], k, n, "counted", None, "", "", "", i + 2)
        for i, (t, s, k, n) in enumerate(ROWS if rows is None else rows)
    )
    return CountTable("memory", counts, sources, {}, "digest")


def posterior_result(
    table: CountTable,
    chains: int = 2,
    draws: int = 2000,
    seed: int = 0,
    log_kappa: float = 3.0,
    tau: float = 0.3,
    reference: str = "mtrends",
):
    """A :class:`SynthesisResult` whose posterior is drawn here with numpy, not sampled, so derived numbers
    can be checked against sums over known draws.

    Draws: a_t ~ N(−3 + 0.2·t, 0.3), b_f = 0 for the reference else N(0.5·f, 0.1), σ_f ~ Gamma(20, 40),
    φ_tf = a_t + b_f + N(0, σ_f) for every cell, τ fixed at ``tau``, log κ_f fixed at ``log_kappa``.
    """
    import xarray as xr

    from attackprev.inference.diagnostics import Diagnostics
    from attackprev.inference.synthesis import SynthesisResult, SynthesisSettings
    from attackprev.model.priors import SynthesisPriors
    from attackprev.model.synthesis import SynthesisData, model_coords

    data = SynthesisData.from_counts(table, reference)
    rng = np.random.default_rng(seed)
    shape = (chains, draws)
    n_t, n_f = len(data.techniques), len(data.families)
    a = rng.normal(-3.0 + 0.2 * np.arange(n_t), 0.3, (*shape, n_t))
    b = rng.normal(0.5 * np.arange(n_f), 0.1, (*shape, n_f))
    b[..., 0] = 0.0
    sigma = rng.gamma(20.0, 1.0 / 40.0, (*shape, n_f))
    cf, ct = data.cell_family(), data.cell_technique()
    phi = a[..., ct] + b[..., cf] + sigma[..., cf] * rng.standard_normal((*shape, len(data.cells)))
    multi = data.multi_source_families()
    coords = model_coords(data)
    dims = {"chain": np.arange(chains), "draw": np.arange(draws)}
    post = xr.Dataset(
        {
            "a": (("chain", "draw", "technique"), a),
            "b": (("chain", "draw", "family"), b),
            "sigma": (("chain", "draw", "family"), sigma),
            "phi": (("chain", "draw", "cell"), phi),
            "tau": (("chain", "draw"), np.full(shape, tau)),
            "log_kappa": (("chain", "draw", "multi_family"), np.full((*shape, len(multi)), log_kappa)),
        },
        coords=dims | {k: coords[k] for k in ("technique", "family", "cell", "multi_family")},
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros(shape, bool))}, coords=dims)
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    diagnostics = Diagnostics(0, 1.0, 4000.0, 4000.0, chains, draws)
    settings = SynthesisSettings(draws=draws, tune=0, chains=chains, seed=seed)
    return SynthesisResult(data, tree, diagnostics, SynthesisPriors(), settings)
