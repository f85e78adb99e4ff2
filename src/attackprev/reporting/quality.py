"""The report section "Data quality of the published notes" (findings of :mod:`attackprev.evidence.audit`)."""

from __future__ import annotations

from collections import Counter

from attackprev.evidence.audit.checks import Finding, QualityStats
from attackprev.evidence.audit.numbers import format_number


def render_quality_markdown(findings: list[Finding], stats: QualityStats) -> str:
    """The report section "Data quality of the published notes".

    Parameters
    ----------
    findings
        From :func:`~attackprev.evidence.audit.checks.note_findings` or
        :func:`~attackprev.evidence.audit.checks.check_notes`.
    stats
        The counts from :func:`~attackprev.evidence.audit.checks.check_notes`.

    Returns
    -------
    str
        Markdown: a heading, a one-line summary of the counts, and a table with one row per
        finding (technique, note, problem, published, recomputed).
    """
    kinds = Counter(f.kind for f in findings)
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    lines = [
        "## Data quality of the published notes",
        "",
        f"{stats.notes} note rows: {stats.checked} checked ({stats.reproduced} reproduced, "
        f"{stats.not_reproduced} not reproduced), {stats.not_checkable} not checkable; "
        f"{len(findings)} findings ({by_kind or 'none'}).",
        "",
        "| technique | note | problem | published | recomputed |",
        "|---|---|---|---|---|",
    ]
    for f in findings:
        problem = f"**{f.kind}**: {f.detail}".replace("|", "\\|")
        note = f.note_path.rsplit("/", 1)[-1].replace("|", "\\|")
        published, recomputed = format_number(f.published), format_number(f.recomputed)
        lines.append(f"| {f.technique_id} | `{note}` | {problem} | {published} | {recomputed} |")
    return "\n".join(lines) + "\n"
