"""The model comparison: folds, paired scores, the choice rule, the runner-up's values, and a small run end to end."""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from attackprev.evidence.counts import CountTable, load_counts
from attackprev.inference.diagnostics import Diagnostics
from attackprev.inference.synthesis import SynthesisSettings
from attackprev.validation import comparison
from attackprev.validation.comparison import (
    MATERIAL_RATIO,
    choose,
    fold_rows,
    paired,
    runner_up_values,
    target_techniques,
    technique_folds,
    values_csv,
)
from attackprev.validation.sources import HeldOut


@pytest.fixture(scope="module")
def table() -> CountTable:
    return load_counts()


def test_folds_are_deterministic_disjoint_and_cover_the_target_techniques(table):
    folds = technique_folds(table)
    assert folds == technique_folds(table)  # seeded
    assert technique_folds(table, seed=1) != folds
    every = [t for fold in folds for t in fold]
    assert len(every) == len(set(every))  # disjoint
    assert set(every) == set(target_techniques(table)) and len(every) == 373
    assert len(folds) == 5 and max(map(len, folds)) - min(map(len, folds)) <= 1


def test_a_fold_holds_out_only_the_target_rows_of_its_techniques(table):
    fold = technique_folds(table)[0]
    rows = fold_rows(table, fold)
    want = {(c.technique_id, c.source_id) for c in table.counts if c.family == "mtrends" and c.technique_id in fold}
    assert rows == want
    assert all(table.sources[s].family == "mtrends" for _, s in rows)


def _rows(scores: list[float], source: str = "s") -> list[HeldOut]:
    return [HeldOut(source, f"T{1000 + i}", 1, 10, 0.5, x, 0.1) for i, x in enumerate(scores)]


def test_paired_difference_and_its_standard_error():
    head, other = [-3.0, -2.0, -4.0, -1.0], [-2.5, -2.5, -3.0, -1.0]
    p = paired(_rows(other), _rows(head))
    diff = np.subtract(other, head)
    assert p.count == 4 and math.isclose(p.total, sum(other)) and math.isclose(p.difference, diff.sum())
    assert math.isclose(p.difference_se, np.std(diff, ddof=1) * 2.0)
    with pytest.raises(ValueError, match="same counts"):
        paired(_rows(other[:3]), _rows(head))


def _held(scores: dict[str, list[float]]) -> dict:
    return {check: {m: _rows(x, check) for m, x in scores.items()} for check in ("loso", "kfold")}


def test_headline_kept_unless_beaten_by_more_than_two_standard_errors():
    rng = np.random.default_rng(0)
    base = list(rng.normal(-3, 1, 200))
    noisy = [x + 0.03 + 0.5 * (-1) ** i for i, x in enumerate(base)]  # better by 0.03 a count, sd 0.5: within noise
    clear = [x + 0.3 for x in base]  # better on every count
    choice, runner_up, totals = choose(_held({"synthesis": base, "exchangeable": noisy}))
    assert totals["exchangeable"].total > totals["synthesis"].total
    assert (choice, runner_up) == ("synthesis", "exchangeable")
    choice, runner_up, totals = choose(_held({"synthesis": base, "exchangeable": noisy, "offsets_only": clear}))
    assert (choice, runner_up) == ("offsets_only", "exchangeable")
    assert totals["offsets_only"].count == 400  # both checks' counts, kept apart
    worse = [x - 1 for x in base]
    assert choose(_held({"synthesis": base, "offsets_only": worse}))[:2] == ("synthesis", "offsets_only")


def test_runner_up_values_flag_material_differences():
    rng = np.random.default_rng(2)
    head = np.column_stack([rng.normal(0.10, 0.01, 4000), rng.normal(0.010, 0.004, 4000), rng.normal(0.3, 0.2, 4000)])
    head = np.clip(head, 1e-4, 1)
    run = np.column_stack([head[:, 0] + 0.05, head[:, 1] * 1.2, head[:, 2] * 1.6])
    rows = runner_up_values(head, run, ["T1", "T2", "T3"], {"T1"})
    by = {r["technique_id"]: r for r in rows}
    assert by["T1"]["outside_hdi"] and by["T1"]["differs"] and by["T1"]["target_reports"]  # outside the HDI
    assert not by["T2"]["outside_hdi"] and not by["T2"]["differs"]  # 20 % higher, within the HDI
    assert not by["T3"]["outside_hdi"] and by["T3"]["differs"]  # within a wide HDI but 1.6× > MATERIAL_RATIO
    assert math.isclose(by["T3"]["ratio"], 1.6, rel_tol=1e-9) and MATERIAL_RATIO < 1.6
    text = values_csv(rows, "synthesis", "exchangeable")
    parsed = list(csv.DictReader(text.splitlines()))
    assert [r["technique_id"] for r in parsed] == ["T1", "T2", "T3"]
    assert parsed[0]["headline_model"] == "synthesis" and parsed[0]["runner_up_model"] == "exchangeable"
    assert {"headline_mean", "headline_hdi_low", "runner_up_mean", "differs"} <= set(parsed[0])


def _subset(table: CountTable, n_target: int = 14, n_other: int = 10) -> CountTable:
    """A few dozen techniques of the real table: some M-Trends reports, some it does not."""
    reported = target_techniques(table)
    every = sorted({c.technique_id for c in table.counts})
    chosen = set(reported[::25][:n_target]) | set([t for t in every if t not in reported][::30][:n_other])
    counts = tuple(c for c in table.counts if c.technique_id in chosen)
    digest = hashlib.sha256((table.digest + ",".join(sorted(chosen))).encode()).hexdigest()
    return replace(table, counts=counts, digest=digest)


@pytest.mark.slow
def test_small_comparison_end_to_end(table, tmp_path):
    small = _subset(table)
    quick = SynthesisSettings(draws=150, tune=200, chains=2, seed=3)
    args = {"models": ["exchangeable"], "loso_sources": ["mtrends2024"], "k": 2, "settings": quick}
    result = comparison.run_comparison(small, **args, full_settings=quick, store=tmp_path / "store")
    assert result.models == ["synthesis", "exchangeable"]
    n_kfold = sum(1 for c in small.counts if c.family == "mtrends")
    n_loso = sum(1 for c in small.counts if c.source_id == "mtrends2024")
    for m in result.models:
        assert len(result.held_out["kfold"][m]) == n_kfold and len(result.held_out["loso"][m]) == n_loso
        assert all(math.isfinite(r.log_score) and 0 <= r.pit <= 1 for c in result.held_out.values() for r in c[m])
    assert len(result.refits) == 2 * 3 and set(result.full_fits) == {"synthesis", "exchangeable"}
    assert {result.choice, result.runner_up} == {"synthesis", "exchangeable"}
    assert len(result.values) == len({c.technique_id for c in small.counts})
    md, values = comparison.write_outputs(result, tmp_path)
    text = md.read_text()
    assert "## Model choice" in text and "**Choice: `" in text and "differ materially" in text
    assert len(list(csv.DictReader(values.read_text().splitlines()))) == len(result.values)
    # a second run with the same store refits nothing and gives the same figures
    again = comparison.run_comparison(small, **args, full_settings=quick, store=tmp_path / "store")
    assert again.held_out == result.held_out and again.values == result.values and again.refits == result.refits


def test_a_saved_refit_is_reused_not_refitted(table, tmp_path):
    rows = _rows([-1.0, -2.5])
    diag = Diagnostics(0, 1.004, 512.0, 480.0, 2, 400, [])
    calls = []

    def fit():
        calls.append(1)
        return rows, SimpleNamespace(diagnostics=diag, seconds={"compile": 1.0, "sample": 2.0})

    settings = SynthesisSettings(draws=400, tune=400, chains=2)
    first = comparison._run_unit(tmp_path, table, "synthesis", "loso", "mtrends2024", settings, fit)
    again = comparison._run_unit(tmp_path, table, "synthesis", "loso", "mtrends2024", settings, fit)
    assert calls == [1] and first == again and again[0] == rows and again[1].seconds == 3.0
    other = replace(settings, seed=1)  # other settings: not the same refit
    comparison._run_unit(tmp_path, table, "synthesis", "loso", "mtrends2024", other, fit)
    assert calls == [1, 1]
