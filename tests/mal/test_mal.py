"""MAL output checked with the real MAL tools: mal-toolbox compiles, mal-simulator samples."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from malsim.mal_simulator.ttc_utils import DistFunction, TTCDist
from maltoolbox.language import LanguageGraph

from attackprev.errors import InputError
from attackprev.mal import core as mal
from attackprev.mal.core import (
    TtcChange,
    estimates_from_catalogue,
    export_mal,
    format_changes,
    format_probability,
    load_steps,
    parse_ttc,
    patch_mal,
    ttc_dict,
    ttc_dicts,
    ttc_expression,
)

HEADER = '#id: "org.attackprev.test"\n#version: "0.0.1"\n\n'

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


def write_summary(reports: Path, technique_id: str, p, hdi=(0.03, 0.07)) -> Path:
    """A minimal ``reports/<id>/summary.json`` as the model writes it."""
    folder = reports / technique_id.lower()
    folder.mkdir(parents=True, exist_ok=True)
    summary = {
        "technique_id": technique_id,
        "prevalence": {"mean": 0.047, "sd": 0.01, "median": 0.046, "hdi_94": list(hdi)},
        "mal": {"expression": "Bernoulli(...)", "p": p, "model": "test"},
        "ttc": {"kind": "degenerate", "value_days": 0},
    }
    path = folder / "summary.json"
    path.write_text(json.dumps(summary), encoding="utf-8")
    return path


def compile_steps(tmp_path: Path, body: str, name: str = "check.mal") -> dict:
    """Compile ``body`` as the content of one asset ``A``; return its steps' TTC dicts."""
    spec = HEADER + "category C {\n    asset A {\n" + body + "\n    }\n}\n"
    path = tmp_path / name
    path.write_text(spec, encoding="utf-8")
    graph = LanguageGraph.from_mal_spec(str(path))
    return {n: s.ttc for n, s in graph.assets["A"].attack_steps.items()}


def compile_file(path: Path) -> dict[tuple[str, str], dict | None]:
    graph = LanguageGraph.from_mal_spec(str(path))
    return {(asset.name, step): s.ttc for asset in graph.assets.values() for step, s in asset.attack_steps.items()}


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    write_summary(folder, "T1102", 0.0471)
    (folder / "techniques").mkdir()  # a folder without summary.json is skipped
    return folder


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "bernoulli", "time_factor"),
    [
        ("Bernoulli(0.0445)", 0.0445, None),
        ("Bernoulli(0.0789)*Exponential(106.67)", 0.0789, "Exponential(106.67)"),
        ("Exponential(1440)", None, "Exponential(1440)"),
        ("Bernoulli(0.5) * Exponential(2)*Gamma(1,2)", 0.5, "Exponential(2)*Gamma(1,2)"),
        ("Exponential(2)*Bernoulli(0.3)", 0.3, "Exponential(2)"),
        (
            "Bernoulli(0.7)*(Uniform(8,30)+TruncatedNormal(0.042,0.021))",
            0.7,
            "(Uniform(8,30)+TruncatedNormal(0.042,0.021))",
        ),
    ],
)
def test_parse_splits_bernoulli_from_the_verbatim_time_factor(text, bernoulli, time_factor):
    parsed = parse_ttc(text)
    assert parsed.bernoulli == bernoulli
    assert parsed.time_factor == time_factor


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Bernoulli(1e-5)", "exponent notation"),
        ("Bernoulli(1.5)", "[0, 1]"),
        ("Exponential(inf)", "finite"),
        ("Exponential(nan)", "finite"),
        ("Exponential(0)", "> 0"),
        ("Exponential(-1)", "> 0"),
        ("Bernoulli(0.1)*Bernoulli(0.2)", "more than one Bernoulli"),
        ("Exponentail(2)", "unknown distribution"),
        ("Bernoulli(0.1", "expected ')'"),
    ],
)
def test_invalid_expressions_are_refused(text, problem):
    with pytest.raises(InputError) as err:
        parse_ttc(text)
    assert problem in str(err.value)


# -------------------------------------------------------------------------- expressions


def test_expression_keeps_the_published_time_factor():
    assert ttc_expression(0.0471) == "Bernoulli(0.0471)"
    assert ttc_expression(0.0812, "Exponential(106.67)") == "Bernoulli(0.0812)*Exponential(106.67)"
    # a compound factor is parenthesised so that it stays one factor
    assert ttc_expression(0.5, "Uniform(8,30)+Exponential(2)") == ("Bernoulli(0.5)*(Uniform(8,30)+Exponential(2))")


@pytest.mark.parametrize("p", [-0.1, 1.5, math.nan, math.inf, "0.1", True])
def test_invalid_probability_is_refused(p):
    with pytest.raises(InputError, match=r"p must be"):
        ttc_expression(p)


@pytest.mark.parametrize("factor", ["Exponential(inf)", "Exponential(nan)", "Exponential(0)", "Exponential(-2)"])
def test_non_finite_or_non_positive_rate_is_refused(factor):
    with pytest.raises(InputError, match=r"Exponential rate must be"):
        ttc_expression(0.1, factor)


def test_time_factor_with_its_own_bernoulli_is_refused():
    with pytest.raises(InputError, match="contains a Bernoulli"):
        ttc_expression(0.1, "HardAndUncertain")


@pytest.mark.parametrize("p", [1e-9, 0.00049, 0.99996, 0.999999999, 0.123456789])
def test_probability_never_rounds_to_0_or_1_and_compiles_exactly(p, tmp_path):
    text = format_probability(p)
    assert "e" not in text.lower()
    assert 0.0 < float(text) < 1.0
    assert abs(float(text) - p) <= 5e-4 * p  # four significant digits (or more)
    # mal-toolbox reads positional numbers exactly (it reads "1e-5" as 1.0)
    ttc = compile_steps(tmp_path, f"        | s [Bernoulli({text})]")["s"]
    assert ttc == {"type": "function", "name": "Bernoulli", "arguments": [float(text)]}


EXPRESSIONS = [
    "Bernoulli(0.0471)",
    "Bernoulli(0.0789)*Exponential(106.67)",
    "Exponential(1440)",
    "Bernoulli(0.5)*(Uniform(8,30)+TruncatedNormal(0.042,0.021))",
    "Exponential(1)-Exponential(2)-Exponential(3)",
    "Exponential(1)^Exponential(2)^Exponential(3)",
    "Bernoulli(0.5)*Exponential(2)/Gamma(1,2)",
    "HardAndUncertain",
    "Exponential(2)*3",
]


def test_builtin_dict_form_equals_what_maltoolbox_compiles():
    assert ttc_dicts(EXPRESSIONS, "builtin") == ttc_dicts(EXPRESSIONS, "maltoolbox")


def test_dict_shapes():
    assert ttc_dict("Bernoulli(0.0471)") == {
        "type": "function",
        "name": "Bernoulli",
        "arguments": [0.0471],
    }
    assert ttc_dict("Bernoulli(0.0789)*Exponential(106.67)") == {
        "type": "multiplication",
        "lhs": {"type": "function", "name": "Bernoulli", "arguments": [0.0789]},
        "rhs": {"type": "function", "name": "Exponential", "arguments": [106.67]},
    }


# ------------------------------------------------------------------------ export, T1102


def test_t1102_fragment_compiles_and_malsim_samples_p(reports, tmp_path):
    result = export_mal(reports)
    assert list(result.json) == ["T1102"]
    entry = result.json["T1102"]
    assert entry["attack_step"] == "webService"
    assert entry["expression"] == "Bernoulli(0.0471)"
    assert "| webService [Bernoulli(0.0471)]" in result.fragment.splitlines()
    assert "94% HDI 0.03 to 0.07" in result.fragment
    assert "reports/t1102/summary.json" in result.fragment

    body = "\n".join("        " + line for line in result.fragment.splitlines())
    compiled = compile_steps(tmp_path, body)
    expected = {"type": "function", "name": "Bernoulli", "arguments": [0.0471]}
    assert compiled["webService"] == expected
    assert entry["ttc"] == expected

    dist = TTCDist.from_dict(compiled["webService"])
    rng = np.random.default_rng(20240611)  # attempt_bernoulli takes a numpy Generator
    n, p = 100_000, 0.0471
    hits = sum(dist.attempt_bernoulli(rng) for _ in range(n))
    assert abs(hits / n - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_product_ttc_keeps_its_exponential(tmp_path):
    reports = tmp_path / "reports"
    write_summary(reports, "T1219", 0.0812)
    entry = export_mal(reports).json["T1219"]
    assert entry["expression"] == "Bernoulli(0.0812)*Exponential(106.67)"
    assert entry["ttc"]["rhs"] == {"type": "function", "name": "Exponential", "arguments": [106.67]}
    dist = TTCDist.from_dict(entry["ttc"])
    assert dist.function is DistFunction.BERNOULLI and dist.args == [0.0812]
    assert dist.combine_with.function is DistFunction.EXPONENTIAL
    assert dist.combine_with.args == [106.67]


def test_published_ttc_without_bernoulli_gets_one_in_front(tmp_path):
    reports = tmp_path / "reports"
    write_summary(reports, "T1055.012", 0.0123)  # published "Exponential(1440) (...)"
    write_summary(reports, "T1032", 0.2)  # published TruncatedNormal(26.82,15.913)
    table = export_mal(reports).json
    assert table["T1055.012"]["expression"] == "Bernoulli(0.0123)*Exponential(1440)"
    assert "no Bernoulli factor" in table["T1055.012"]["remark"]
    assert table["T1032"]["expression"] == "Bernoulli(0.2)"
    assert "probability in percent" in table["T1032"]["remark"]


def test_catalogue_gives_the_same_export_as_the_summaries(reports, tmp_path):
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("technique_id,p,hdi_94_low,hdi_94_high\nT1102,0.0471,0.03,0.07\n")
    assert estimates_from_catalogue(catalogue)[0].p == 0.0471
    from_catalogue = export_mal(reports, catalogue=catalogue)
    from_reports = export_mal(reports)
    assert from_catalogue.json["T1102"]["expression"] == from_reports.json["T1102"]["expression"]


def test_unmapped_technique_is_refused(tmp_path):
    reports = tmp_path / "reports"
    write_summary(reports, "T9999", 0.1)
    with pytest.raises(InputError, match="T9999 has no enterpriseLang step"):
        export_mal(reports)


def test_step_table_covers_t1102():
    steps = load_steps()
    assert len(steps) == 53
    t1102 = steps["T1102"]
    assert (t1102.attack_step, t1102.assets, t1102.published_ttc) == (
        "webService",
        ("ExternalNetwork",),
        "Bernoulli(0.0445)",
    )
    assert steps["T1099"].assets == ("Windows", "Linux")


# ------------------------------------------------------------------------------ patching


def test_patch_changes_exactly_the_intended_lines(tmp_path):
    reports = tmp_path / "reports"
    write_summary(reports, "T1102", 0.0471)
    write_summary(reports, "T1219", 0.0812)
    lang = tmp_path / "lang.mal"
    lang.write_text(LANG, encoding="utf-8")

    result = export_mal(reports, patch=lang)
    patched = tmp_path / "lang.patched.mal"
    assert result.written == [patched]
    assert lang.read_text(encoding="utf-8") == LANG

    before = LANG.splitlines()
    after = patched.read_text(encoding="utf-8").splitlines()
    assert len(after) == len(before)
    changed = {i: after[i] for i in range(len(before)) if before[i] != after[i]}
    assert changed == {
        before.index("        | remoteAccessSoftware [Bernoulli(0.0789)*Exponential(106.67)]"): (
            "        | remoteAccessSoftware [Bernoulli(0.0812)*Exponential(106.67)]"
        ),
        before.index("        & webService [Bernoulli(0.0445)]"): ("        & webService [Bernoulli(0.0471)]"),
    }
    assert result.changes == [
        TtcChange(
            "Service",
            "remoteAccessSoftware",
            "Bernoulli(0.0789)*Exponential(106.67)",
            "Bernoulli(0.0812)*Exponential(106.67)",
        ),
        TtcChange("ExternalNetwork", "webService", "Bernoulli(0.0445)", "Bernoulli(0.0471)"),
    ]

    steps = compile_file(patched)
    assert steps[("ExternalNetwork", "webService")] == ttc_dict("Bernoulli(0.0471)")
    assert steps[("Service", "remoteAccessSoftware")]["rhs"]["arguments"] == [106.67]
    assert steps[("Service", "webService")] is None  # same name, other asset: untouched
    assert steps[("Service", "executionPrevention")] == ttc_dict("Bernoulli(0.3)")


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


@pytest.mark.parametrize("p", [-0.1, 1.5, math.nan])
def test_invalid_report_writes_nothing(p, tmp_path):
    reports = tmp_path / "reports"
    write_summary(reports, "T1102", p)
    lang = tmp_path / "lang.mal"
    lang.write_text(LANG, encoding="utf-8")
    with pytest.raises(InputError, match="p must be"):
        export_mal(reports, patch=lang, fragment_dir=tmp_path / "fragment")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["lang.mal", "reports"]


def test_non_finite_published_rate_writes_nothing(tmp_path):
    reports = tmp_path / "reports"
    write_summary(reports, "T1102", 0.0471)
    steps = tmp_path / "steps.csv"
    steps.write_text(
        "technique_id,attack_step,asset,published_ttc,source\n"
        "T1102,webService,ExternalNetwork,Bernoulli(0.0445)*Exponential(inf),test\n"
    )
    lang = tmp_path / "lang.mal"
    lang.write_text(LANG, encoding="utf-8")
    with pytest.raises(InputError, match="finite") as err:
        export_mal(reports, steps_csv=steps, patch=lang)
    assert str(err.value).startswith(f"{steps}:2: ")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["lang.mal", "reports", "steps.csv"]


def test_in_place_patch_is_atomic(tmp_path, monkeypatch):
    reports = tmp_path / "reports"
    write_summary(reports, "T1102", 1.5)
    lang = tmp_path / "lang.mal"
    lang.write_text(LANG, encoding="utf-8")

    with pytest.raises(InputError):  # invalid value: refused before writing
        export_mal(reports, patch=lang, in_place=True)
    assert lang.read_text(encoding="utf-8") == LANG

    write_summary(reports, "T1102", 0.0471)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(mal.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):  # failure while writing
        export_mal(reports, patch=lang, in_place=True)
    assert lang.read_text(encoding="utf-8") == LANG
    assert sorted(x.name for x in tmp_path.iterdir()) == ["lang.mal", "reports"]

    monkeypatch.undo()
    result = export_mal(reports, patch=lang, in_place=True)
    assert result.written == [lang]
    assert lang.read_text(encoding="utf-8") == LANG.replace(
        "& webService [Bernoulli(0.0445)]", "& webService [Bernoulli(0.0471)]"
    )
    assert sorted(x.name for x in tmp_path.iterdir()) == ["lang.mal", "reports"]


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
