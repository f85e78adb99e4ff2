"""Patching .mal files: only the intended TTCs change, and the result compiles with mal-toolbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from maltoolbox.language import LanguageGraph

from attackprev.errors import InputError
from attackprev.mal.dictionary import ttc_dict
from attackprev.mal.malfile import TtcChange, format_changes, patch_mal
from tests.mal.test_expressions import HEADER

# A small language shaped like enterpriseLang, with the traps a patcher can fall into:
# the same step name in two assets, a defense, tags and CIA marks, and step names
# inside comments and strings.
LANG = (
    HEADER
    + """\
// webService [Bernoulli(0.0445)] in a comment stays as it is
category Software {
    asset Service {
        | remoteAccessSoftware [Bernoulli(0.0789)*Exponential(106.67)]
            developer info: "remoteAccessSoftware [Bernoulli(0.5)] in a string stays"
            ->  webService

        | webService
            user info: "same name as ExternalNetwork.webService, not mapped"

        # executionPrevention [Bernoulli(0.3)]
            ->  remoteAccessSoftware
    }
}

category Network {
    asset ExternalNetwork {
        & webService [Bernoulli(0.0445)]
            developer info: "https://www.fireeye.com/mtrends.html // not a comment"
            ->  bypassFirewall

        | attemptWebService @hidden
            ->  webService

        | bypassFirewall {A}
        /* webService [Bernoulli(0.9)] in a block comment */
    }
}
"""
)


def compile_file(path: Path) -> dict[tuple[str, str], dict | None]:
    graph = LanguageGraph.from_mal_spec(str(path))
    return {(asset.name, step): s.ttc for asset in graph.assets.values() for step, s in asset.attack_steps.items()}


def test_bare_step_name_patches_every_asset_and_inserts_missing_ttcs(tmp_path):
    new_text, changes = patch_mal(LANG, {"webService": "Bernoulli(0.0471)", "bypassFirewall": "Bernoulli(0.2)"})
    assert changes == [
        TtcChange("Service", "webService", None, "Bernoulli(0.0471)"),
        TtcChange("ExternalNetwork", "webService", "Bernoulli(0.0445)", "Bernoulli(0.0471)"),
        TtcChange("ExternalNetwork", "bypassFirewall", None, "Bernoulli(0.2)"),
    ]
    assert "        | bypassFirewall {A} [Bernoulli(0.2)]" in new_text.splitlines()
    path = tmp_path / "patched.mal"
    path.write_text(new_text, encoding="utf-8")
    steps = compile_file(path)
    assert steps[("Service", "webService")] == ttc_dict("Bernoulli(0.0471)")
    assert steps[("ExternalNetwork", "bypassFirewall")] == ttc_dict("Bernoulli(0.2)")
    # comments and strings that mention the steps are untouched
    assert new_text.count("[Bernoulli(0.0445)]") == 1
    assert "[Bernoulli(0.9)] in a block comment" in new_text


def test_patch_keeps_crlf_line_endings():
    crlf = LANG.replace("\n", "\r\n")
    new_text, _ = patch_mal(crlf, {"ExternalNetwork.webService": "Bernoulli(0.0471)"})
    assert new_text == crlf.replace("& webService [Bernoulli(0.0445)]", "& webService [Bernoulli(0.0471)]")
    assert new_text.count("\r\n") == crlf.count("\r\n")


def test_defense_refuses_a_time_factor_and_unknown_steps_are_refused():
    with pytest.raises(InputError, match="may only take Bernoulli"):
        patch_mal(LANG, {"executionPrevention": "Bernoulli(0.2)*Exponential(1)"})
    with pytest.raises(InputError, match="no attack step or defense named nosuch"):
        patch_mal(LANG, {"nosuch": "Bernoulli(0.2)"})
    assert patch_mal(LANG, {"nosuch": "Bernoulli(0.2)"}, missing="skip") == (LANG, [])


def test_format_changes_aligns_columns():
    text = format_changes(
        [
            TtcChange("ExternalNetwork", "webService", "Bernoulli(0.0445)", "Bernoulli(0.0471)"),
            TtcChange("Service", "webService", None, "Bernoulli(0.0471)"),
        ]
    )
    header, first, second = text.splitlines()
    column = header.index("new TTC")
    assert first.index("Bernoulli(0.0471)") == column == second.index("Bernoulli(0.0471)")
    assert "(none)" in second
    assert format_changes([]) == "no TTC changed"
