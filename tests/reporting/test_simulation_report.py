"""The committed example simulation (reports/simulation/example/): rendered from its summary, consistent in itself."""

from __future__ import annotations

import json

import pytest

from attackprev.reporting.simulation import _days, _p, _time, render_simulation_markdown
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


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (None, "–"),
        (0, "0"),
        (0.0, "0"),
        (1.0, "1"),
        (0.5, "0.5"),
        (0.123456, "0.123"),
        (0.001, "0.001"),  # the threshold keeps positional notation
        (0.000123, "1.23e-04"),  # rarer reaches are written with an exponent
    ],
)
def test_probability_text(x, text):
    assert _p(x) == text


def test_time_text():
    assert (_days(None), _days(2.5), _days(0.0), _days(0.01234)) == ("–", "2.5 d", "0 d", "0.0123 d")
    assert _days(1234.5) == "1.23e+03 d"  # three significant figures, whatever the size
    assert _time({"mean": None, "hdi_94": None, "episodes": 0}) == "– (reached in 0 episodes)"
    assert _time({"mean": 2.0, "hdi_94": [0.5, 4.25], "episodes": 123}) == "2 d (0.5 d–4.25 d; 123 episodes)"
