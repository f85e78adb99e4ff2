"""Loading attack graphs into arrays, and splitting TTCs into a probability and a time sampler."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from attackprev.config import DATA_DIR
from attackprev.errors import InputError
from attackprev.simulation.graph import AND, DEFENSE, NODE_TYPES, build_graph, load_attack_graph, load_language
from attackprev.simulation.ttc import decompose_ttc

MAL = DATA_DIR / "mal"
CORELANG = MAL / "org.mal-lang.coreLang-1.0.0.mar"
SIMPLE = MAL / "simple_test_model.yml"


def fn(name, *args):
    return {"type": "function", "name": name, "arguments": [float(a) for a in args]}


def op(kind, lhs, rhs):
    return {"type": kind, "lhs": lhs, "rhs": rhs}


@pytest.fixture(scope="module")
def corelang():
    return load_attack_graph(CORELANG, SIMPLE)


# ----------------------------------------------------------------------------- loading
def test_corelang_graph_matches_maltoolbox(corelang):
    from maltoolbox.attackgraph import AttackGraph
    from maltoolbox.language import LanguageGraph
    from maltoolbox.model import Model

    lang = LanguageGraph.from_mar_archive(str(CORELANG))
    theirs = AttackGraph(lang, Model.load_from_file(str(SIMPLE), lang))
    assert len(corelang) == len(theirs.nodes) == 545
    for i, name in enumerate(corelang.names):
        node = theirs.get_node_by_full_name(name)
        assert NODE_TYPES[corelang.node_type[i]] == node.type
        assert corelang.is_and[i] == (node.type == "and")
        assert {corelang.names[p] for p in corelang.parents(i)} == {p.full_name for p in node.parents}
        assert corelang.ttc[i] == node.ttc
        assert corelang.existence[i] == bool(node.existence_status)
        assert corelang.language_steps[i] == node.lg_attack_step.full_name
    # children are the parents turned round
    kids = {(p, c) for c in range(len(corelang)) for p in corelang.parents(c)}
    assert kids == {
        (p, c)
        for p in range(len(corelang))
        for c in corelang.child_idx[corelang.child_ptr[p] : corelang.child_ptr[p + 1]]
    }
    assert corelang.is_and.sum() == 159 and (corelang.node_type == DEFENSE).sum() == 43


def test_corelang_probabilities_and_impossible_steps(corelang):
    p = corelang.probability
    # coreLang's named TTCs: VeryHardAndUncertain / HardAndUncertain carry a Bernoulli(0.5)
    uncertain = [
        i for i, t in enumerate(corelang.ttc) if t and t.get("name") in ("VeryHardAndUncertain", "HardAndUncertain")
    ]
    assert uncertain and np.all(p[uncertain] == 0.5)
    # the model sets Program 1's notPresent defense to 1.0: enabled, so the AND steps it guards are impossible
    notpresent = corelang.node("Program 1:notPresent")
    assert p[notpresent] == 1.0 == corelang.step_probability("Program 1:notPresent")
    guarded = [c for c in corelang.child_idx[corelang.child_ptr[notpresent] : corelang.child_ptr[notpresent + 1]]]
    assert guarded and all(corelang.impossible[c] for c in guarded if corelang.node_type[c] == AND)
    # a defense the model leaves alone is disabled by default; defenses are never compromised
    assert corelang.impossible[corelang.node_type == DEFENSE].all()
    assert not corelang.impossible[corelang.node("OS App:fullAccess")]


def test_graph_of_a_language_with_timed_steps(tmp_path):
    model = tmp_path / "net.yml"
    model.write_text(
        textwrap.dedent(
            """
            assets:
              0:
                associated_assets:
                  computers:
                    1: pc
                name: net
                type: Network
              1:
                associated_assets:
                  networks:
                    0: net
                name: pc
                type: Computer
            metadata:
              name: one network, one computer
            """
        )
    )
    g = load_attack_graph(MAL / "ttc_lang.mal", model)
    assert len(g) == 3 + 5  # Network: shutDown, easyAccess, hardAccess; Computer: shutDown and four steps
    assert {g.names[p] for p in g.parents(g.node("pc:easyConnect"))} == {"net:easyAccess", "net:hardAccess"}
    hard = g.steps[g.node("pc:hardConnect")]
    assert hard.probability == 1.0 and hard.time == fn("Exponential", 0.01)
    times = g.sample_times(np.random.default_rng(0), 20_000, [g.node("pc:hardConnect"), g.node("pc:easyConnect")])
    assert times.shape == (20_000, 2)
    assert times[:, 0].mean() == pytest.approx(100, rel=0.03) and np.all(times[:, 1] == 0)
    assert g.time_parts and g.time_group[g.node("pc:easyConnect")] == -1


def test_build_graph_rejects_bad_input():
    with pytest.raises(InputError, match="appears twice"):
        build_graph(["a", "a"], ["or", "or"], [])
    with pytest.raises(InputError, match="unknown node type 'maybe'"):
        build_graph(["a"], ["maybe"], [])
    with pytest.raises(InputError, match="unknown node 'b'"):
        build_graph(["a"], ["or"], [("b", "a")])


# ----------------------------------------------------------------------------- errors are one line
def _one_line(err: InputError) -> str:
    text = str(err)
    assert "\n" not in text
    return text


def test_missing_files_and_wrong_suffixes(tmp_path):
    with pytest.raises(InputError) as err:
        load_attack_graph(tmp_path / "nope.mar", SIMPLE)
    assert _one_line(err.value) == f"{tmp_path / 'nope.mar'}: language file not found"
    with pytest.raises(InputError) as err:
        load_attack_graph(CORELANG, tmp_path / "nope.yml")
    assert _one_line(err.value) == f"{tmp_path / 'nope.yml'}: model file not found"
    other = tmp_path / "lang.txt"
    other.write_text("x")
    with pytest.raises(InputError, match=r"lang\.txt: a MAL language must be a \.mal file or a \.mar archive"):
        load_language(other)


def test_a_language_that_does_not_compile(tmp_path):
    bad = tmp_path / "bad.mal"
    bad.write_text('#id: "x"\n#version: "0.0.1"\ncategory C { asset A { | step -> nowhere.x } }\n')
    with pytest.raises(InputError) as err:
        load_language(bad)
    text = _one_line(err.value)
    assert text.startswith(f"{bad}: cannot compile the MAL language: Field 'nowhere' not defined for asset 'A'")
    truncated = tmp_path / "truncated.mal"
    truncated.write_text('#id: "x"\n#version: "0.0.1"\ncategory C { asset A { | step [Bernoulli(0.5) ')
    with pytest.raises(InputError) as err:
        load_language(truncated)
    assert _one_line(err.value).startswith(f"{truncated}: cannot compile the MAL language: ")


def test_a_model_with_an_unknown_asset_type(tmp_path):
    model = tmp_path / "m.yml"
    model.write_text("assets:\n  0:\n    name: thing\n    type: NoSuchAsset\nmetadata:\n  name: m\n")
    with pytest.raises(InputError) as err:
        load_attack_graph(CORELANG, model)
    text = _one_line(err.value)
    assert text.startswith(f'{model}: cannot load the instance model: Asset type "NoSuchAsset" does not exist')


def test_an_unknown_step_name_suggests_close_ones(corelang):
    with pytest.raises(InputError) as err:
        corelang.node("OS App:fullAcess")
    text = _one_line(err.value)
    assert text.startswith(f"{SIMPLE}: no attack-graph node named 'OS App:fullAcess'")
    assert "'OS App:fullAccess'" in text


# ----------------------------------------------------------------------------- TTC decomposition
def test_named_and_lone_distributions():
    assert decompose_ttc(None).probability == 1.0 and decompose_ttc(None).time is None
    assert decompose_ttc(None, "defense").probability == 0.0  # a defense without a TTC is disabled
    assert decompose_ttc(fn("Bernoulli", 0.0445)) == decompose_ttc(fn("Bernoulli", 0.0445), "and")
    lone = decompose_ttc(fn("Bernoulli", 0.0445))
    assert lone.probability == 0.0445 and lone.time is None  # possible with p, then instant
    assert decompose_ttc(fn("HardAndUncertain")).probability == 0.5
    assert decompose_ttc(fn("HardAndUncertain")).time == fn("Exponential", 0.1)
    assert decompose_ttc(fn("EasyAndUncertain")).time is None
    assert decompose_ttc(fn("VeryHardAndCertain")) == decompose_ttc(fn("Exponential", 0.01))
    assert decompose_ttc(fn("Infinity")).probability == 0.0
    assert decompose_ttc(fn("Enabled"), "defense").probability == 1.0
    assert decompose_ttc(fn("Disabled"), "defense").probability == 0.0
    assert decompose_ttc(fn("Bernoulli", 0.2), "defense").probability == 0.2


def test_products_of_bernoullis_and_times():
    rng = np.random.default_rng(1)
    step = decompose_ttc(op("multiplication", fn("Bernoulli", 0.3), fn("Exponential", 2)))
    assert step.probability == 0.3 and step.time == fn("Exponential", 2)
    assert step.sample_times(rng, 40_000).mean() == pytest.approx(0.5, rel=0.03)
    # every Bernoulli factor counts, wherever it sits in the product (mal-simulator reads only one)
    nested = op("multiplication", op("multiplication", fn("Exponential", 1), fn("Bernoulli", 0.5)), fn("Gamma", 2, 3))
    step = decompose_ttc(nested)
    assert step.probability == 0.5
    assert step.sample_times(rng, 40_000).mean() == pytest.approx(1 * 6, rel=0.03)
    two = decompose_ttc(op("multiplication", fn("Bernoulli", 0.5), op("addition", fn("Bernoulli", 0.4), fn("Zero"))))
    assert two.probability == pytest.approx(0.2)
    assert np.all(two.sample_times(rng, 10) == 0)
    # a number stays a number; Zero multiplies to zero
    plus = decompose_ttc(
        op("addition", op("multiplication", fn("Bernoulli", 0.3), fn("Exponential", 2)), {"type": "number", "value": 3})
    )
    assert plus.probability == 0.3 and plus.sample_times(rng, 40_000).mean() == pytest.approx(3.5, rel=0.02)
    assert np.all(decompose_ttc(op("multiplication", fn("Zero"), fn("Exponential", 1))).sample_times(rng, 5) == 0)


def test_the_weird_ttc_language():
    lang = load_language(MAL / "weird_ttc_lang.mal")
    steps = {name: decompose_ttc(s.ttc, s.type) for name, s in lang.assets["Asset"].attack_steps.items()}
    rng = np.random.default_rng(2)
    n = 100_000

    def mean(name):
        return steps[name].sample_times(rng, n).mean()

    assert {k: v.probability for k, v in steps.items() if v.probability != 1.0} == {
        "easyAndUncertainStep": 0.5,
        "hardAndUncertainStep": 0.5,
        "veryHardAndUncertainStep": 0.5,
        "bernoulliStep": 0.5,
    }
    assert mean("instantStep") == 0 and mean("bernoulliStep") == 0
    assert mean("easyAndCertainStep") == pytest.approx(1.0, rel=0.02)
    assert mean("hardAndUncertainStep") == pytest.approx(10.0, rel=0.02)
    assert mean("selfMadeComboAddition") == pytest.approx(10 * 0.1 + 10, rel=0.02)
    assert mean("selfMadeComboMultiply") == pytest.approx(np.exp(1 + 0.1**2 / 2) * 0.1, rel=0.02)
    assert mean("selfMadeComboDivision") == pytest.approx(5.5 * np.exp(-1 + 0.1**2 / 2), rel=0.02)
    assert mean("selfMadeComboMultiplyUniform") == pytest.approx(2 * 5.5, rel=0.02)
    sub = steps["selfMadeComboSubtract"].sample_times(rng, n)  # Gamma(1, 0.1) - Binomial(10, 0.1): often < 0
    assert sub.min() == 0 and 0 < sub.mean() < 0.1


def test_forms_that_are_rejected():
    with pytest.raises(InputError, match="Bernoulli may only be a factor"):
        decompose_ttc(op("subtraction", fn("Exponential", 1), fn("Bernoulli", 0.5)))
    with pytest.raises(InputError, match="unknown TTC function 'Poisson'"):
        decompose_ttc(fn("Poisson", 1))
    with pytest.raises(InputError, match="Exponential takes 1 argument"):
        decompose_ttc(fn("Exponential", 1, 2))
    with pytest.raises(InputError, match="invalid argument"):
        decompose_ttc(fn("Bernoulli", 1.5))
    # Pareto and TruncatedNormal (which mal-simulator rejects) keep their probability but give no times
    pareto = decompose_ttc(op("multiplication", fn("Bernoulli", 0.4), fn("Pareto", 1, 2)))
    assert pareto.probability == 0.4 and not pareto.samplable
    with pytest.raises(InputError, match="cannot sample Pareto"):
        pareto.sample_times(np.random.default_rng(0), 3)
    g = build_graph(["a:x"], ["or"], [], ttc=[fn("TruncatedNormal", 1, 1)], source="m.yml")
    with pytest.raises(InputError, match=r"^m\.yml: step a:x: cannot sample TruncatedNormal"):
        g.sample_times(np.random.default_rng(0), 3)
    with pytest.raises(InputError, match=r"^g: TTC of a:x: unknown TTC function"):
        build_graph(["a:x"], ["or"], [], ttc=[fn("Nope")], source="g")
