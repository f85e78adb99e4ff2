"""TTC expressions: parsing, checking and writing, compiled with the real mal-toolbox."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from maltoolbox.language import LanguageGraph

from attackprev.errors import InputError
from attackprev.mal.dictionary import ttc_dict
from attackprev.mal.expressions import (
    MALSIM_REJECTED,
    format_probability,
    malsim_problems,
    malsim_time_factor,
    parse_ttc,
    ttc_expression,
)

HEADER = '#id: "org.attackprev.test"\n#version: "0.0.1"\n\n'


def compile_steps(tmp_path: Path, body: str, name: str = "check.mal") -> dict:
    """Compile ``body`` as the content of one asset ``A``; return its steps' TTC dicts."""
    spec = HEADER + "category C {\n    asset A {\n" + body + "\n    }\n}\n"
    path = tmp_path / name
    path.write_text(spec, encoding="utf-8")
    graph = LanguageGraph.from_mal_spec(str(path))
    return {n: s.ttc for n, s in graph.assets["A"].attack_steps.items()}


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "bernoulli", "time_factor"),
    [
        ("Bernoulli(0.0445)", 0.0445, None),
        ("Bernoulli(0.0789)*Exponential(106.67)", 0.0789, "Exponential(106.67)"),
        ("Exponential(1440)", None, "Exponential(1440)"),
        ("Bernoulli(0.5) * Exponential(2)*Gamma(1,2)", 0.5, "Exponential(2)*Gamma(1,2)"),
        ("Exponential(2)*Bernoulli(0.3)", 0.3, "Exponential(2)"),
        ("Exponential(2) * Gamma(1,2)*Bernoulli(0.3)", 0.3, "Exponential(2) * Gamma(1,2)"),
        ("Exponential(2)*Bernoulli(0.3)*Gamma(1,2)", 0.3, "Exponential(2)*Gamma(1,2)"),
        ("(Uniform(8,30)+Exponential(2))*Bernoulli(0.7)", 0.7, "(Uniform(8,30)+Exponential(2))"),
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


def test_expression_keeps_the_published_time_factor_and_writes_it_first():
    assert ttc_expression(0.0471) == "Bernoulli(0.0471)"
    assert ttc_expression(0.0812, "Exponential(106.67)") == "Exponential(106.67)*Bernoulli(0.0812)"
    # a compound factor is parenthesised so that it stays one factor
    assert ttc_expression(0.5, "Uniform(8,30)+Exponential(2)") == "(Uniform(8,30)+Exponential(2))*Bernoulli(0.5)"
    assert ttc_expression(0.5, "(Uniform(8,30)+Exponential(2))") == "(Uniform(8,30)+Exponential(2))*Bernoulli(0.5)"
    # what is written parses back to the same p and time factor
    for factor in ("Exponential(106.67)", "Gamma(1,2)", "Uniform(8,30)+Exponential(2)"):
        parsed = parse_ttc(ttc_expression(0.0812, factor))
        assert parsed.bernoulli == 0.0812
        assert parsed.time_factor in (factor, f"({factor})")


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


# ------------------------------------------------------------------------ mal-simulator


@pytest.mark.parametrize(
    "text",
    [
        "Bernoulli(0.0471)",
        "Exponential(106.67)*Bernoulli(0.0812)",
        "Gamma(2,3)*Bernoulli(0.5)",
        "Exponential(0.2)",
        "HardAndUncertain",
        "Enabled",
        "Uniform(1,2)+Exponential(2)",  # right-nested chains are read whole
    ],
)
def test_malsim_reads_these_as_intended(text):
    assert malsim_problems(text) == []


@pytest.mark.parametrize(
    ("text", "fatal", "phrase"),
    [
        ("TruncatedNormal(26.82,15.913)", True, "rejects TruncatedNormal (TruncatedNormal(26.82,15.913))"),
        ("Pareto(1,2)*Bernoulli(0.3)", True, "rejects Pareto"),
        ("Zero", True, "rejects Zero"),
        ("Exponential(1)*Infinity", True, "rejects Infinity"),
        ("Exponential(2)*3", True, "bare number 3"),
        ("Bernoulli(0.3)*Exponential(0.1)", False, "effort-based mode reads only the left factor"),
        ("(Uniform(8,30)+Exponential(2))*Bernoulli(0.5)", False, "drops part of"),
        ("HardAndCertain*Bernoulli(0.5)", False, "changes its shared HardAndCertain"),
    ],
)
def test_malsim_problems_name_the_distribution_or_shape(text, fatal, phrase):
    problems = malsim_problems(text)
    assert problems and problems[0].fatal is fatal
    assert phrase in problems[0].message


def test_malsim_problems_agree_with_mal_simulator():
    """Fatal problems are exactly the expressions TTCDist.from_dict refuses; the shapes it misreads lose a factor."""
    from malsim.mal_simulator.ttc_utils import TTCDist

    for name in MALSIM_REJECTED:
        text = {"Pareto": "Pareto(1,2)", "TruncatedNormal": "TruncatedNormal(2,1)"}.get(name, name)
        assert malsim_problems(text)[0].fatal
        with pytest.raises((ValueError, KeyError)):
            TTCDist.from_dict(ttc_dict(text))
    with pytest.raises(KeyError):
        TTCDist.from_dict(ttc_dict("Exponential(2)*3"))
    # a compound left operand: mal-simulator keeps Uniform*Bernoulli and drops the Exponential
    kept = TTCDist.from_dict(ttc_dict("(Uniform(8,30)+Exponential(2))*Bernoulli(0.5)")).to_dict()
    assert "Exponential" not in str(kept)
    # the time factor first: read whole
    whole = TTCDist.from_dict(ttc_dict("Exponential(2)*Bernoulli(0.5)"))
    assert whole.to_dict() == ttc_dict("Exponential(2)*Bernoulli(0.5)")


def test_malsim_time_factor_writes_named_constants_out():
    assert malsim_time_factor("HardAndCertain") == (
        "Exponential(0.1)",
        "time factor HardAndCertain written as Exponential(0.1), its definition, for mal-simulator "
        "(which would change its shared constant for every step)",
    )
    assert malsim_time_factor("Exponential(3.25)") == ("Exponential(3.25)", None)
    assert malsim_time_factor(None) == (None, None)
    expression = ttc_expression(0.2, malsim_time_factor("VeryHardAndCertain")[0])
    assert expression == "Exponential(0.01)*Bernoulli(0.2)" and malsim_problems(expression) == []
