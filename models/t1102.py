"""T1102 (Web Service): how often attacks use it, as a calibrated probability for enterpriseLang.

The model (code: ``src/attackprev/model/catalogue.py`` and ``src/attackprev/model/betabinomial.py``)::

    every technique t, every source s reporting it, y_ts cases of n_s:
      y_ts ~ BetaBinomial(n_s, μ_t κ_t, (1 − μ_t) κ_t)        θ_ts ~ Beta(μ_t κ_t, (1 − μ_t) κ_t) integrated out
      logit μ_t ~ Normal(m, σ),   log κ_t ~ Normal(ℓ, ς)      prevalences and concentrations partially pooled

T1102's headline is μ_T1102 of that multi-technique fit (the default estimand); the report
sets it beside the same model fitted to T1102's two sources alone, compares both with
enterpriseLang's point estimate ``Bernoulli(0.0445)``, and gives the MAL expression, whose
time to compromise is the degenerate zero (the web service is set up before the attack).

Run it from the repository root (after ``make report`` or ``make test`` has made ``.venv``)::

    .venv/bin/python models/t1102.py            # writes reports/t1102/ (and reuses reports/techniques/)

It writes exactly what ``attackprev fit T1102`` writes.
"""

from attackprev.config import OBSERVATIONS_CSV, REPORTS_DIR, SOURCES_CSV
from attackprev.evidence.tables import load_evidence
from attackprev.pipeline import RunOptions, quiet_libraries, run_fit

if __name__ == "__main__":
    quiet_libraries()  # sampler warnings are summarised in the report's diagnostics
    evidence = load_evidence(OBSERVATIONS_CSV, SOURCES_CSV)  # data/observations.csv, data/sources.csv
    options = RunOptions()  # the default model and sampler settings: seed 20201102
    result = run_fit(["T1102"], evidence, options, out=REPORTS_DIR, command="python models/t1102.py")
    raise SystemExit(3 if result.failed else 0)
