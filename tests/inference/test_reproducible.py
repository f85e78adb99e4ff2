"""The draws depend on the seed only: not on the host CPU, nor on whether the compiled code came from the cache.

Each fit runs in its own process with empty caches. Another CPU is emulated on this one: LLVM
is told the host is another model (Numba then compiles for it unless the package chooses the
CPU), and NumPy's and OpenBLAS's run-time dispatch are held to what that CPU has.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 CPUs only")

FIT = """
import hashlib, json, sys
import attackprev  # the package's settings, applied by any import of it
if sys.argv[1] != "host":  # LLVM reports this CPU model, with its own features, as the host
    import llvmlite.binding as ll
    ll.get_host_cpu_name = lambda: sys.argv[1]
    ll.get_host_cpu_features = ll.FeatureMap
import numpy as np
from numba.core.registry import cpu_target
from attackprev.evidence.tables import load_evidence
from attackprev.inference.catalogue import sample_catalogue
from attackprev.model.catalogue import VARIANTS, CatalogueData
from attackprev.model.priors import CataloguePriors
data = CatalogueData.from_observations(list(load_evidence().observations))
tree = sample_catalogue(data, CataloguePriors(), VARIANTS["pooled"], draws=100, tune=100, chains=2)
post = tree["posterior"]
draws = b"".join(np.ascontiguousarray(post[v].values).tobytes() for v in ("mu", "kappa", "theta_new"))
cpu = cpu_target.target_context.codegen().magic_tuple()[1]
print(json.dumps({"draws": hashlib.sha256(draws).hexdigest(), "cpu": cpu}))
"""

#: What NumPy and OpenBLAS may use on each emulated CPU (NumPy >= 2.4 names its dispatch targets X86_V3, X86_V4, ...).
DISPATCH = {
    "haswell": {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Haswell"},
    "nehalem": {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Nehalem"},
}


def _other_cpu() -> str:
    """A CPU unlike this one that this one can run code for: AVX2 without AVX-512, or SSE4.2 without AVX."""
    import llvmlite.binding as ll

    return "haswell" if ll.get_host_cpu_features().get("avx512f") else "nehalem"


#: Settings a fit must not inherit from this process (the package has set NUMBA_CPU_NAME here).
INHERITED = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE")


def _environ(cache, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    env |= {"PYTENSOR_FLAGS": f"base_compiledir={cache / 'pytensor'}", "NUMBA_CACHE_DIR": str(cache / "numba")}
    return env | (extra or {})


def _fit(cache, cpu: str = "host") -> dict:
    env = _environ(cache, DISPATCH.get(cpu))
    out = subprocess.run([sys.executable, "-c", FIT, cpu], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    here = tmp_path_factory.mktemp("host")
    other = _other_cpu()
    return {
        "cold": _fit(here),
        "warm": _fit(here),  # the same caches, now filled
        "other": _fit(tmp_path_factory.mktemp(other), other),
    }


@pytest.mark.slow
def test_draws_do_not_depend_on_the_host_cpu(fits):
    assert fits["cold"]["draws"] == fits["other"]["draws"]
    assert fits["cold"]["cpu"] == fits["other"]["cpu"] == "generic"


@pytest.mark.slow
def test_a_cold_start_samples_as_a_warm_one(fits):
    assert fits["cold"]["draws"] == fits["warm"]["draws"]


CONFIG = """
import json
import nutpie, numba  # Numba imported before the package: it must still compile for a generic CPU
import attackprev
numba.njit(lambda x: x + 1)(1)
from numba.core.registry import cpu_target
print(json.dumps(list(cpu_target.target_context.codegen().magic_tuple()[1:])))
"""


@pytest.mark.parametrize(("setting", "expected"), [(None, "generic"), ("haswell", "haswell")])
def test_numba_compiles_for_a_generic_cpu_unless_told_otherwise(tmp_path, setting, expected):
    env = _environ(tmp_path, {"NUMBA_CPU_NAME": setting} if setting else None)
    out = subprocess.run([sys.executable, "-c", CONFIG], env=env, capture_output=True, text=True, check=True)
    name, features = json.loads(out.stdout.strip().splitlines()[-1])
    assert name == expected
    if setting is None:
        assert features == ""  # generic: the baseline instruction set, whatever this CPU has
