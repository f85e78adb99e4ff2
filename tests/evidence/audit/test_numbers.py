"""Cleaning and evaluating the text of a note's arithmetic: what does not parse is skipped."""

from __future__ import annotations

from attackprev.evidence.audit.arithmetic import recompute
from attackprev.evidence.audit.numbers import clean_arithmetic


def test_unparsable_text_is_skipped():
    assert recompute("Accenture 'seven in 10' cited").final is None
    assert recompute("none; treated as Process Injection sub-technique").final is None
    assert "[" not in clean_arithmetic("(0.44+52.3)/2 [uses 52.3 although ...]")
