"""The cached nutpie compilation: a cold start (helped by a forked child) samples exactly as a warm one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import hashlib, json, sys, time
import numpy as np
from attackprev.model.betabinomial import build_model
from attackprev.inference.mcmc import SamplerSettings, run_nutpie
from attackprev.inference import nutpie_cache
from attackprev.model.priors import PRIORS
model = build_model(np.array([9.0, 47.0]), np.array([227.0, 951.0]), ["a", "b"], PRIORS["halfnormal1"])
if sys.argv[1] == "precompile":  # the child's head start alone, in this process
    from nutpie import compile_pymc as cp
    fns = cp._make_functions(model, mode="NUMBA", compute_grad=True, join_expanded=True,
                             pymc_initial_point_fn=lambda *a: None, var_names=None)
    nutpie_cache._precompile_scalar_kernels(fns[2].maker.fgraph)
    print(json.dumps({}))
    raise SystemExit
start = time.perf_counter()
compiled = nutpie_cache.compile_pymc_model(model)
seconds = time.perf_counter() - start
tree = run_nutpie(compiled, SamplerSettings(draws=200, tune=200, chains=2))
mu = np.ascontiguousarray(tree["posterior"]["mu"].values)
print(json.dumps({"seconds": seconds, "kind": type(compiled).__name__,
                  "draws": hashlib.sha256(mu.tobytes()).hexdigest()}))
"""


def _run(cache, mode: str = "fit") -> dict:
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={cache}")
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _composites(cache) -> list[str]:
    return sorted(f.name for f in (cache / "numba").glob("*numba_composite*"))


def test_cold_and_warm_compilations_give_identical_draws(tmp_path):
    cache = tmp_path / "pytensor"
    cold = _run(cache)  # empty cache: a forked child precompiles kernels and the expand callback
    names = [f.name for f in (cache / "numba").glob("*.nbi")]
    assert any("nutpie_logp" in n for n in names) and any("nutpie_expand" in n for n in names)
    warm = _run(cache)
    assert cold["kind"] == warm["kind"] == "CachedPyMCModel"  # not nutpie's own fallback
    assert cold["draws"] == warm["draws"]
    assert warm["seconds"] < cold["seconds"]


def test_precompiled_kernels_are_the_ones_the_log_density_uses(tmp_path):
    cache = tmp_path / "pytensor"
    _run(cache, "precompile")
    before = _composites(cache)
    assert sum(n.endswith(".nbi") for n in before) >= 3, "the scalar kernels were not compiled into the cache"
    _run(cache)  # the full compilation loads them: none of them gains a second signature
    stems = {n.split(".py312")[0] for n in before}
    added = [n for n in set(_composites(cache)) - set(before) if n.split(".py312")[0] in stems]
    assert not added, added
