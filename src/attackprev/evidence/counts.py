"""The evidence base v2 as the models read it: ``data/evidence/counts.csv`` with ``data/sources.csv``.

``counts.csv`` is built from the raw copies by ``attackprev evidence build``
(:mod:`attackprev.evidence.build`); this module reads it back, checks it, and applies a user's
override of an assumed or inferred number of trials (the percentages are then converted again).
Every check names the file and row: a count above its trials, a source not in ``sources.csv``,
a source without a family, a partial source given a zero, a complete source missing a
technique, a malformed or retired technique ID.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

from attackprev.config import COUNTS_CSV, SOURCES_CSV
from attackprev.errors import InputError
from attackprev.evidence.attack import attack_table, check_technique_id
from attackprev.evidence.ids import live_techniques
from attackprev.evidence.tables import (
    Source,
    _int_field,
    _percent_field,
    check_technique_format,
    load_sources,
    read_table,
)

#: Bases of n that a user may override (a published or counted n is a fact, not a choice).
OVERRIDABLE = ("assumed", "inferred")


@dataclass(frozen=True)
class Count:
    """One source's count for one technique: k of n."""

    technique_id: str
    source_id: str
    family: str
    successes: int
    trials: int
    trials_basis: str
    successes_exact: int | None
    percent: str
    raw_ids: str
    raw_rows: str
    line: int

    @property
    def rate(self) -> float:
        """k / n."""
        return self.successes / self.trials


@dataclass(frozen=True)
class CountTable:
    """Every count, the sources and the digest of what was read (for cache keys and saved fits)."""

    path: str
    counts: tuple[Count, ...]
    sources: dict[str, Source]
    overrides: dict[str, int]
    digest: str

    def techniques(self) -> list[str]:
        """Techniques with at least one nonzero count, sorted."""
        return sorted({c.technique_id for c in self.counts if c.successes > 0})

    def for_technique(self, technique_id: str) -> list[Count]:
        """The technique's counts (zeros of complete sources included), by source."""
        rows = [c for c in self.counts if c.technique_id == technique_id]
        if not rows:
            raise InputError(f"no counts for technique {technique_id}", self.path)
        return rows

    def families(self) -> list[str]:
        """Source families, sorted."""
        return sorted({s.family for s in self.sources.values() if s.source_id in self.used_sources()})

    def used_sources(self) -> list[str]:
        """Sources with at least one row, sorted."""
        return sorted({c.source_id for c in self.counts})


def load_counts(
    path: str | Path = COUNTS_CSV,
    sources_path: str | Path = SOURCES_CSV,
    trials_override: dict[str, int] | None = None,
) -> CountTable:
    """Read and check ``counts.csv``.

    Parameters
    ----------
    path, sources_path
        The counts table and the sources table.
    trials_override
        ``{source_id: n}`` for sources whose n is assumed or inferred: each of their percentages
        becomes the nearest whole count of the new n (halves rounded up; at least 1, since a
        published positive share is not a zero).

    Returns
    -------
    CountTable

    Raises
    ------
    InputError
        One line naming the file, row and problem.
    """
    required = ["technique_id", "source_id", "successes", "trials", "trials_basis", "percent"]
    rows, raw = read_table(path, required)
    sources = load_sources(sources_path)
    overrides = dict(trials_override or {})
    for sid, n in overrides.items():
        src = sources.get(sid)
        if src is None:
            raise InputError(f"--trials {sid}={n}: unknown source; sources: {', '.join(sorted(sources))}")
        if src.trials_basis not in OVERRIDABLE:
            raise InputError(f"--trials {sid}={n}: {sid}'s n is {src.trials_basis}, not an assumption to override")
        if n < 1:
            raise InputError(f"--trials {sid}={n}: n must be at least 1")
    table = attack_table()
    out: list[Count] = []
    seen: dict[tuple[str, str], int] = {}
    for line, r in rows:
        tid = check_technique_format(r["technique_id"], path, line)
        check_technique_id(tid, path, line)
        if not table[tid].live:
            raise InputError(
                f"{tid} is not a live ATT&CK v18.1 ID (revoked or deprecated); rebuild the table", path, line
            )
        sid = r["source_id"]
        src = sources.get(sid)
        if src is None:
            raise InputError(f"source {sid!r} is not in {Path(sources_path).name}", path, line)
        if not src.family:
            raise InputError(f"source {sid!r} has no family in {Path(sources_path).name}", path, line)
        key = (tid, sid)
        if key in seen:
            raise InputError(f"duplicate row for ({tid}, {sid}); first on line {seen[key]}", path, line)
        seen[key] = line
        k = _int_field(r["successes"], "successes", path, line)
        n = _int_field(r["trials"], "trials", path, line, positive=True)
        pct = r["percent"]
        if pct:
            _percent_field(pct, path, line)
        if sid in overrides:
            if not pct:
                raise InputError(f"--trials {sid}: this row gives a count, not a percentage", path, line)
            n = overrides[sid]
            # the nearest whole count (halves up), and at least 1: a published positive share is not 0
            k = max(1, math.floor(float(pct) * n / 100.0 + 0.5))
        if k > n:
            raise InputError(f"successes {k} exceed trials {n}", path, line)
        if k == 0 and src.coverage == "partial":
            raise InputError(f"{sid} is a partial source (absent means unknown), so it cannot give a zero", path, line)
        exact = r.get("successes_exact", "")
        out.append(
            Count(
                technique_id=tid,
                source_id=sid,
                family=src.family,
                successes=k,
                trials=n,
                trials_basis="assumed" if sid in overrides else r["trials_basis"],
                successes_exact=_int_field(exact, "successes_exact", path, line) if exact else None,
                percent=pct,
                raw_ids=r.get("raw_ids", ""),
                raw_rows=r.get("raw_rows", ""),
                line=line,
            )
        )
    live = set(live_techniques())
    for sid in sorted({c.source_id for c in out}):
        if sources[sid].coverage == "complete":
            missing = live - {c.technique_id for c in out if c.source_id == sid}
            if missing:
                raise InputError(
                    f"{sid} is complete but has no row for {len(missing)} live techniques (e.g. {min(missing)})", path
                )
    digest = hashlib.sha256(
        raw + b"\0" + Path(sources_path).read_bytes() + repr(sorted(overrides.items())).encode()
    ).hexdigest()
    return CountTable(str(path), tuple(out), sources, overrides, digest)
