"""Fitting the multi-technique (catalogue) model: sampling, choosing a variant, and a cache of the result.

:func:`fit_catalogue` samples the variants of :mod:`attackprev.model.catalogue` with nutpie,
checks each one's sampler diagnostics, compares them by PSIS-LOO and keeps the chosen
variant's posterior (:class:`CatalogueResult`). :func:`cached_fit_catalogue` does the same
through a cache: a result is saved under a key made of the data's hash, the priors, the
sampler settings, the variants and the package versions (:func:`cache_key`), in the user's
cache folder (``platformdirs``; ``ATTACKPREV_CACHE_DIR`` overrides it). A saved result is
reused only when its key matches and its draws still hash to what was written; anything
else (a stale key, a truncated or edited file) is refitted, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from attackprev.atomic import round_floats
from attackprev.config import CATALOGUE_DIR, DEFAULT_SEED
from attackprev.evidence.tables import Evidence
from attackprev.inference.cache import cache_root, draws_digest, load_tree, save_tree
from attackprev.inference.diagnostics import Diagnostics, diagnose, package_versions
from attackprev.model.catalogue import (
    VARIANTS,
    CatalogueData,
    Variant,
    add_catalogue_derived,
    build_catalogue_model,
    compare_variants,
)
from attackprev.model.priors import CataloguePriors

#: Above this many sampled parameters the catalogue is fitted with a diagonal mass matrix:
#: nutpie's low-rank adaptation costs ~0.01 s per tuning step at 154 parameters (75
#: techniques) but ~0.1 s at 204 (100 techniques) and hours at 1004 (500 techniques).
LOW_RANK_MAX_PARAMETERS = 160


def sample_catalogue(
    data: CatalogueData,
    priors: CataloguePriors,
    variant: Variant,
    draws: int = 3000,
    tune: int = 1500,
    chains: int = 4,
    seed: int = DEFAULT_SEED,
    target_accept: float = 0.97,
    progress: bool = False,
) -> xr.DataTree:
    """Sample one variant with nutpie and add the derived quantities.

    The mass matrix is adapted with nutpie's low-rank update: the concentration controls how
    informative every observation is, which correlates the hyperparameters with all the
    technique effects; a diagonal mass matrix mixes at a third of the rate here (and leaves
    divergences on the 53-technique evidence). The low-rank update's tuning cost grows
    steeply with the number of parameters, so catalogues with more than
    :data:`LOW_RANK_MAX_PARAMETERS` of them (about 78 techniques) use the diagonal one: a
    synthetic 500-technique catalogue then samples in under two minutes with 4 × 3000 draws.
    """
    import nutpie

    from attackprev.inference.nutpie_cache import compile_pymc_model

    model = build_catalogue_model(data, priors, variant)
    compiled = compile_pymc_model(model)  # nutpie's, with its compiled code cached on disk
    tree = nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        target_accept=target_accept,
        progress_bar=progress,
        adaptation="low_rank" if compiled.n_dim <= LOW_RANK_MAX_PARAMETERS else "diag",
    )
    return add_catalogue_derived(tree, data, seed)


@dataclass(frozen=True)
class CatalogueSettings:
    """Sampler settings of the catalogue fits.

    4 × 1500 draws after 1500 tuning steps give a bulk ESS above 600 for every parameter of
    the chosen variant (the slowest-mixing is the mean log concentration, ~0.12 effective
    draws per draw); more would only enlarge the saved posterior.
    """

    draws: int = 1500
    tune: int = 1500
    chains: int = 4
    seed: int = DEFAULT_SEED
    target_accept: float = 0.97


@dataclass
class CatalogueResult:
    """The chosen variant's posterior and everything needed to report it."""

    data: CatalogueData
    variant: str
    tree: xr.DataTree
    diagnostics: dict[str, Diagnostics]
    comparison: list[dict]
    key: str
    priors: CataloguePriors
    settings: CatalogueSettings
    seconds: dict[str, float]

    @property
    def passed(self) -> bool:
        """Whether the chosen variant passed its diagnostics."""
        return self.diagnostics[self.variant].passed

    def mu_draws(self, technique_id: str) -> np.ndarray:
        """Posterior draws of μ_t, flattened."""
        return self.tree["posterior"]["mu"].sel(technique=technique_id).values.ravel()


def fit_catalogue(
    evidence: Evidence,
    priors: CataloguePriors | None = None,
    settings: CatalogueSettings | None = None,
    variants: list[str] | None = None,
    progress: bool = False,
) -> CatalogueResult:
    """Fit the catalogue variants and choose one.

    Parameters
    ----------
    evidence
        All observations.
    priors, settings
        Hyperpriors and sampler settings (defaults when omitted).
    variants
        Which variants to fit (all by default).
    progress
        Show progress bars.
    """
    priors = priors or CataloguePriors()
    settings = settings or CatalogueSettings()
    data = CatalogueData.from_observations(list(evidence.observations))
    trees, diags, seconds = {}, {}, {}
    for name in variants or list(VARIANTS):
        start = time.perf_counter()
        trees[name] = sample_catalogue(
            data,
            priors,
            VARIANTS[name],
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            seed=settings.seed,
            target_accept=settings.target_accept,
            progress=progress,
        )
        seconds[name] = time.perf_counter() - start
        diags[name] = diagnose(_sampled_only(trees[name]))
    if len(trees) > 1:
        chosen, table = compare_variants(trees, {n for n, d in diags.items() if d.passed})
    else:
        chosen, table = next(iter(trees)), []
    tree = compact_tree(trees[chosen])
    key = cache_key(evidence, priors, settings)
    tree.attrs.update(
        {
            "variant": chosen,
            "priors": json.dumps(priors.to_dict()),
            "data_sha256": evidence.digest,
            "seed": settings.seed,
            "sampler": json.dumps(asdict(settings)),
            "versions": json.dumps(package_versions()),
            "cache_key": key,
            "diagnostics": json.dumps(diags[chosen].to_dict()),
        }
    )
    return CatalogueResult(data, chosen, tree, diags, table, key, priors, settings, seconds)


#: What the saved catalogue posterior keeps: enough for every per-technique figure.
KEPT_VARIABLES = (
    "mu",
    "kappa",
    "theta_new",
    "mu_logit_mean",
    "mu_logit_sd",
    "log_kappa_mean",
    "log_kappa_sd",
    "source_offset",
)


def compact_tree(tree: xr.DataTree) -> xr.DataTree:
    """The chosen variant's posterior as it is saved and used: float32, per-technique quantities only.

    Applied right after fitting, so a run that fits the catalogue and a run that reads the
    saved one compute every figure from the same numbers. Observation-level draws (θ_i,
    replicated counts, pointwise log-likelihood) are used for the LOO comparison and then
    dropped: they would make the file ten times larger.
    """
    post = tree["posterior"].to_dataset()
    post = post[[v for v in KEPT_VARIABLES if v in post]].astype("float32")
    stats = tree["sample_stats"].to_dataset()[["diverging"]]
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def _sampled_only(tree: xr.DataTree) -> xr.DataTree:
    """The parameters whose convergence matters (θ draws are conditionally independent)."""
    post = tree["posterior"].to_dataset()
    keep = [v for v in post.data_vars if v not in ("theta", "theta_new")]
    return xr.DataTree.from_dict({"posterior": post[keep], "sample_stats": tree["sample_stats"].to_dataset()})


def cache_key(evidence: Evidence, priors: CataloguePriors, settings: CatalogueSettings) -> str:
    """What a saved catalogue must match to be reused: data, priors, settings, variants and package versions."""
    blob = json.dumps(
        {
            "data": evidence.digest,
            "priors": priors.to_dict(),
            "settings": asdict(settings),
            "variants": list(VARIANTS),
            "versions": {k: v for k, v in package_versions().items() if k != "attackprev"},
            "code": _model_code_digest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _model_code_digest() -> str:
    """A hash of the modules whose code decides the catalogue's draws (so an edited model is refitted)."""
    import attackprev.model.catalogue as model_module
    import attackprev.model.likelihood as likelihood_module
    import attackprev.model.priors as priors_module

    h = hashlib.sha256()
    for module in (model_module, likelihood_module, priors_module):
        h.update(Path(module.__file__).read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def catalogue_applies(evidence: Evidence) -> bool:
    """Whether the evidence has enough techniques reported by several sources to learn κ from."""
    per_technique: dict[str, int] = {}
    for o in evidence.observations:
        per_technique[o.technique_id] = per_technique.get(o.technique_id, 0) + 1
    multi = sum(1 for c in per_technique.values() if c > 1)
    return len(per_technique) >= 5 and multi >= 3


def cache_dir() -> Path:
    """The user's cache folder for saved catalogue fits (``ATTACKPREV_CACHE_DIR`` overrides it)."""
    return cache_root() / "catalogue"


def result_to_tree(result: CatalogueResult) -> xr.DataTree:
    """The result as it is saved: the compact posterior, with everything else as JSON attributes.

    The fitting times are left out and the comparison table keeps six significant figures, so the
    same fit saves the same bytes on any machine.
    """
    tree = result.tree.copy()
    tree.attrs.update(
        {
            "all_diagnostics": json.dumps({k: d.to_dict() for k, d in result.diagnostics.items()}),
            "comparison": json.dumps(round_floats(result.comparison)),  # last digits vary with NumPy's vector code
            "draws_sha256": draws_digest(result.tree),
        }
    )
    return tree


def save_result(result: CatalogueResult, path: Path) -> None:
    """Write ``result`` to ``path`` (netCDF) atomically: the file appears whole or not at all."""
    save_tree(result_to_tree(result), path)


def load_result(
    path: Path, evidence: Evidence, priors: CataloguePriors, settings: CatalogueSettings
) -> CatalogueResult | None:
    """The saved result at ``path`` if it is intact and was fitted to this evidence with these priors and settings.

    A file that cannot be read, lacks an attribute or variable, carries another key, or whose
    draws no longer hash to the value written beside them is rejected.
    """
    path = Path(path)
    if not path.is_file():
        return None
    key = cache_key(evidence, priors, settings)
    try:
        tree = load_tree(path)
        if tree.attrs.get("cache_key") != key:
            return None
        if tree.attrs.get("draws_sha256") != draws_digest(tree):
            return None
        data = CatalogueData.from_observations(list(evidence.observations))
        if list(tree["posterior"]["technique"].values) != list(data.techniques):
            return None
        diagnostics = {
            name: Diagnostics(**{k: v for k, v in d.items() if k not in ("passed", "limits")})
            for name, d in json.loads(tree.attrs["all_diagnostics"]).items()
        }
        return CatalogueResult(
            data=data,
            variant=str(tree.attrs["variant"]),
            tree=tree,
            diagnostics=diagnostics,
            comparison=json.loads(tree.attrs["comparison"]),
            key=key,
            priors=priors,
            settings=settings,
            seconds={},  # not saved: a saved result should not change with the machine's load
        )
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None


def cached_fit_catalogue(
    evidence: Evidence,
    priors: CataloguePriors | None = None,
    settings: CatalogueSettings | None = None,
    *,
    beside: Path | None = None,
    refit: bool = False,
    progress: bool = False,
) -> tuple[CatalogueResult, str]:
    """:func:`fit_catalogue` through the cache.

    Parameters
    ----------
    evidence, priors, settings
        As for :func:`fit_catalogue` (defaults when omitted).
    beside
        A reports folder: its ``techniques/posterior.nc`` is tried first (the result a
        catalogue report was written from).
    refit
        Fit even when a saved result matches.
    progress
        Show progress bars while fitting.

    Returns
    -------
    result
        The catalogue result.
    origin
        ``"fitted"``, or the path of the saved result that was reused.
    """
    priors = priors or CataloguePriors()
    settings = settings or CatalogueSettings()
    key = cache_key(evidence, priors, settings)
    cached = cache_dir() / f"{key}.nc"
    if not refit:
        for path in ([Path(beside) / CATALOGUE_DIR / "posterior.nc"] if beside is not None else []) + [cached]:
            result = load_result(path, evidence, priors, settings)
            if result is not None:
                return result, str(path)
    result = fit_catalogue(evidence, priors, settings, progress=progress)
    try:
        save_result(result, cached)
    except OSError:
        pass  # a read-only cache folder costs the next run a refit, nothing more
    return result, "fitted"
