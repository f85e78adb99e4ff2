"""The saved multi-source fit: reused only when its key and its draws' digest both match."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import xarray as xr

from attackprev.inference.diagnostics import Diagnostics
from attackprev.inference.synthesis import SynthesisResult, SynthesisSettings
from attackprev.inference.synthesis_cache import (
    cache_key,
    cache_path,
    cached_fit_synthesis,
    load_synthesis,
    save_synthesis,
)
from attackprev.model.priors import SynthesisPriors
from attackprev.model.synthesis import SynthesisData
from tests.synthesis_fixtures import make_table

ROWS = [("T1102", "m1", 3, 200), ("T1102", "g", 30, 170), ("T1059", "m1", 40, 200), ("T1059", "g", 90, 170)]
SOURCES = {"m1": ("mtrends", "partial"), "g": ("attack_groups", "complete")}


@pytest.fixture
def table():
    return make_table(ROWS, SOURCES)


def _fake_result(table) -> SynthesisResult:
    """A result with made-up draws in the saved layout (no sampling needed)."""
    data = SynthesisData.from_counts(table)
    t, f, c = len(data.techniques), len(data.families), len(data.cells)
    post = xr.Dataset(
        {
            "a": (("chain", "draw", "technique"), np.full((1, 4, t), -3.0, "float32")),
            "b": (("chain", "draw", "family"), np.zeros((1, 4, f), "float32")),
            "sigma": (("chain", "draw", "family"), np.ones((1, 4, f), "float32")),
            "phi": (("chain", "draw", "cell"), np.full((1, 4, c), -3.0, "float32")),
        },
        coords={"technique": data.techniques, "family": data.families, "cell": [f"{a}|{b}" for a, b in data.cells]},
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((1, 4), bool))})
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    return SynthesisResult(data, tree, Diagnostics(0, 1.0, 500.0, 500.0, 1, 4), SynthesisPriors(), SynthesisSettings())


def test_a_saved_fit_is_reused_only_while_intact_and_current(table, tmp_path):
    result = _fake_result(table)
    key = cache_key(table, result.priors, result.settings)
    path = tmp_path / "fit.nc"
    save_synthesis(result, key, path)
    loaded = load_synthesis(path, key, result.data, result.priors, result.settings)
    assert loaded is not None and loaded.passed and float(loaded.stacked("a").mean()) == pytest.approx(-3.0)
    assert load_synthesis(path, "another key", result.data, result.priors, result.settings) is None
    with xr.open_datatree(path) as handle:
        edited = handle.load()
    edited["posterior"]["a"] = edited["posterior"]["a"] * 2  # the digest saved beside the draws no longer matches
    edited.to_netcdf(path, engine="h5netcdf")
    assert load_synthesis(path, key, result.data, result.priors, result.settings) is None
    path.write_bytes(b"truncated")
    assert load_synthesis(path, key, result.data, result.priors, result.settings) is None


def test_every_input_of_a_fit_changes_its_key(table):
    priors, settings = SynthesisPriors(), SynthesisSettings()
    other = make_table([*ROWS[:-1], ("T1059", "g", 91, 170)], SOURCES)
    keys = {
        cache_key(table, priors, settings),
        cache_key(other, priors, settings),
        cache_key(table, replace(priors, year_sd=1.0), settings),
        cache_key(table, priors, replace(settings, seed=1)),
        cache_key(table, priors, replace(settings, draws=1000)),
        cache_key(table, priors, settings, exclude_sources=("m1",)),
    }
    assert len(keys) == 6
    assert cache_key(table, priors, settings) == cache_key(table, priors, settings)


def test_cached_fit_uses_the_saved_fit_with_the_right_key(table, tmp_path, monkeypatch):
    """A matching saved fit is returned without sampling (the sampler is replaced by a failure)."""
    monkeypatch.setenv("ATTACKPREV_CACHE_DIR", str(tmp_path))
    result = _fake_result(table)
    key = cache_key(table, result.priors, result.settings)
    save_synthesis(result, key, cache_path(key))

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted although a saved fit matched")

    monkeypatch.setattr("attackprev.inference.synthesis_cache.fit_synthesis", no_fit)
    reused, origin = cached_fit_synthesis(table)
    assert origin == str(cache_path(key)) and reused.data.techniques == result.data.techniques
    with pytest.raises(AssertionError, match="fitted although"):
        cached_fit_synthesis(table, refit=True)
