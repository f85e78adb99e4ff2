"""The posterior through an attack simulation: the example enterprise (reports/simulation/example/).

The example language (``examples/simulation/attackprevlang.mal``, written by this project) stands
for 14 ATT&CK techniques, its instance model (``examples/simulation/enterprise_model.yml``) is a
small enterprise: twelve users and workstations, a web server exposing a web application and a
VPN, a file server, a database server and a domain controller. An attacker starts on the
Internet. For each of 1000 joint draws of the techniques' probabilities from the multi-source
model (on the M-Trends scale), 32768 simulated episodes give the probability that the attacker
reaches each target; the report sets that distribution beside the answers with the language's own
values (enterpriseLang's published ones where it has them) and with the posterior means, and
ranks the techniques whose uncertainty moves the answer most.

Run it from the repository root::

    .venv/bin/python models/simulate_example.py     # writes reports/simulation/example/

The same with the command line::

    .venv/bin/attackprev simulate examples/simulation/attackprevlang.mal examples/simulation/enterprise_model.yml \\
        --steps examples/simulation/steps.csv --entry internet:attackerAccess \\
        --target dc:execute --target file-server:execute --target web-server:execute --target ws-00:execute \\
        --name example
"""

import os
from pathlib import Path

from attackprev.analysis.simulation import SimulationSettings
from attackprev.config import PROJ_ROOT, REPORTS_DIR
from attackprev.pipeline import quiet_libraries, run_simulation

EXAMPLE = Path("examples") / "simulation"  # relative to the repository root, as the report quotes it
TARGETS = ["dc:execute", "file-server:execute", "web-server:execute", "ws-00:execute"]

if __name__ == "__main__":
    quiet_libraries()
    os.chdir(PROJ_ROOT)
    result = run_simulation(
        EXAMPLE / "attackprevlang.mal",
        EXAMPLE / "enterprise_model.yml",
        ["internet:attackerAccess"],
        TARGETS,
        steps=EXAMPLE / "steps.csv",
        settings=SimulationSettings(draws=1000, episodes=32768),
        out=REPORTS_DIR,
        name="example",
        command="python models/simulate_example.py",
    )
    raise SystemExit(3 if result.failed else 0)
