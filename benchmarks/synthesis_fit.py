"""One fit of the multi-source synthesis on the whole evidence base, run in its own process by ``benchmarks/run.py``.

    python benchmarks/synthesis_fit.py

Fits :mod:`attackprev.model.synthesis` with its default settings (``SynthesisSettings``: 4 chains ×
1500 draws after 1000 tuning steps) and prints one JSON line: sizes, seconds (load, compile,
sampling), divergences, R-hat and ESS.
"""

from __future__ import annotations

import json
import time

if __name__ == "__main__":
    started = time.perf_counter()
    from attackprev.evidence.counts import load_counts
    from attackprev.inference.synthesis import fit_synthesis

    table = load_counts()
    loaded = time.perf_counter()
    result = fit_synthesis(table)
    d = result.diagnostics
    print(
        json.dumps(
            {
                "techniques": len(result.data.techniques),
                "observations": int(result.data.successes.size),
                "sources": len(result.data.sources),
                "families": len(result.data.families),
                "load_seconds": loaded - started,
                "compile_seconds": result.seconds["compile"],
                "sample_seconds": result.seconds["sample"],
                "fit_seconds": result.seconds["compile"] + result.seconds["sample"],
                "divergences": d.divergences,
                "max_rhat": d.max_rhat,
                "min_ess_bulk": d.min_ess_bulk,
                "chains": d.chains,
                "draws": d.draws,
            }
        )
    )
