"""Latency of the exact grid engine for T1102, after import.

    python benchmarks/exact_latency.py [--repeats 200]

Prints one JSON line: the import time of ``attackprev.inference.exact`` and, over ``--repeats`` calls each
(after one warm-up call), the median, 10th and 90th percentile seconds of

- ``mu``: ``fit_exact`` and the summary of μ (what a prevalence needs);
- ``theta``: the same plus κ, every θ_s and θ_new (every figure of the posterior table);
- ``report``: the same plus what ``--engine exact`` adds for a report: the accuracy check on a
  grid twice as fine and the five-prior sensitivity table.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    """Time the three levels of work and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="calls per measurement")
    args = parser.parse_args()

    start = time.perf_counter()
    import numpy as np

    from attackprev.inference.exact import fit_exact
    from attackprev.model.priors import DEFAULT_PRIOR, PRIORS

    imported = time.perf_counter() - start
    y, n = np.array([9.0, 47.0]), np.array([227.0, 951.0])
    sources = ["mtrends2020", "sok2019_windows_malware"]
    prior = PRIORS[DEFAULT_PRIOR]

    def mu():
        ex = fit_exact(y, n, prior, sources=sources)
        return ex.mu

    def theta():
        ex = fit_exact(y, n, prior, sources=sources)
        return ex.mu, ex.kappa, ex.theta, ex.theta_new

    def report():
        ex = fit_exact(y, n, prior, sources=sources)
        _ = ex.mu, ex.kappa, ex.theta, ex.theta_new, ex.compare(0.0445), ex.accuracy()
        for other in PRIORS.values():
            alt = fit_exact(y, n, other, sources=sources)
            _ = alt.mu, alt.kappa, alt.compare(0.0445)

    out = {"import_seconds": imported, "repeats": args.repeats}
    for name, fn in (("mu", mu), ("theta", theta), ("report", report)):
        fn()
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        q10, q50, q90 = np.quantile(times, [0.1, 0.5, 0.9])
        out[name] = {"median": float(q50), "p10": float(q10), "p90": float(q90)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
