"""Paths, the reported interval and the diagnostic limits: the project's constants, defined once.

Every module that needs a folder, the credible-interval probability or a sampler-health
limit imports it from here, so a change is made in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The repository (or source tree) the package was installed from: ``src/attackprev/`` is two levels down.
PROJ_ROOT = Path(__file__).resolve().parents[2]
#: The evidence tables (``data/``); ``ATTACKPREV_DATA_DIR`` points elsewhere.
DATA_DIR = Path(os.environ.get("ATTACKPREV_DATA_DIR", PROJ_ROOT / "data"))
#: Where ``make report`` writes; the command line's ``--out`` default is ``reports/`` of the working directory.
REPORTS_DIR = PROJ_ROOT / "reports"
#: The evidence tables the command line reads when no ``--data`` is given.
SOURCES_CSV = DATA_DIR / "sources.csv"
OBSERVATIONS_CSV = DATA_DIR / "observations.csv"
NOTES_CSV = DATA_DIR / "enterpriselang_notes.csv"
STEPS_CSV = DATA_DIR / "enterpriselang_steps.csv"
EXCLUDED_CSV = DATA_DIR / "excluded.csv"
ATTACK_DIR = DATA_DIR / "attack"
#: Evidence base v2: raw copies of published data sets (as published, with their licences), the
#: hand-edited decisions about IDs the copies spell wrongly, and the tables built from them.
RAW_DIR = DATA_DIR / "raw"
ID_DECISIONS_CSV = DATA_DIR / "id_decisions.csv"
EVIDENCE_DIR = DATA_DIR / "evidence"
COUNTS_CSV = EVIDENCE_DIR / "counts.csv"
MEMBERS_CSV = EVIDENCE_DIR / "members.csv"
EXCLUDED_ROWS_CSV = EVIDENCE_DIR / "excluded_rows.csv"
ELANG_ATTACK_STEPS_CSV = DATA_DIR / "enterpriselang_attack_steps.csv"

#: Sub-folder of a reports folder that holds the catalogue (every technique) report.
CATALOGUE_DIR = "techniques"

#: Names of the models a technique's probability can come from. The default estimand is the
#: multi-source synthesis's (every source of the evidence base v2, on one named scale); the
#: multi-technique model on the four sources of enterpriseLang's notes and the single-technique
#: model remain on request.
MULTI_SOURCE = "multi-source"
MULTI_TECHNIQUE = "multi-technique"
SINGLE_TECHNIQUE = "single-technique"
DEFAULT_MODEL = MULTI_SOURCE
#: The default target family: probabilities are shares of intrusions investigated by incident responders.
DEFAULT_TARGET = "mtrends"

#: Probability of every credible / highest-density interval the project reports.
HDI_PROB = 0.94

#: A fit passes its diagnostics when it has at most this many divergences, R-hat at most
#: ``max_rhat`` and bulk ESS at least ``min_ess_bulk`` for every parameter.
DIAGNOSTIC_LIMITS = {"divergences": 0, "max_rhat": 1.01, "min_ess_bulk": 400}

#: The seed of every default fit (any fixed value would do; this one is kept so committed reports stay as they are).
DEFAULT_SEED = 20201102
