"""Recomputing a note's arithmetic step by step, and reading its quoted k/n."""

from __future__ import annotations

import pytest

from attackprev.evidence.audit.arithmetic import quoted_ratios, recompute
from attackprev.evidence.audit.numbers import Written, agrees


def test_quoted_ratios():
    assert [(k, n) for k, n, _ in quoted_ratios("47 out of 951 (47/951 = 4.94%)")] == [(47, 951)]
    ((k, n, w),) = quoted_ratios("1/57 stated as ~1.58%")
    assert (k, n, w.text) == (1, 57, "1.58") and not agrees(k / n, w)
    assert agrees(12 / 951, Written("1.261", True))  # truncated, as the notes often do
    assert quoted_ratios("15+26 + 28/7 + 20/30 = ~45.67%") == []  # terms of a sum, not quotes


@pytest.mark.parametrize(
    ("arithmetic", "final"),
    [
        ("(3.96 + 4.94) / 2 = 4.45%", 0.0445),
        ("mean of 15, 9.25, 5.89, 5 = 8.785", 8.785),
        ("Barkly 77%/4 = 19.25%; mean with Carbon Black 15% = 17.125%", 0.17125),
        ("(0.91 - 0.34x0.91) = 0.60; x 0.892 (automatedCollection) = 0.5352", 0.5352),
        ("median(5.26, 6.61, 74.59) = 6.61", 6.61),
        ("21.4% x mean(11, 4)=7.5% -> 1.605%", 0.01605),
        ("Verizon DBIR 2018 ~11% of breaches physical actions (CrowdStrike 5-20% said to match)", 0.11),
    ],
)
def test_recompute_reproduces_consistent_arithmetic(arithmetic, final):
    rec = recompute(arithmetic)
    assert rec.bad_steps == []
    assert rec.final == pytest.approx(final)


def test_recompute_finds_a_step_that_does_not_evaluate():
    (step,) = recompute("(10 + 20) / 2 = 16%").bad_steps
    assert step.computed == pytest.approx(15) and step.written.text == "16"
