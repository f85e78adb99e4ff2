"""The dictionary form of TTC expressions: the built-in translation equals what mal-toolbox compiles."""

from __future__ import annotations

from attackprev.mal.dictionary import ttc_dict, ttc_dicts

EXPRESSIONS = [
    "Bernoulli(0.0471)",
    "Bernoulli(0.0789)*Exponential(106.67)",
    "Exponential(106.67)*Bernoulli(0.0789)",
    "(Uniform(8,30)+Exponential(2))*Bernoulli(0.5)",
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
