"""The report section "Data quality of the published notes"."""

from __future__ import annotations

import pytest

from attackprev.evidence.audit.checks import QualityCheck, check_notes
from attackprev.reporting.quality import render_quality_markdown


@pytest.fixture(scope="module")
def check() -> QualityCheck:
    return check_notes()


def test_markdown_section(check):
    md = render_quality_markdown(check.findings, check.stats)
    s = check.stats
    assert md.startswith("## Data quality of the published notes\n")
    summary = f"{s.notes} note rows: {s.checked} checked ({s.reproduced} reproduced, {s.not_reproduced} not reproduced)"
    assert summary in md
    rows = [line for line in md.splitlines() if line.startswith("| T") or line.startswith("| M")]
    assert len(rows) == len(check.findings)
    assert any("`systemTimeDiscovery.md`" in r and "0.19744" in r and "0.20044" in r for r in rows)
