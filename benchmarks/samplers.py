"""Effective samples per second of μ for T1102's single-technique model, sampler against sampler.

    python benchmarks/samplers.py [--pymc-draws 1000]

Runs, in one process and on the same PyMC model (``attackprev.model.betabinomial.build_model``, default
prior): the project's settings (nutpie, 4 × 4000 draws after 1000 tuning, target_accept 0.95,
compiled through ``attackprev.inference.nutpie_cache``), then PyMC's own NUTS with its defaults
(``pm.sample(nuts_sampler="pymc")``: 1000 draws after 1000 tuning, target_accept 0.8, chains
in parallel processes; 4 chains as everywhere else). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    """Sample twice and print compile/sampling seconds, ESS of μ and divergences."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pymc-draws", type=int, default=1000, help="draws per chain for PyMC's NUTS")
    args = parser.parse_args()

    import arviz as az
    import numpy as np
    import pymc as pm

    from attackprev.evidence.tables import load_evidence
    from attackprev.inference.mcmc import SamplerSettings, run_nutpie
    from attackprev.inference.nutpie_cache import compile_pymc_model
    from attackprev.model.betabinomial import build_model
    from attackprev.model.priors import DEFAULT_PRIOR, get_prior

    observations = load_evidence().for_technique("T1102")
    y = np.array([o.successes for o in observations], float)
    n = np.array([o.trials for o in observations], float)
    sources = [o.source_id for o in observations]
    settings = SamplerSettings()
    out = {}

    def ess(tree) -> dict:
        return {
            "ess_bulk": float(az.ess(tree, var_names=["mu"], method="bulk")["mu"]),
            "ess_tail": float(az.ess(tree, var_names=["mu"], method="tail")["mu"]),
            "divergences": int(tree["sample_stats"]["diverging"].sum()),
        }

    model = build_model(y, n, sources, get_prior(DEFAULT_PRIOR))
    start = time.perf_counter()
    compiled = compile_pymc_model(model)
    compiled_at = time.perf_counter()
    tree = run_nutpie(compiled, settings)
    done = time.perf_counter()
    out["project"] = {
        "sampler": "nutpie",
        "chains": settings.chains,
        "draws": settings.draws,
        "tune": settings.tune,
        "compile_seconds": compiled_at - start,
        "sampling_seconds": done - compiled_at,
    } | ess(tree)

    model = build_model(y, n, sources, get_prior(DEFAULT_PRIOR))
    start = time.perf_counter()
    with model:
        idata = pm.sample(
            draws=args.pymc_draws,
            chains=settings.chains,  # PyMC would pick one per core (2 here); 4 as everywhere else
            nuts_sampler="pymc",
            random_seed=settings.seed,
            progressbar=False,
            compute_convergence_checks=False,
        )
    done = time.perf_counter()
    sampling = idata["sample_stats"].attrs.get("sampling_time")
    out["pymc"] = {
        "sampler": "pymc",
        "chains": int(idata["posterior"].sizes["chain"]),
        "draws": int(idata["posterior"].sizes["draw"]),
        "tune": int(idata["sample_stats"].attrs.get("tuning_steps", 1000)),
        "compile_seconds": (done - start) - float(sampling) if sampling is not None else None,
        "sampling_seconds": float(sampling) if sampling is not None else done - start,
        "wall_seconds": done - start,
    } | ess(idata)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
