"""Every technique with countable evidence, fitted at once: the catalogue report.

The model (code: ``src/attackprev/model/catalogue.py``, priors in ``src/attackprev/model/priors.py``)::

    y_i ~ BetaBinomial(n_i, p_i κ_t, (1 − p_i) κ_t)     observation i: technique t, source s
    logit p_i = logit μ_t (+ δ_s)                     δ_s: a systematic offset of source s (some variants)
    logit μ_t = m + σ z_t,   log κ_t = ℓ (+ ς w_t)     partial pooling across techniques

Four variants (one κ or κ_t pooled on the log scale; with or without source offsets) are
sampled with nutpie and compared by PSIS-LOO; the simplest adequate one is kept. The report
(``reports/techniques/catalogue.md``) gives every technique's posterior beside enterpriseLang's
published probability, the model comparison and the diagnostics of each variant.

Run it from the repository root::

    .venv/bin/python models/catalogue.py        # writes reports/techniques/

It writes exactly what ``attackprev fit --all --refit`` writes: it always fits (the command
line without ``--refit`` reuses a saved fit of the same data, priors, settings and versions).
"""

from attackprev.config import OBSERVATIONS_CSV, REPORTS_DIR, SOURCES_CSV
from attackprev.evidence.tables import load_evidence
from attackprev.pipeline import RunOptions, quiet_libraries, run_fit

if __name__ == "__main__":
    quiet_libraries()  # sampler warnings are summarised in the report's diagnostics
    evidence = load_evidence(OBSERVATIONS_CSV, SOURCES_CSV)
    result = run_fit(
        [], evidence, RunOptions(refit=True), out=REPORTS_DIR, all_techniques=True, command="python models/catalogue.py"
    )
    raise SystemExit(3 if result.failed else 0)
