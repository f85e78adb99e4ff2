"""Every technique from every source, on one named scale: the catalogue.

The model (code: ``src/attackprev/model/synthesis.py``, priors in ``src/attackprev/model/priors.py``)::

    logit θ_i = a_t + b_f + d_tf + e_s      observation i: technique t, family f, source s
    d_tf ~ Normal(0, σ_f)                    technique t's departure in family f
    e_s: a year's shift within a family of several years (sums to 0 there)
    k_i ~ BetaBinomial(n_i, θ_i κ_f, (1 − θ_i) κ_f)   families of several sources; Binomial otherwise

Sources count different populations (intrusions, adversary groups, malware, CTI reports,
advisories), so each family of sources enters through a learned systematic offset b_f and a
technique-by-family departure d_tf, never as if they measured the same thing. A technique's
probability on the scale of a target family T is logit⁻¹(a_t + b_T + d_tT): by default
T = mtrends, the share of intrusions investigated by incident responders in which the technique
is seen. The evidence is the evidence base v2 (``data/evidence/counts.csv``: ATT&CK groups,
software and campaigns, CTID's TIE reports, CISA advisories, M-Trends 2020–2024, and the four
sources of enterpriseLang's notes).

Run it from the repository root::

    .venv/bin/python models/catalogue.py        # writes reports/techniques/

It writes what ``attackprev fit --all`` writes (the fit, about 3 minutes on two cores, is saved
in the user's cache and reused by ``models/t1102.py`` and the notebooks).
"""

from attackprev.config import OBSERVATIONS_CSV, REPORTS_DIR, SOURCES_CSV
from attackprev.evidence.counts import load_counts
from attackprev.evidence.tables import load_evidence
from attackprev.pipeline import RunOptions, quiet_libraries, run_fit

if __name__ == "__main__":
    quiet_libraries()  # sampler warnings are summarised in the report's diagnostics
    evidence = load_evidence(OBSERVATIONS_CSV, SOURCES_CSV)  # the notes' sources (single-technique model)
    table = load_counts()  # the evidence base v2 (data/evidence/counts.csv, data/sources.csv)
    options = RunOptions(target="mtrends")  # the default model, scale and sampler settings: seed 20201102
    result = run_fit(
        [], evidence, options, out=REPORTS_DIR, all_techniques=True, command="python models/catalogue.py", table=table
    )
    raise SystemExit(3 if result.failed else 0)
