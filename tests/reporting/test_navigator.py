"""The catalogue's ATT&CK Navigator layers, loaded with a real client (mitreattack-python's ``navlayers``) and
checked against ``catalogue.csv`` and ``summary.json``."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math

import pytest
from mitreattack.navlayers import Layer

from attackprev.reporting.navigator import (
    SHIFT_LAYER,
    _pct,
    catalogue_layers,
    gradient_top,
    probability_layer,
    probability_score,
    shift_layer,
    shift_score,
)
from tests.conftest import ROOT

FOLDER = ROOT / "reports" / "techniques"
LAYERS = FOLDER / "layers"


def load_layer(path) -> dict:
    """The layer as navlayers reads it; navlayers prints, never raises, what it cannot load: nothing may print."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        layer = Layer()
        layer.from_file(str(path))
        data = layer.to_dict()
    assert out.getvalue() == "", f"{path.name}: {out.getvalue()}"
    assert data is not None, path.name
    return data


def catalogue_rows() -> list[dict]:
    with (FOLDER / "catalogue.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_scores_are_integers_a_navigator_client_keeps():
    assert probability_score(0.0263584) == 264 and probability_score(0.00004) == 0 and probability_score(1.0) == 10_000
    assert shift_score(0.0445, 0.0445) == 0 and shift_score(0.00445, 0.0445) == -100
    assert shift_score(4.45, 0.0445) == 200
    assert shift_score(0.0263584, 0.0445) == round(100 * math.log10(0.0263584 / 0.0445)) == -23


def test_scores_round_to_the_nearest_integer_and_fold_changes_are_log10():
    assert probability_score(0.5) == 5_000 and probability_score(0.0001) == 1 and probability_score(0.0) == 0
    assert probability_score(0.00005) == 0  # half a basis point rounds half to even
    assert shift_score(0.445, 0.0445) == 100  # ten times the published value
    assert shift_score(0.0445 / 10**0.5, 0.0445) == -50  # a factor √10 below it
    assert shift_score(0.0445 * 2, 0.0445) == 30  # log10(2) = 0.301


def test_percentages_in_the_comments_keep_three_figures():
    assert (_pct(0.0263584), _pct(1.0), _pct(0.5), _pct(1e-5)) == ("2.64 %", "100 %", "50 %", "0.001 %")


def test_gradient_top_covers_most_scores_with_a_round_number():
    assert gradient_top([]) == 100
    assert gradient_top([0] * 100) == 100
    assert gradient_top(list(range(0, 3000, 10))) == 5_000  # 95th percentile 2840
    assert gradient_top([10] * 95 + [9_000] * 5) == 100  # a few high scores saturate the top colour
    assert gradient_top([20_000]) == 10_000


SUMMARY = {
    "target": "fam_a",
    "counts": {"sources": 2, "families": 2},
    "record": {
        "data_sha256": "ab" * 32,
        "settings": {"seed": 7, "chains": 2, "draws": 100, "tune": 100},
        "versions": {"attackprev": "0.1.0"},
    },
    "diagnostics": {"passed": False, "problems": ["3 divergences"]},
}


def estimate(t, mean, low, high, target_data=True, published=None):
    return {
        "technique_id": t,
        "mean": mean,
        "hdi_94_low": low,
        "hdi_94_high": high,
        "target_data": target_data,
        "mal_expression": f"Bernoulli({mean:.4g})",
        "published_p": published,
        "enterpriselang_steps": "Asset.step" if published else "",
        "prob_above_published": 0.25 if published else None,
        "published_inside_hdi_94": (low <= published <= high) if published else None,
    }


def test_a_layer_states_each_techniques_value_interval_and_counts(tmp_path):
    rows = [estimate("T1102", 0.0263584, 0.0117588, 0.0429907), estimate("T1001", 0.5, 0.4, 0.6, target_data=False)]
    evidence = {"T1102": [{"source": "s1", "family": "fam_a", "k": 9, "n": 227}]}
    layer = probability_layer("fam_a", "fam_a (trials)", "people", rows, evidence, SUMMARY)
    path = tmp_path / "l.json"
    path.write_text(json.dumps(layer))
    loaded = {t["techniqueID"]: t for t in load_layer(path)["techniques"]}
    assert loaded["T1102"]["score"] == 264 and loaded["T1001"]["score"] == 5000
    c = loaded["T1102"]["comment"]
    assert "0.02636 (2.64 %; 94 % HDI 0.01176–0.04299) of people (fam_a scale)" in c and "s1 9/227" in c
    assert "No fam_a source reports it" in loaded["T1001"]["comment"]
    assert "No fam_a source" not in c
    assert {"name": "diagnostics", "value": "FAILED: 3 divergences"} in layer["metadata"]


def test_the_shift_layer_holds_mapped_techniques_only():
    rows = [estimate("T1102", 0.0263584, 0.0117588, 0.0429907, published=0.0445), estimate("T1001", 0.5, 0.4, 0.6)]
    layer = shift_layer(rows, SUMMARY)
    assert [t["techniqueID"] for t in layer["techniques"]] == ["T1102"]
    t = layer["techniques"][0]
    assert t["score"] == -23
    assert "Bernoulli(0.0445)" in t["comment"] and "0.592 times" in t["comment"] and "outside" in t["comment"]
    assert layer["gradient"]["minValue"] == -layer["gradient"]["maxValue"]


def test_layers_are_written_per_family_and_are_byte_identical_from_the_same_numbers():
    scales = {
        "fam_a": [estimate("T1102", 0.03, 0.01, 0.05, published=0.0445)],
        "fam_b": [estimate("T1102", 0.2, 0.1, 0.3)],
    }
    args = (scales, {"fam_a": "A", "fam_b": "B"}, {"fam_a": "a", "fam_b": "b"}, {}, SUMMARY)
    first = catalogue_layers(*args)
    assert sorted(first) == ["enterpriselang_shift.json", "fam_a.json", "fam_b.json"]
    assert first == catalogue_layers(*args)


def committed_layers() -> list:
    return sorted(LAYERS.glob("*.json"))


def test_every_committed_layer_loads_in_navlayers_as_navigator_4_5_for_attack_18():
    summary = json.loads((FOLDER / "summary.json").read_text())
    names = {p.stem for p in committed_layers()}
    assert names == {*summary["headline"]["by_family"], SHIFT_LAYER}
    for path in committed_layers():
        data = load_layer(path)
        assert data["versions"] == {"layer": "4.5", "attack": "18", "navigator": "5.1.0"}, path.name
        assert data["domain"] == "enterprise-attack" and data["techniques"], path.name
        assert all(isinstance(t["score"], int) for t in data["techniques"]), path.name
        g = data["gradient"]
        assert g["minValue"] < g["maxValue"] and len(data["legendItems"]) == len(g["colors"]), path.name


def test_the_target_layer_matches_catalogue_csv():
    summary = json.loads((FOLDER / "summary.json").read_text())
    rows = {r["technique_id"]: r for r in catalogue_rows()}
    layer = {t["techniqueID"]: t for t in load_layer(LAYERS / f"{summary['target']}.json")["techniques"]}
    assert set(layer) == set(rows)
    for t, r in rows.items():
        mean = float(r["mean"])
        assert layer[t]["score"] == round(mean * 10_000), t
        assert layer[t]["comment"].startswith(f"{mean:.4g} ("), t
        assert f"94 % HDI {float(r['hdi_94_low']):.4g}–{float(r['hdi_94_high']):.4g})" in layer[t]["comment"], t
        meta = {m["name"]: m["value"] for m in layer[t]["metadata"]}
        assert float(meta["mean"]) == pytest.approx(mean, rel=1e-5) and meta["MAL"] == r["mal_expression"], t


def test_every_family_layer_states_t1102_as_the_catalogue_summary_does():
    summary = json.loads((FOLDER / "summary.json").read_text())
    for family, s in summary["headline"]["by_family"].items():
        t = next(x for x in load_layer(LAYERS / f"{family}.json")["techniques"] if x["techniqueID"] == "T1102")
        assert t["score"] == round(s["mean"] * 10_000), family
        meta = {m["name"]: m["value"] for m in t["metadata"]}
        assert float(meta["mean"]) == pytest.approx(s["mean"], rel=1e-5), family
        low, high = (float(x) for x in meta["94 % HDI"].split("–"))
        assert (low, high) == pytest.approx(tuple(s["hdi_94"]), rel=1e-5), family
        assert "mtrends2020 9/227" in t["comment"] and "sok2019_windows_malware 47/951" in t["comment"]


def test_the_shift_layer_matches_catalogue_csv():
    rows = {r["technique_id"]: r for r in catalogue_rows() if r["published_p"]}
    layer = {t["techniqueID"]: t for t in load_layer(LAYERS / f"{SHIFT_LAYER}.json")["techniques"]}
    assert set(layer) == set(rows) and len(rows) > 40
    for t, r in rows.items():
        assert layer[t]["score"] == round(100 * math.log10(float(r["mean"]) / float(r["published_p"]))), t
        where = "inside" if r["published_inside_hdi_94"] == "True" else "outside"
        assert f"lies {where} the interval" in layer[t]["comment"], t
