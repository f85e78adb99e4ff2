"""Patching .mal files: only the intended TTCs change, and the result compiles with mal-toolbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from maltoolbox.language import LanguageGraph

from attackprev.errors import InputError
from attackprev.mal.dictionary import ttc_dict
from attackprev.mal.malfile import TtcChange, Unmatched, format_changes, format_unmatched, patch_mal
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
    new_text, changes, unmatched = patch_mal(
        LANG, {"webService": "Bernoulli(0.0471)", "bypassFirewall": "Bernoulli(0.2)"}
    )
    assert unmatched == []
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
    new_text = patch_mal(crlf, {"ExternalNetwork.webService": "Bernoulli(0.0471)"}).text
    assert new_text == crlf.replace("& webService [Bernoulli(0.0445)]", "& webService [Bernoulli(0.0471)]")
    assert new_text.count("\r\n") == crlf.count("\r\n")


def test_defense_refuses_a_time_factor_and_unknown_steps_are_refused():
    with pytest.raises(InputError, match="may only take Bernoulli"):
        patch_mal(LANG, {"executionPrevention": "Bernoulli(0.2)*Exponential(1)"})
    with pytest.raises(InputError, match=r"no mapped step is in the .mal text \(nosuch: no attack step or defense"):
        patch_mal(LANG, {"nosuch": "Bernoulli(0.2)"})
    assert patch_mal(LANG, {"nosuch": "Bernoulli(0.2)"}, missing="skip") == (
        LANG,
        [],
        [Unmatched("nosuch", "no attack step or defense named nosuch")],
    )


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


# --------------------------------------------------- enterpriseLang master: TTCs commented out

DATA = Path(__file__).parent / "data"
MASTER_STYLE = DATA / "master_style.mal"

NEW_TTCS = {
    "OS.instantStep": "Bernoulli(0.0471)",
    "OS.timedStep": "Exponential(0.2)*Bernoulli(0.0812)",
    "Windows.timestomp": "Bernoulli(0.05)",  # Windows and Linux extend OS, which has timestomp
    "Linux.timestomp": "Bernoulli(0.05)",
    "OS.hiddenFiles": "Exponential(1)*Bernoulli(0.02)",
    "OS.hardening": "Bernoulli(0.3)",
    "Windows.networkShareDiscovery": "Bernoulli(0.013)",
    "MacOS.networkShareDiscovery": "Bernoulli(0.013)",
    "OS.credentialDumping": "Bernoulli(0.09)",  # in no asset
    "Service.networkShareDiscovery": "Bernoulli(0.2)",  # no asset Service; the step is in two others
}


def test_commented_out_ttcs_are_restored_in_front_of_the_comment_and_compile(tmp_path):
    text = MASTER_STYLE.read_text(encoding="utf-8")
    new_text, changes, unmatched = patch_mal(text, NEW_TTCS)
    assert changes == [
        TtcChange("OS", "instantStep", "//(0.0445)]", "Bernoulli(0.0471)"),
        TtcChange("OS", "timedStep", "//[Bernoulli(0.0789)*Exponential(0.2)]", "Exponential(0.2)*Bernoulli(0.0812)"),
        TtcChange(
            "OS",
            "timestomp",
            "// [Bernoulli(0.0396)]",
            "Bernoulli(0.05)",
            "mapped to Windows.timestomp: Windows extends OS, which has timestomp; "
            "mapped to Linux.timestomp: Linux extends OS, which has timestomp",
        ),
        TtcChange("OS", "hiddenFiles", "//(0.0106)*Exponential(1)]", "Exponential(1)*Bernoulli(0.02)"),
        TtcChange("OS", "hardening", "//(0.22)]", "Bernoulli(0.3)"),
        TtcChange("Windows", "networkShareDiscovery", "//(0.0129)]", "Bernoulli(0.013)"),
        TtcChange("MacOS", "networkShareDiscovery", None, "Bernoulli(0.013)"),
    ]
    assert unmatched == [
        Unmatched("OS.credentialDumping", "no attack step or defense named credentialDumping"),
        Unmatched(
            "Service.networkShareDiscovery",
            "no asset Service, and networkShareDiscovery is in several other assets (Windows, MacOS)",
        ),
    ]
    # the new TTC goes after the name and tags, the old comment stays behind it; nothing else changes
    before, after = text.splitlines(), new_text.splitlines()
    assert len(after) == len(before)
    changed = {before[i].strip(): after[i].strip() for i in range(len(before)) if before[i] != after[i]}
    assert changed == {
        "& instantStep //(0.0445)]": "& instantStep [Bernoulli(0.0471)] //(0.0445)]",
        "| timedStep //[Bernoulli(0.0789)*Exponential(0.2)]": (
            "| timedStep [Exponential(0.2)*Bernoulli(0.0812)] //[Bernoulli(0.0789)*Exponential(0.2)]"
        ),
        "| timestomp {I} // [Bernoulli(0.0396)]": "| timestomp {I} [Bernoulli(0.05)] // [Bernoulli(0.0396)]",
        "& hiddenFiles @hidden //(0.0106)*Exponential(1)]": (
            "& hiddenFiles @hidden [Exponential(1)*Bernoulli(0.02)] //(0.0106)*Exponential(1)]"
        ),
        "# hardening //(0.22)]": "# hardening [Bernoulli(0.3)] //(0.22)]",
        "| networkShareDiscovery //(0.0129)]": "| networkShareDiscovery [Bernoulli(0.013)] //(0.0129)]",
        "| networkShareDiscovery": "| networkShareDiscovery [Bernoulli(0.013)]",
    }
    # a comment that is not a TTC is not taken for one
    assert (
        "| sharedFolders // reached through networkShareDiscovery"
        in after[before.index("        | sharedFolders // reached through networkShareDiscovery")]
    )

    path = tmp_path / "patched.mal"
    path.write_text(new_text, encoding="utf-8")
    steps = compile_file(path)
    for asset in ("OS", "Windows", "Linux", "MacOS"):  # inherited by every asset that extends OS
        assert steps[(asset, "instantStep")] == ttc_dict("Bernoulli(0.0471)")
        assert steps[(asset, "timedStep")] == ttc_dict("Exponential(0.2)*Bernoulli(0.0812)")
        assert steps[(asset, "timestomp")] == ttc_dict("Bernoulli(0.05)")
        assert steps[(asset, "hiddenFiles")] == ttc_dict("Exponential(1)*Bernoulli(0.02)")
        assert steps[(asset, "hardening")] == ttc_dict("Bernoulli(0.3)")
        assert steps[(asset, "bernoulliFirst")] == ttc_dict("Bernoulli(0.3)*Exponential(0.2)")  # not mapped
    assert steps[("Windows", "networkShareDiscovery")] == steps[("MacOS", "networkShareDiscovery")]
    assert steps[("Windows", "sharedFolders")] is None

    # patching the patched file again changes nothing more and keeps the comments
    again = patch_mal(new_text, NEW_TTCS)
    assert again.text == new_text
    assert [c.old for c in again.changes] == [c.new for c in again.changes]


def test_mapped_step_is_found_by_name_where_the_asset_lacks_it():
    text = MASTER_STYLE.read_text(encoding="utf-8")
    # Linux has no sharedFolders and OS (which it extends) neither: the only asset with one is Windows
    patched = patch_mal(text, {"Linux.sharedFolders": "Bernoulli(0.1)"})
    assert patched.changes == [
        TtcChange(
            "Windows",
            "sharedFolders",
            None,
            "Bernoulli(0.1)",
            "mapped to Linux.sharedFolders: only Windows has sharedFolders",
        )
    ]
    # OS has no networkShareDiscovery, but Windows and MacOS, which extend it, have: both are patched
    patched = patch_mal(text, {"OS.networkShareDiscovery": "Bernoulli(0.013)"})
    assert patched.changes == [
        TtcChange(
            "Windows",
            "networkShareDiscovery",
            "//(0.0129)]",
            "Bernoulli(0.013)",
            "mapped to OS.networkShareDiscovery: Windows extends OS",
        ),
        TtcChange(
            "MacOS",
            "networkShareDiscovery",
            None,
            "Bernoulli(0.013)",
            "mapped to OS.networkShareDiscovery: MacOS extends OS",
        ),
    ]
    # an exact key wins over a key that would fall back to the same step
    patched = patch_mal(text, {"OS.timestomp": "Bernoulli(0.05)", "Windows.timestomp": "Bernoulli(0.07)"})
    assert [(c.asset, c.step, c.new) for c in patched.changes] == [("OS", "timestomp", "Bernoulli(0.05)")]
    assert patched.unmatched == [
        Unmatched("Windows.timestomp", "OS has timestomp, but OS.timestomp already patches it")
    ]
    # two keys that fall back to one step with different values: neither is patched
    patched = patch_mal(
        text, {"Windows.timestomp": "Bernoulli(0.05)", "Linux.timestomp": "Bernoulli(0.07)"}, missing="skip"
    )
    assert patched.changes == []
    reason = "Windows.timestomp, Linux.timestomp would all patch OS.timestomp, with different values"
    assert patched.unmatched == [Unmatched("Windows.timestomp", reason), Unmatched("Linux.timestomp", reason)]


def test_missing_steps_fail_only_when_none_matches_unless_strict():
    text = MASTER_STYLE.read_text(encoding="utf-8")
    some = {"OS.instantStep": "Bernoulli(0.0471)", "OS.credentialDumping": "Bernoulli(0.09)"}
    assert len(patch_mal(text, some).changes) == 1
    with pytest.raises(InputError, match=r"1 of 2 mapped steps are not in the .mal text \(OS.credentialDumping: no"):
        patch_mal(text, some, missing="error")
    none = {"OS.credentialDumping": "Bernoulli(0.09)", "Windows.scripting": "Bernoulli(0.38)"}
    with pytest.raises(InputError, match=r"no mapped step is in the .mal text \(OS.credentialDumping: .*; Windows"):
        patch_mal(text, none)
    assert patch_mal(text, none, missing="skip").text == text


def test_format_changes_and_unmatched_show_notes_and_techniques():
    text = format_changes([TtcChange("OS", "timestomp", "// [Bernoulli(0.0396)]", "Bernoulli(0.05)", "mapped to X")])
    assert text.splitlines()[1].endswith("// [Bernoulli(0.0396)]  Bernoulli(0.05)  (mapped to X)")
    listing = format_unmatched(
        [Unmatched("OS.credentialDumping", "no attack step or defense named credentialDumping", "T1003")]
    )
    assert listing.splitlines() == [
        "not patched (1 mapped step(s) not found in the .mal file):",
        "  T1003 OS.credentialDumping: no attack step or defense named credentialDumping",
    ]
    assert format_unmatched([]) == ""
