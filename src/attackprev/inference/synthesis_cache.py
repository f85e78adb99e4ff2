"""The multi-source fit, saved and reused: one fit serves the catalogue, every technique report and the notebooks.

A fit takes minutes, and ``make report``, ``attackprev fit T1102``, ``attackprev fit --all`` and
the notebooks all need the same one. :func:`cached_fit_synthesis` saves it in the user's cache
folder (:func:`attackprev.inference.cache.cache_root` ``/synthesis``) under a key made of what
decides its draws — the data's digest, the reference family, the held-out sources, the priors,
the sampler settings, the package versions and the model code — and reuses it only when the key
and a SHA-256 of the saved draws both match. The posterior is made compact (float32, the
quantities the estimands need) right after fitting, so a fresh fit and a reused one give the
same numbers.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import xarray as xr

from attackprev.evidence.counts import CountTable
from attackprev.inference.cache import cache_root, draws_digest, load_tree, save_tree
from attackprev.inference.diagnostics import Diagnostics, package_versions
from attackprev.inference.synthesis import SynthesisResult, SynthesisSettings, fit_synthesis
from attackprev.model.priors import SynthesisPriors
from attackprev.model.synthesis import DEFAULT_TARGET, SynthesisData

#: What the estimands and reports need of the posterior (the sampler's own coordinates are dropped).
KEPT_VARIABLES = ("level_mean", "level_sd", "a", "b", "sigma", "phi", "tau", "e", "log_kappa")


def compact(result: SynthesisResult) -> SynthesisResult:
    """``result`` with its posterior reduced to :data:`KEPT_VARIABLES` in float32 (about 120 MB for
    the full evidence at the default settings, a tenth of the sampler's output)."""
    post = result.tree["posterior"].to_dataset()
    post = post[[v for v in KEPT_VARIABLES if v in post]].astype("float32")
    stats = result.tree["sample_stats"].to_dataset()[["diverging"]]
    result.tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    return result


def _code_digest() -> str:
    """A hash of the code that decides the draws: the data arrays, the model, its priors, the sampling
    and the compaction (an edit to their code refits; to their docstrings, comments, or elsewhere in their
    modules, not)."""
    import ast
    import inspect
    import textwrap

    from attackprev.inference import synthesis as inference_module
    from attackprev.model import sampling_form
    from attackprev.model import synthesis as model_module

    def code(obj) -> str:  # the code without its docstrings and comments: a reworded docstring does not refit
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
                if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
        return ast.dump(tree)

    h = hashlib.sha256()
    for obj in (
        SynthesisData,
        model_module.build_synthesis_model,
        sampling_form,
        SynthesisPriors,
        SynthesisSettings,
        inference_module.fit_synthesis,
        compact,
    ):
        h.update(code(obj).encode())
    return h.hexdigest()


def cache_key(
    table: CountTable,
    priors: SynthesisPriors,
    settings: SynthesisSettings,
    reference: str = DEFAULT_TARGET,
    exclude_sources: tuple[str, ...] = (),
) -> str:
    """What a saved fit must match to be reused."""
    blob = json.dumps(
        {
            "data": table.digest,
            "reference": reference,
            "held_out": sorted(exclude_sources),
            "priors": priors.to_dict(),
            "settings": asdict(settings),
            "versions": {k: v for k, v in package_versions().items() if k != "attackprev"},
            "code": _code_digest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_path(key: str) -> Path:
    """Where the fit with ``key`` is saved."""
    return cache_root() / "synthesis" / f"{key}.nc"


def save_synthesis(result: SynthesisResult, key: str, path: Path) -> None:
    """Write a compact result atomically, with its key, diagnostics and the draws' digest."""
    tree = result.tree.copy()
    tree.attrs.update(
        {
            "cache_key": key,
            "record": json.dumps(result.record(), sort_keys=True),
            "diagnostics": json.dumps(result.diagnostics.to_dict()),
            "draws_sha256": draws_digest(result.tree),
        }
    )
    save_tree(tree, path)


def load_synthesis(
    path: Path, key: str, data: SynthesisData, priors: SynthesisPriors, settings: SynthesisSettings
) -> SynthesisResult | None:
    """The saved result at ``path`` if it is intact and carries ``key``; else ``None``.

    A file that cannot be read, lacks an attribute, carries another key, whose techniques or
    cells differ from ``data``'s, or whose draws no longer hash to the value saved beside them
    is rejected.
    """
    if not path.is_file():
        return None
    try:
        tree = load_tree(path)
        if tree.attrs.get("cache_key") != key or tree.attrs.get("draws_sha256") != draws_digest(tree):
            return None
        post = tree["posterior"]
        if list(post["technique"].values) != data.techniques or len(post["cell"]) != len(data.cells):
            return None
        saved = json.loads(tree.attrs["diagnostics"])
        diagnostics = Diagnostics(**{k: v for k, v in saved.items() if k not in ("passed", "limits")})
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None
    return SynthesisResult(data=data, tree=tree, diagnostics=diagnostics, priors=priors, settings=settings)


def cached_fit_synthesis(
    table: CountTable,
    priors: SynthesisPriors | None = None,
    settings: SynthesisSettings | None = None,
    reference: str = DEFAULT_TARGET,
    exclude_sources: tuple[str, ...] = (),
    *,
    refit: bool = False,
    progress: bool = False,
) -> tuple[SynthesisResult, str]:
    """:func:`attackprev.inference.synthesis.fit_synthesis` through the cache.

    Returns
    -------
    result
        The compact result (:func:`compact`).
    origin
        ``"fitted"``, or the path of the saved fit that was reused.
    """
    priors = priors or SynthesisPriors()
    settings = settings or SynthesisSettings()
    key = cache_key(table, priors, settings, reference, exclude_sources)
    path = cache_path(key)
    with _fit_lock(path):  # a second process asking for the same fit waits for the first, then reuses it
        if not refit:
            data = SynthesisData.from_counts(table, reference, exclude_sources)
            saved = load_synthesis(path, key, data, priors, settings)
            if saved is not None:
                return saved, str(path)
        result = compact(fit_synthesis(table, priors, settings, reference, exclude_sources, progress=progress))
        try:
            save_synthesis(result, key, path)
        except OSError:
            pass  # a read-only cache folder costs the next run a refit, nothing more
    return result, "fitted"


@contextmanager
def _fit_lock(path: Path):
    """Hold an exclusive lock on ``path``'s fit (POSIX ``flock``) while it is looked up, fitted and saved.

    Where no lock can be taken (no ``fcntl``, a read-only cache folder) the fit goes ahead unlocked.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_name(path.name + ".lock"), "a+")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
