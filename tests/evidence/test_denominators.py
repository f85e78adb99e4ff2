"""Recovering a denominator from rounded percentages (M-Trends 2020: 227)."""

from __future__ import annotations

import pytest

from attackprev.evidence.denominators import consistent_count, recover_denominator

MTRENDS_PERCENTS = [
    0.44,
    0.88,
    1.32,
    1.76,
    2.2,
    3.08,
    3.52,
    3.96,
    4.85,
    5.29,
    6.61,
    8.37,
    9.25,
    10.13,
    10.57,
    15.86,
    18.94,
]


def test_mtrends_denominator_is_227_and_its_multiples():
    rec = recover_denominator(MTRENDS_PERCENTS, 2, "mtrends2020")
    assert rec.trials == 227
    assert rec.candidates[:4] == (227, 454, 681, 908)
    assert "inference" in rec.describe()


@pytest.mark.parametrize("percent", MTRENDS_PERCENTS)
def test_every_mtrends_figure_is_a_count_of_227(percent):
    k = consistent_count(percent, 227, 2)
    assert k is not None and round(100 * k / 227, 2) == percent


def test_no_denominator_fits_inconsistent_percentages():
    with pytest.raises(ValueError, match="no denominator"):
        recover_denominator([33.33, 50.01, 12.34, 7.77], 2, "x", limit=200)
