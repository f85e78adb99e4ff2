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

Importing the package makes Numba compile for a generic x86-64 CPU (``NUMBA_CPU_NAME=generic``)
unless the variable is already set. Numba otherwise compiles PyTensor's log-density for the host
CPU: the vector width (AVX-512 or AVX2) and fused multiply-adds change the last bits of the
gradient under fastmath, NUTS turns those into different draws, and the same seed gave different
posteriors on different machines. With generic code the draws are the same on x86-64 CPUs with
AVX2 and FMA (the C library's exp and log still differ on older ones). Numba's cache keys include
the CPU name and features, so code compiled for another setting is never reused.
"""

import os
import sys
from importlib.metadata import PackageNotFoundError, version

os.environ.setdefault("NUMBA_CPU_NAME", "generic")
if "numba" in sys.modules:  # imported first (nutpie imports it): Numba reads the variable before it compiles
    from numba.core.config import reload_config

    reload_config()

try:
    __version__ = version("attackprev")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
