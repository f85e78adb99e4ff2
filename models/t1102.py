"""T1102 (Web Service): how often attacks use it, as a calibrated probability for enterpriseLang.

The headline model is the multi-source synthesis (code: ``src/attackprev/model/synthesis.py``)::

    logit θ_i = a_t + b_f + d_tf + e_s      observation i: technique t, family f, source s
    k_i ~ BetaBinomial / Binomial(n_i, θ_i)  (see the model file)

fitted to every technique from every source of the evidence base v2; T1102's probability is
stated on one named scale, by default the share of intrusions investigated by incident
responders (the scale of M-Trends, the first source of enterpriseLang's note). The report sets
it beside the single-technique model of the note's two sources alone
(``src/attackprev/model/betabinomial.py``, with an exact grid computation as oracle), compares
both with enterpriseLang's point estimate ``Bernoulli(0.0445)``, and gives the MAL expression,
whose time to compromise is the degenerate zero (the web service is set up before the attack).

Run it from the repository root (after ``make report`` or ``make test`` has made ``.venv``)::

    .venv/bin/python models/t1102.py            # writes reports/t1102/ (reuses the saved multi-source fit)

It writes exactly what ``attackprev fit T1102`` writes.
"""

from attackprev.config import OBSERVATIONS_CSV, REPORTS_DIR, SOURCES_CSV
from attackprev.evidence.counts import load_counts
from attackprev.evidence.tables import load_evidence
from attackprev.pipeline import RunOptions, quiet_libraries, run_fit

if __name__ == "__main__":
    quiet_libraries()  # sampler warnings are summarised in the report's diagnostics
    evidence = load_evidence(OBSERVATIONS_CSV, SOURCES_CSV)  # the note's sources: data/observations.csv
    table = load_counts()  # the evidence base v2: data/evidence/counts.csv
    options = RunOptions()  # the default model (multi-source, mtrends scale) and settings: seed 20201102
    result = run_fit(["T1102"], evidence, options, out=REPORTS_DIR, command="python models/t1102.py", table=table)
    raise SystemExit(3 if result.failed else 0)
