"""The committed example simulation (reports/simulation/example/): rendered from its summary, consistent in itself."""

from __future__ import annotations

import json

from attackprev.reporting.simulation import render_simulation_markdown
from tests.conftest import ROOT

FOLDER = ROOT / "reports" / "simulation" / "example"


def test_the_committed_example_is_its_summary_rendered():
    s = json.loads((FOLDER / "summary.json").read_text())
    assert (FOLDER / "report.md").read_text() == render_simulation_markdown(s)
    assert (FOLDER / "reach.png").stat().st_size > 10_000 and (FOLDER / "sensitivity.png").stat().st_size > 5_000
    assert s["posterior"]["diagnostics_passed"] and s["command"] == "python models/simulate_example.py"


def test_the_committed_example_states_coherent_numbers():
    s = json.loads((FOLDER / "summary.json").read_text())
    for t in s["targets"]:
        p = t["posterior"]
        assert 0 <= p["hdi_94"][0] <= p["median"] <= p["hdi_94"][1] <= 1, t["target"]
        assert p["noise_share"] < 0.5, t["target"]  # enough episodes per draw to read the spread
        shares = [r["share"] for r in t["sensitivity"]]
        assert shares == sorted(shares, reverse=True) and all(0 <= x <= 1 for x in shares), t["target"]
    # the domain controller needs a foothold, credentials and remote services after it: far less likely here
    by = {t["target"]: t for t in s["targets"]}
    assert by["dc:execute"]["posterior"]["mean"] < by["web-server:execute"]["posterior"]["mean"]
    assert {r["technique_id"] for r in s["techniques"]} >= {"T1003", "T1021", "T1102", "T1190"}
