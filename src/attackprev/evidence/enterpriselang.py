"""enterpriseLang's published values, kept for comparison (``data/enterpriselang_notes.csv``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from attackprev.config import NOTES_CSV
from attackprev.errors import InputError
from attackprev.evidence.tables import read_table


@dataclass(frozen=True)
class Note:
    """One enterpriseLang probability note, as published."""

    technique_id: str
    technique_name: str
    note_path: str
    published_result: str
    published_arithmetic: str
    ttc_text: str
    note_caveats: str

    @property
    def published_p(self) -> float | None:
        """p of the published result's Bernoulli factor, if it has one that parses."""
        from attackprev.mal.expressions import parse_ttc
        from attackprev.mal.mapping import published_expression

        try:
            return parse_ttc(published_expression(self.published_result)).bernoulli
        except InputError:
            return None

    @property
    def time_factor(self) -> tuple[str | None, str | None]:
        """(time factor kept from the published TTC, remark).

        See :func:`attackprev.mal.mapping.published_time_factor`.
        """
        from attackprev.mal.mapping import published_time_factor

        try:
            return published_time_factor(self.published_result)
        except InputError as err:
            return None, f"published TTC not parsed ({err.message}); written as a zero-time step"


@functools.cache
def load_notes(path: str | Path = NOTES_CSV) -> tuple[Note, ...]:
    """Every note in the table."""
    rows, _ = read_table(path, ["technique_id", "note_path", "published_result"])
    return tuple(
        Note(
            technique_id=r["technique_id"],
            technique_name=r.get("technique_name", ""),
            note_path=r["note_path"],
            published_result=r["published_result"],
            published_arithmetic=r.get("published_arithmetic", ""),
            ttc_text=r.get("ttc_text", ""),
            note_caveats=r.get("note_caveats", ""),
        )
        for _, r in rows
    )


def note_for(technique_id: str, note_path: str | None = None) -> Note | None:
    """The note for a technique: the one at ``note_path`` when given, else the first."""
    notes = [n for n in load_notes() if n.technique_id == technique_id]
    if note_path:
        exact = [n for n in notes if n.note_path == note_path]
        notes = exact or notes
    return notes[0] if notes else None


@dataclass(frozen=True)
class PublishedStep:
    """An enterpriseLang attack step whose TTC has a Bernoulli factor, mapped to an ATT&CK technique."""

    technique_id: str
    asset: str
    attack_step: str
    p: float
    ttc: str


def published_steps(path: str | Path | None = None) -> dict[str, list[PublishedStep]]:
    """enterpriseLang's published Bernoulli probabilities by ATT&CK technique (current IDs), from
    ``data/enterpriselang_attack_steps.csv`` (the steps of enterpriseLang's ``.mal`` file)."""
    import re

    from attackprev.config import ELANG_ATTACK_STEPS_CSV

    rows, _ = read_table(path or ELANG_ATTACK_STEPS_CSV, ["asset", "attack_step", "ttc", "technique_id"])
    out: dict[str, list[PublishedStep]] = {}
    for _, r in rows:
        m = re.search(r"Bernoulli\(([0-9.]+)\)", r["ttc"])
        if r["technique_id"] and m:
            step = PublishedStep(r["technique_id"], r["asset"], r["attack_step"], float(m.group(1)), r["ttc"])
            out.setdefault(r["technique_id"], []).append(step)
    return out
