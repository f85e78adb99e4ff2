"""One multi-technique fit, run in its own process by ``benchmarks/run.py`` (which measures its memory).

    python benchmarks/catalogue_fit.py --techniques 20     # the first 20 techniques of the evidence
    python benchmarks/catalogue_fit.py --synthetic 500     # 500 techniques drawn from the model

Fits the ``pooled`` variant (the one the LOO comparison chooses) with
``sample_catalogue(data, CataloguePriors(), VARIANTS["pooled"])`` and its defaults (4 chains ×
3000 draws after 1500 tuning, target_accept 0.97) and prints one JSON line: sizes, seconds
(model build, compile, sampling and derived quantities), divergences, R-hat and ESS.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

#: Hyperparameters of the synthetic catalogue: the posterior means of the real catalogue's
#: pooled fit (logit-prevalence mean and sd, log-concentration mean and sd).
SYNTHETIC = {"mu_logit_mean": -2.2, "mu_logit_sd": 1.6, "log_kappa_mean": 3.8, "log_kappa_sd": 1.6}
#: Sources of the synthetic catalogue: (name, trials, share of observations), as in the evidence.
SYNTHETIC_SOURCES = (
    ("mtrends2020", 227, 0.44),
    ("recordedfuture_2019", 26057, 0.08),
    ("redcanary_2020_tdr", 100, 0.15),
    ("sok2019_windows_malware", 951, 0.33),
)
SYNTHETIC_SEED = 20251128


def synthetic_observations(techniques: int, seed: int = SYNTHETIC_SEED) -> list:
    """A catalogue drawn from the pooled model: 1 or 2 sources per technique (~1.4 on average)."""
    from attackprev.evidence.tables import Observation

    rng = np.random.default_rng(seed)
    h = SYNTHETIC
    names = [s[0] for s in SYNTHETIC_SOURCES]
    share = np.array([s[2] for s in SYNTHETIC_SOURCES])
    trials = {s[0]: s[1] for s in SYNTHETIC_SOURCES}
    out = []
    for t in range(techniques):
        mu = 1.0 / (1.0 + np.exp(-(h["mu_logit_mean"] + h["mu_logit_sd"] * rng.normal())))
        kappa = np.exp(h["log_kappa_mean"] + h["log_kappa_sd"] * rng.normal())
        k = 2 if rng.uniform() < 0.4 else 1
        for source in rng.choice(names, size=k, replace=False, p=share):
            n = trials[str(source)]
            theta = rng.beta(mu * kappa, (1.0 - mu) * kappa)
            y = int(rng.binomial(n, theta))
            out.append(Observation(f"S{t:04d}", str(source), y, n, percent=None, trials_basis="synthetic"))
    return out


def main() -> None:
    """Parse the arguments, fit, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--techniques", type=int, help="fit the first N techniques of the bundled evidence")
    group.add_argument("--synthetic", type=int, help="fit N techniques drawn from the model")
    parser.add_argument("--draws", type=int, default=None, help="draws per chain (default: sample_catalogue's)")
    parser.add_argument("--tune", type=int, default=None, help="tuning steps per chain (default: sample_catalogue's)")
    args = parser.parse_args()

    start = time.perf_counter()
    from attackprev.config import OBSERVATIONS_CSV, SOURCES_CSV
    from attackprev.evidence.tables import load_evidence
    from attackprev.inference.catalogue import LOW_RANK_MAX_PARAMETERS, _sampled_only, sample_catalogue
    from attackprev.inference.diagnostics import diagnose
    from attackprev.model.catalogue import VARIANTS, CatalogueData
    from attackprev.model.priors import CataloguePriors

    if args.synthetic:
        observations = synthetic_observations(args.synthetic)
    else:
        evidence = load_evidence(OBSERVATIONS_CSV, SOURCES_CSV)
        keep = sorted({o.technique_id for o in evidence.observations})[: args.techniques]
        observations = [o for o in evidence.observations if o.technique_id in keep]
    data = CatalogueData.from_observations(observations)
    parameters = 2 * len(data.techniques) + 4  # pooled: z and w per technique, m, σ, ℓ, ς
    imported = time.perf_counter()
    tree = sample_catalogue(
        data,
        CataloguePriors(),
        VARIANTS["pooled"],
        **({"draws": args.draws} if args.draws else {}),
        **({"tune": args.tune} if args.tune else {}),
    )
    fitted = time.perf_counter()
    diag = diagnose(_sampled_only(tree))
    stats = tree["sample_stats"]
    print(
        json.dumps(
            {
                "techniques": len(data.techniques),
                "observations": len(data.labels),
                "sources": len(data.sources),
                "parameters": parameters,
                "adaptation": "low_rank" if parameters <= LOW_RANK_MAX_PARAMETERS else "diag",
                "chains": int(tree["posterior"].sizes["chain"]),
                "draws": int(tree["posterior"].sizes["draw"]),
                "import_seconds": imported - start,
                "fit_seconds": fitted - imported,
                "divergences": diag.divergences,
                "max_rhat": diag.max_rhat,
                "min_ess_bulk": diag.min_ess_bulk,
                "min_ess_tail": diag.min_ess_tail,
                "mean_steps": float(stats["n_steps"].mean()),
                "passed": diag.passed,
            }
        )
    )


if __name__ == "__main__":
    main()
