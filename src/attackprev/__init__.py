"""attackprev: calibrated Bayesian probabilities for MITRE ATT&CK techniques in MAL languages.

Subpackages, lowest layer first (a module imports only from its own layer or lower ones;
``tests/test_architecture.py`` checks it):

- ``config``, ``errors``, ``atomic`` — paths and constants, the one user-facing error type, atomic writes;
- ``evidence`` — the evidence tables, denominators, ATT&CK IDs, enterpriseLang's notes and their audit;
- ``model`` — priors, the beta-binomial likelihood, the single-technique and multi-technique models;
- ``mal`` — MAL TTC expressions, ``.mal`` files, the ATT&CK-to-attack-step mapping, export;
- ``inference`` — MCMC (nutpie), the exact grid engine, compiled-code and fit caches, diagnostics;
- ``analysis`` — one technique end to end, the catalogue's numbers, source weighting;
- ``reporting`` — Markdown, JSON and figures;
- ``pipeline``, ``validation`` — one run from options to reports; calibration and MCMC-against-exact checks;
- ``cli`` — the ``attackprev`` command.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("attackprev")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
