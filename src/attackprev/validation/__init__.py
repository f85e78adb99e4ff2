"""Validation of the two posterior engines of ``attackprev``.

``python -m attackprev.validation`` (``make validation``) runs

1. simulation-based calibration (SBC, Talts et al. 2018) of the exact grid engine and of
   NUTS (nutpie), with data sets drawn from the prior predictive of the default prior;
2. coverage of the central credible intervals of μ;
3. MCMC against the exact posterior on T1102 and on synthetic techniques;

and writes ``reports/validation-single.md`` (the single-technique model) with its figures in
``reports/validation/``. The same functions, with smaller sizes, make the CI slice in ``tests/test_validation.py``.

Modules
-------
simulate
    Prior-predictive data sets.
mcmc
    Compile the PyMC model once per number of sources and refit it by swapping data.
sbc
    Ranks / PIT values and uniformity tests, for both engines.
coverage
    Interval coverage with binomial standard errors.
compare
    MCMC against the exact engine on fixed data sets.
plots, report
    Figures and the Markdown report.
"""
