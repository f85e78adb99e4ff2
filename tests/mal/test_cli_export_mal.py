"""`attackprev export-mal`: --simulator, restoring commented-out TTCs, and mapped steps the file lacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from attackprev.cli import app

# A tiny language of our own with some of enterpriseLang's step names, TTCs commented out as on its master
LANG = """\
#id: "org.attackprev.test.cli"
#version: "0.0.1"

category System {
    asset OS {
        & credentialDumping //[Bernoulli(0.08785)]
        | timestomp //(0.0396)]
        | scripting // [Bernoulli(0.38)*Exponential(1097)]
    }

    asset Windows extends OS {
    }

    asset Linux extends OS {
    }
}

category Network {
    asset ExternalNetwork {
        | webService //(0.0445)]
    }
}
"""
ESTIMATES = """\
technique_id,p,hdi_94_low,hdi_94_high
T1003,0.1,0.05,0.2
T1014,0.02,0.01,0.03
T1064,0.4,0.3,0.5
T1099,0.05,0.03,0.07
T1102,0.0471,0.03,0.07
"""


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    lang = tmp_path / "lang.mal"
    lang.write_text(LANG, encoding="utf-8")
    estimates = tmp_path / "estimates.csv"
    estimates.write_text(ESTIMATES, encoding="utf-8")
    return lang, estimates


def export_mal(*args: str):
    return CliRunner().invoke(app, ["export-mal", *args])


def test_patch_restores_commented_ttcs_and_lists_missing_steps(inputs, tmp_path):
    lang, estimates = inputs
    result = export_mal(
        "--reports", str(tmp_path), "--catalogue", str(estimates), "--patch", str(lang), "--simulator", "malsim"
    )
    assert result.exit_code == 0, result.output
    assert "| scripting [Exponential(1097)*Bernoulli(0.4)]" in result.stdout  # the fragment: time factor first
    assert "// Written for mal-simulator 3.3" in result.stdout
    table = result.stdout[result.stdout.index("\nasset ") + 1 :].splitlines()
    assert table[1].split() == ["OS", "credentialDumping", "//[Bernoulli(0.08785)]", "Bernoulli(0.1)"]
    assert table[2].split()[:4] == ["OS", "timestomp", "//(0.0396)]", "Bernoulli(0.05)"]
    assert "(mapped to Windows.timestomp: Windows extends OS, which has timestomp; mapped to Linux" in table[2]
    assert "not patched (1 mapped step(s) not found in the .mal file):" in result.stderr
    assert "  T1014 OS.rootkit: no attack step or defense named rootkit" in result.stderr
    patched = (tmp_path / "lang.patched.mal").read_text(encoding="utf-8")
    assert "        | scripting [Exponential(1097)*Bernoulli(0.4)] // [Bernoulli(0.38)*Exponential(1097)]" in patched
    assert "        | webService [Bernoulli(0.0471)] //(0.0445)]" in patched
    assert lang.read_text(encoding="utf-8") == LANG


def test_strict_fails_on_any_missing_step_and_without_it_only_when_none_matches(inputs, tmp_path):
    lang, estimates = inputs
    base = ["--reports", str(tmp_path), "--catalogue", str(estimates), "--patch", str(lang)]
    result = export_mal(*base, "--strict")
    assert result.exit_code == 2
    assert "1 of 6 mapped steps are not in the .mal text (OS.rootkit: no attack step" in result.stderr
    assert not (tmp_path / "lang.patched.mal").exists()

    lang.write_text(LANG.replace("webService", "otherService").replace("OS {", "Host {"))
    none = tmp_path / "none.csv"
    none.write_text("technique_id,p,hdi_94_low,hdi_94_high\nT1014,0.02,,\nT1102,0.05,,\n", encoding="utf-8")
    base = ["--reports", str(tmp_path), "--catalogue", str(none), "--patch", str(lang)]
    result = export_mal(*base)
    assert result.exit_code == 2 and "no mapped step is in the .mal text" in result.stderr
    result = export_mal(*base, "--skip-missing")
    assert result.exit_code == 0 and "no TTC changed" in result.stdout
    result = export_mal(*base, "--skip-missing", "--strict")
    assert result.exit_code == 2 and "either --strict or --skip-missing" in result.stderr


def test_unknown_simulator_is_one_line_and_exit_2(inputs, tmp_path):
    _, estimates = inputs
    result = export_mal("--reports", str(tmp_path), "--catalogue", str(estimates), "--simulator", "bogus")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("simulator must be one of securicad, malsim, not 'bogus'")
