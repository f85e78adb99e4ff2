"""Every technique from every source, on one named scale: the bias-adjusted multi-source model.

The model (code: ``src/attackprev/model/synthesis.py``, priors in ``src/attackprev/model/priors.py``)::

    logit θ_i = a_t + b_f + d_tf + e_s      observation i: technique t, family f, source s
    d_tf ~ Normal(0, σ_f)                    technique t's departure in family f
    e_s: a year's shift within a family of several years (sums to 0 there)
    k_i ~ BetaBinomial(n_i, θ_i κ_f, (1 − θ_i) κ_f)   families of several sources; Binomial otherwise

A technique's probability on the scale of a target family T is logit⁻¹(a_t + b_T + d_tT): by
default T = mtrends, the share of intrusions investigated by incident responders in which the
technique is seen. The evidence is the evidence base v2 (``data/evidence/counts.csv``: ATT&CK
groups, software and campaigns, CTID's TIE reports, CISA advisories, M-Trends 2020–2024, and
the four sources of enterpriseLang's notes).

Run it from the repository root::

    .venv/bin/python models/sources.py        # writes reports/sources/

It writes what ``attackprev synthesis`` writes.
"""

from attackprev.config import REPORTS_DIR
from attackprev.evidence.counts import load_counts
from attackprev.pipeline import quiet_libraries, run_synthesis

if __name__ == "__main__":
    quiet_libraries()
    result = run_synthesis(load_counts(), "mtrends", REPORTS_DIR, command="python models/sources.py")
    raise SystemExit(0 if result.passed else 3)
