"""Fitting the bias-adjusted multi-source model and drawing its estimands.

:func:`fit_synthesis` samples :mod:`attackprev.model.synthesis` with nutpie (diagonal mass
matrix; the model's parameterisation is what makes it mix) and checks the draws.
:func:`target_draws` gives every technique's probability on a target family's scale and
:func:`predictive_draws` the rate a new report of a family would give.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pymc as pm
import xarray as xr

from attackprev.config import DEFAULT_SEED
from attackprev.evidence.counts import CountTable
from attackprev.inference.diagnostics import Diagnostics, diagnose, package_versions
from attackprev.model.priors import SynthesisPriors
from attackprev.model.synthesis import DEFAULT_TARGET, SynthesisData, build_synthesis_model

#: Variables checked by the diagnostics: every sampled one, and the technique levels.
#: (``log_kappa_single``: the per-family concentrations of :func:`attackprev.model.alternatives.build_offsets_only`.)
DIAGNOSED = ("level_mean", "level_sd", "sigma", "c", "a", "tau", "log_kappa", "log_kappa_single")


@dataclass(frozen=True)
class SynthesisSettings:
    """Sampler settings. On the full evidence 4 × 1250 draws after 1000 tuning steps gave a
    smallest bulk ESS of 405 (a family's departure scale, σ_ATT&CK groups, mixes at about 0.08
    effective draws per draw); 1500 draws leave a margin above the required 400."""

    draws: int = 1500
    tune: int = 1000
    chains: int = 4
    seed: int = DEFAULT_SEED
    target_accept: float = 0.9


@dataclass
class SynthesisResult:
    """The posterior and what is needed to report it."""

    data: SynthesisData
    tree: xr.DataTree
    diagnostics: Diagnostics
    priors: SynthesisPriors
    settings: SynthesisSettings
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether the fit passed its diagnostics."""
        return self.diagnostics.passed

    def record(self) -> dict:
        """Priors, data digest, seed, settings and package versions (saved with every result)."""
        return {
            "priors": self.priors.to_dict(),
            "data_sha256": self.data.digest,
            "reference": self.data.reference,
            "settings": asdict(self.settings),
            "versions": package_versions(),
        }

    def stacked(self, name: str) -> np.ndarray:
        """A posterior variable with chains and draws stacked into one first axis."""
        post = self.tree["posterior"].to_dataset()
        x = post[name].values
        return x.reshape(-1, *x.shape[2:])


def _diagnosed(tree: xr.DataTree) -> xr.DataTree:
    post = tree["posterior"].to_dataset()
    names = [
        v for v in post.data_vars if v in DIAGNOSED or v.startswith(("b_", "c_", "u_", "phi_strong", "year_shift"))
    ]
    names = [v for v in names if float(post[v].std()) > 0]  # a constant (σ = 0 of a model without departures)
    return xr.DataTree.from_dict({"posterior": post[names], "sample_stats": tree["sample_stats"].to_dataset()})


def fit_synthesis(
    table: CountTable,
    priors: SynthesisPriors | None = None,
    settings: SynthesisSettings | None = None,
    reference: str = DEFAULT_TARGET,
    exclude_sources: tuple[str, ...] = (),
    progress: bool = False,
    builder: Callable[[SynthesisData, SynthesisPriors], pm.Model] = build_synthesis_model,
    exclude_rows: frozenset[tuple[str, str]] = frozenset(),
) -> SynthesisResult:
    """Sample the model on a count table.

    Parameters
    ----------
    table
        From :func:`attackprev.evidence.counts.load_counts`.
    priors, settings
        Defaults: :class:`SynthesisPriors`, :class:`SynthesisSettings`.
    reference
        The family whose offset is 0 (its scale is the default target).
    exclude_sources
        Sources held out (for the held-out-source checks).
    progress
        Show nutpie's progress bar.
    builder
        The model (default the headline; the alternatives are in :mod:`attackprev.model.alternatives`).
    exclude_rows
        (technique_id, source_id) rows held out (for K-fold checks by technique).

    Returns
    -------
    SynthesisResult
    """
    import nutpie

    from attackprev.inference.nutpie_cache import compile_pymc_model

    priors = priors or SynthesisPriors()
    settings = settings or SynthesisSettings()
    data = SynthesisData.from_counts(table, reference, exclude_sources, exclude_rows)
    start = time.perf_counter()
    compiled = compile_pymc_model(builder(data, priors))
    compiled_at = time.perf_counter()
    tree = nutpie.sample(
        compiled,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        seed=settings.seed,
        target_accept=settings.target_accept,
        progress_bar=progress,
    )
    sampled_at = time.perf_counter()
    diagnostics = diagnose(_diagnosed(tree))
    return SynthesisResult(
        data=data,
        tree=tree,
        diagnostics=diagnostics,
        priors=priors,
        settings=settings,
        seconds={"compile": compiled_at - start, "sample": sampled_at - compiled_at},
    )


def _family(result: SynthesisResult, family: str) -> int:
    if family not in result.data.families:
        raise ValueError(f"unknown family {family!r}; families: {', '.join(result.data.families)}")
    return result.data.families.index(family)


def cell_logits(result: SynthesisResult, family: str, seed_offset: int = 0) -> np.ndarray:
    """φ_tF = a_t + b_F + d_tF for every technique, draws × techniques.

    Where family F has no row for technique t, d_tF is drawn from Normal(0, σ_F) (a seeded
    generator: the same result and family give the same draws).
    """
    f = _family(result, family)
    a = result.stacked("a")
    b = result.stacked("b")[:, f]
    sigma = result.stacked("sigma")[:, f]
    phi = result.stacked("phi")
    rng = np.random.default_rng([result.settings.seed, f, seed_offset, 7])
    out = a + b[:, None] + sigma[:, None] * rng.standard_normal(a.shape)
    cells = np.flatnonzero(result.data.cell_family() == f)
    out[:, result.data.cell_technique()[cells]] = phi[:, cells]
    return out


def target_draws(result: SynthesisResult, family: str = DEFAULT_TARGET) -> np.ndarray:
    """p_t(F): every technique's probability on family F's scale (a typical year), draws × techniques."""
    return 1.0 / (1.0 + np.exp(-cell_logits(result, family)))


def predictive_draws(result: SynthesisResult, family: str) -> np.ndarray:
    """The rate a new report of family F would give for every technique, draws × techniques.

    For a family with several sources: a new year's shift e ~ Normal(0, τ), then the
    technique's rate that year ~ Beta(θκ_F, (1 − θ)κ_F). For a family with one source, its
    rate θ itself (the departures d_tF already hold its technique-by-source variation).
    """
    f = _family(result, family)
    logit = cell_logits(result, family, seed_offset=1)
    multi = result.data.multi_source_families()
    if f not in multi:
        return 1.0 / (1.0 + np.exp(-logit))
    rng = np.random.default_rng([result.settings.seed, f, 2, 7])
    tau = result.stacked("tau")
    kappa = np.exp(result.stacked("log_kappa")[:, multi.index(f)])
    theta = 1.0 / (1.0 + np.exp(-(logit + tau[:, None] * rng.standard_normal(logit.shape))))
    return rng.beta(theta * kappa[:, None], (1.0 - theta) * kappa[:, None])
