"""Building the evidence base v2: every source's count for every technique, from the raw copies.

``attackprev evidence build`` runs :func:`build_evidence` and writes three tables to
``data/evidence/`` (``--check`` compares instead of writing):

* ``counts.csv``: one row per (technique, source) — k of n with how n is known, the count of
  members that name the ID itself (``successes_exact``; the rest name a sub-technique), the
  percentage as published, the raw IDs it came from and the raw rows (``file:line``);
* ``members.csv``: for a counted source, which groups / software / campaigns / reports /
  advisories make up each count (its trace to the raw rows);
* ``excluded_rows.csv``: every raw row not used, with why.

Rules (``data/README.md`` explains them for readers):

* IDs are resolved by :func:`attackprev.evidence.ids.resolve` (decisions, revocations,
  deprecations).
* A **complete** source (ATT&CK, TIE, CISA) gets a row for every live ATT&CK v18.1 technique;
  a member counts once per technique, and a sub-technique's members also count for its parent.
* A **partial** source (the M-Trends years, the four sources of enterpriseLang's notes) gets a
  row only where it publishes a figure, never a zero; percentages are not rolled up (a parent's
  share is what the source printed for the parent).
* Where ATT&CK v18.1 merged techniques that a partial source lists separately (T1574.002 into
  T1574.001), the merged technique's share is unknown, so those rows are left out.
* M-Trends 2020 appears twice: in enterpriseLang's notes (``observations.csv``) and in the
  third-party copy. Where both give a technique, the value that is a whole count of the
  inferred 227 is used (the two agree on every technique but one); each source's remaining
  rows are added.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from attackprev.config import (
    COUNTS_CSV,
    EVIDENCE_DIR,
    EXCLUDED_ROWS_CSV,
    ID_DECISIONS_CSV,
    MEMBERS_CSV,
    OBSERVATIONS_CSV,
    SOURCES_CSV,
)
from attackprev.errors import InputError
from attackprev.evidence.attack import attack_table, current_id
from attackprev.evidence.denominators import consistent_count
from attackprev.evidence.ids import is_move, live_techniques, load_decisions, parent_of, raw_key, widened
from attackprev.evidence.raw.attack_uses import read_attack_uses
from attackprev.evidence.raw.records import Counted, Left, Percent
from attackprev.evidence.raw.splunk import read_cisa, read_mtrends
from attackprev.evidence.raw.tie import read_tie
from attackprev.evidence.tables import Source, load_evidence, load_sources, read_table

COUNTS_COLUMNS = [
    "technique_id",
    "source_id",
    "successes",
    "trials",
    "trials_basis",
    "successes_exact",
    "percent",
    "raw_ids",
    "raw_rows",
]
MEMBERS_COLUMNS = ["source_id", "technique_id", "members"]
EXCLUDED_COLUMNS = ["raw_file", "raw_rows", "source_id", "raw_id", "reason"]
#: The M-Trends year that both enterpriseLang's notes and the third-party copy give.
NOTES_AND_COPY = "mtrends2020"


@dataclass
class Built:
    """The built tables (as rows) and what the build found on the way."""

    counts: list[dict] = field(default_factory=list)
    members: list[dict] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)
    crosscheck: list[dict] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)

    def tables(self) -> dict[str, str]:
        """File name -> CSV text of each table."""
        return {
            COUNTS_CSV.name: _csv(self.counts, COUNTS_COLUMNS),
            MEMBERS_CSV.name: _csv(self.members, MEMBERS_COLUMNS),
            EXCLUDED_ROWS_CSV.name: _csv(self.excluded, EXCLUDED_COLUMNS),
        }


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _member_key(member: str) -> tuple:
    head, _, number = member.rpartition(" ")
    return (head, int(number)) if number.isdigit() else (member, 0)


# --------------------------------------------------------------------------------------
# complete sources
# --------------------------------------------------------------------------------------
def _check_trials(counted: Counted, source: Source, sources_path: Path) -> int:
    if source.coverage != "complete":
        raise InputError(
            f"{source.source_id} is counted from raw rows, so its coverage must be 'complete'",
            sources_path,
            source.line,
        )
    if source.trials is None:
        raise InputError(f"{source.source_id} needs trials", sources_path, source.line)
    if source.trials_basis == "counted" and counted.trials != source.trials:
        raise InputError(
            f"{source.source_id}: trials {source.trials} but the raw rows give {counted.trials}",
            sources_path,
            source.line,
        )
    if counted.in_file > source.trials:
        raise InputError(
            f"{source.source_id}: trials {source.trials} is below the {counted.in_file} members in the raw file",
            sources_path,
            source.line,
        )
    return source.trials


def _complete_rows(counted: Counted, trials: int, basis: str, techniques: list[str]) -> tuple[list[dict], list[dict]]:
    """One row per live technique, sub-technique members rolled up to the parent."""
    subs: dict[str, list[str]] = defaultdict(list)
    for tid in counted.members:
        parent = parent_of(tid)
        if parent is not None:
            subs[parent].append(tid)
    counts, members = [], []
    for tid in techniques:
        exact = counted.members.get(tid, set())
        rolled = set(exact)
        raw = set(counted.raw_ids.get(tid, set()))
        for sub in subs.get(tid, []):
            rolled |= counted.members[sub]
            raw |= counted.raw_ids.get(sub, set())
        counts.append(
            {
                "technique_id": tid,
                "source_id": counted.source_id,
                "successes": len(rolled),
                "trials": trials,
                "trials_basis": basis,
                "successes_exact": len(exact),
                "percent": "",
                "raw_ids": " ".join(sorted(raw)),
                "raw_rows": "",
            }
        )
        if rolled:
            members.append(
                {
                    "source_id": counted.source_id,
                    "technique_id": tid,
                    "members": " ".join(sorted(rolled, key=_member_key)),
                }
            )
    return counts, members


# --------------------------------------------------------------------------------------
# partial sources
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Figure:
    """A partial source's figure, before conversion: a percentage or a count."""

    source_id: str
    technique_id: str
    raw_id: str
    percent_text: str
    successes: int | None
    trials: int | None
    ref: str
    spelled: str = ""
    moved: bool = True
    basis: str = ""
    raw_name: str = ""


def _merge_collisions(figures: list[_Figure], excluded: list[dict]) -> list[_Figure]:
    """Keep one figure per (source, technique); leave out techniques that ATT&CK merged.

    A figure for a technique that ATT&CK v18.1 merged into a wider one (:func:`is_move` is
    False) is left out, and so are figures for several old techniques that now share one ID.
    """
    groups: dict[tuple[str, str], list[_Figure]] = defaultdict(list)
    for f in figures:
        if not f.moved:
            _exclude(
                excluded,
                f,
                f"left out: ATT&CK v18.1 merged {f.spelled} into the wider {f.technique_id}, so {f.source_id}'s "
                f"figure for {f.spelled} is not {f.technique_id}'s",
            )
            continue
        wider = widened(f.technique_id, f.raw_name) if f.raw_name else None
        if wider:
            _exclude(excluded, f, f"left out: {wider}")
            continue
        groups[(f.source_id, f.technique_id)].append(f)
    kept = []
    for (sid, tid), group in groups.items():
        raw = sorted({f.spelled for f in group})
        values = {(f.percent_text, f.successes, f.trials) for f in group}
        if len(raw) == 1 and len(values) == 1:
            first = group[0]
            refs = " ".join(f.ref for f in group)
            kept.append(
                _Figure(
                    sid,
                    tid,
                    first.raw_id,
                    first.percent_text,
                    first.successes,
                    first.trials,
                    refs,
                    first.spelled,
                    True,
                    first.basis,
                )
            )
            continue
        if len(raw) > 1:
            reason = (
                f"left out: {sid} lists {', '.join(raw)} separately and ATT&CK v18.1 merged them into {tid}, "
                "so the merged technique's figure is unknown"
            )
        else:
            reason = f"left out: {sid} gives {raw[0]} twice with different figures"
        for f in group:
            excluded.append(
                {
                    "raw_file": f.ref.rsplit(":", 1)[0],
                    "raw_rows": f.ref.rsplit(":", 1)[1],
                    "source_id": sid,
                    "raw_id": f.raw_id,
                    "reason": reason,
                }
            )
    return kept


def _notes_figures(sources_path: Path, observations_path: Path, excluded: list[dict]) -> tuple[list[_Figure], int]:
    """The four sources of enterpriseLang's notes, from ``observations.csv``, as published.

    Returns the figures and M-Trends 2020's inferred number of attack lifecycles.
    """
    evidence = load_evidence(observations_path, sources_path)
    rel = raw_key(observations_path)
    rows, _ = read_table(observations_path, ["technique_id"])
    names = {line: r.get("technique_name", "") for line, r in rows}
    figures = []
    for o in evidence.observations:
        live = current_id(o.technique_id)
        if not attack_table()[live].live:
            excluded.append(
                {
                    "raw_file": rel,
                    "raw_rows": str(o.line),
                    "source_id": o.source_id,
                    "raw_id": o.technique_id,
                    "reason": f"left out: {o.technique_id} is deprecated in ATT&CK v18.1 (no replacement)",
                }
            )
            continue
        percent = "" if o.percent is None else f"{o.percent:g}"
        figures.append(
            _Figure(
                o.source_id,
                live,
                o.technique_id,
                percent,
                o.successes if o.percent is None else None,
                o.trials,
                f"{rel}:{o.line}",
                o.technique_id,
                is_move(o.technique_id),
                o.trials_basis,
                names.get(o.line, ""),
            )
        )
    return figures, evidence.recoveries[NOTES_AND_COPY].trials


def _copy_figures(percents: list[Percent]) -> list[_Figure]:
    return [
        _Figure(
            p.source_id, p.technique_id, p.raw_id, p.percent_text, None, None, p.ref, p.spelled, p.moved, "", p.raw_name
        )
        for p in percents
    ]


def _crosscheck_2020(
    notes: list[_Figure], copy: list[_Figure], trials: int, decimals: int, excluded: list[dict]
) -> tuple[list[_Figure], list[dict]]:
    """Merge M-Trends 2020 from the notes and the copy; returns the figures and the comparison."""
    by_notes = {f.technique_id: f for f in notes if f.source_id == NOTES_AND_COPY}
    by_copy = {f.technique_id: f for f in copy if f.source_id == NOTES_AND_COPY}
    merged, table = [], []
    for tid in sorted(set(by_notes) | set(by_copy)):
        a, b = by_notes.get(tid), by_copy.get(tid)
        ok_a = a is not None and consistent_count(float(a.percent_text), trials, decimals) is not None
        ok_b = b is not None and consistent_count(float(b.percent_text), trials, decimals) is not None
        row = {
            "technique_id": tid,
            "notes": a.percent_text if a else "",
            "copy": b.percent_text if b else "",
            "notes_id": a.raw_id if a else "",
            "copy_id": b.raw_id if b else "",
        }
        if a and b:
            if float(a.percent_text) == float(b.percent_text):
                row["outcome"] = "agree"
                merged.append(
                    _Figure(
                        a.source_id,
                        tid,
                        a.raw_id,
                        a.percent_text,
                        None,
                        a.trials,
                        f"{a.ref} {b.ref}",
                        a.spelled,
                        True,
                        a.basis,
                    )
                )
            elif ok_a != ok_b:
                good, bad = (a, b) if ok_a else (b, a)
                row["outcome"] = (
                    f"disagree; {good.percent_text} is a whole count of {trials}, {bad.percent_text} is not"
                )
                merged.append(good)
                _exclude(
                    excluded,
                    bad,
                    f"left out: M-Trends 2020 gives {good.percent_text} for {tid} in the other "
                    f"record of the report; {bad.percent_text} is not a whole count of {trials}",
                )
            else:
                row["outcome"] = "disagree; both left out"
                for f in (a, b):
                    _exclude(excluded, f, f"left out: the notes and the copy disagree on M-Trends 2020's {tid}")
        elif a:
            row["outcome"] = "notes only"
            merged.append(a)
        else:
            if ok_b:
                row["outcome"] = "copy only"
                merged.append(b)
            else:
                row["outcome"] = f"copy only; not a whole count of {trials}, left out"
                _exclude(
                    excluded,
                    b,
                    f"left out: {b.percent_text} % is not a whole count of the {trials} attack "
                    "lifecycles every other M-Trends 2020 figure fits (a slip in the copy or the report)",
                )
        table.append(row)
    others = [f for f in notes + copy if f.source_id != NOTES_AND_COPY]
    return merged + others, table


def _exclude(excluded: list[dict], f: _Figure, reason: str) -> None:
    for ref in f.ref.split(" "):
        path, _, line = ref.rpartition(":")
        excluded.append(
            {"raw_file": path, "raw_rows": line, "source_id": f.source_id, "raw_id": f.raw_id, "reason": reason}
        )


def _partial_rows(
    figures: list[_Figure], sources: dict[str, Source], sources_path: Path, inferred: dict[str, int]
) -> list[dict]:
    rows = []
    for f in figures:
        src = sources.get(f.source_id)
        if src is None:
            raise InputError(f"source {f.source_id!r} is not in {sources_path.name}", sources_path)
        if src.coverage != "partial":
            raise InputError(
                f"{f.source_id} gives listed figures only, so its coverage must be 'partial'", sources_path, src.line
            )
        trials = f.trials if f.trials is not None else (src.trials or inferred.get(f.source_id))
        if trials is None:
            raise InputError(f"{f.source_id}: no trials known", sources_path, src.line)
        if f.percent_text:
            decimals = src.percent_decimals if src.percent_decimals is not None else 2
            k = consistent_count(float(f.percent_text), trials, decimals)
            if k is None:
                raise InputError(
                    f"{f.source_id}: {f.technique_id}'s {f.percent_text} % is no whole count of its trials {trials}",
                    sources_path,
                    src.line,
                )
        else:
            k = f.successes
        if k == 0:
            raise InputError(f"{f.source_id} is partial but gives {f.technique_id} a zero", f.ref.rsplit(":", 1)[0])
        basis = f.basis or src.trials_basis
        rows.append(
            {
                "technique_id": f.technique_id,
                "source_id": f.source_id,
                "successes": k,
                "trials": trials,
                "trials_basis": basis,
                "successes_exact": "",
                "percent": f.percent_text,
                "raw_ids": f.raw_id if f.raw_id != f.technique_id else "",
                "raw_rows": f.ref,
            }
        )
    return rows


# --------------------------------------------------------------------------------------
# the build
# --------------------------------------------------------------------------------------
def build_evidence(
    sources_path: str | Path = SOURCES_CSV,
    observations_path: str | Path = OBSERVATIONS_CSV,
    decisions_path: str | Path = ID_DECISIONS_CSV,
) -> Built:
    """Build the v2 evidence tables from the raw copies (see the module docstring).

    Returns
    -------
    Built

    Raises
    ------
    InputError
        On any problem in a raw copy or a hand-edited table, naming the file and row.
    """
    sources_path, observations_path = Path(sources_path), Path(observations_path)
    sources = load_sources(sources_path)
    decisions = load_decisions(decisions_path)
    built = Built(sources=sources)
    excluded: list[dict] = []

    counted, left = read_attack_uses(decisions)
    tie, tie_left = read_tie(decisions)
    cisa, cisa_left = read_cisa(decisions)
    percents, mt_left = read_mtrends(decisions)
    left_rows: list[Left] = [*left, *tie_left, *cisa_left, *mt_left]

    techniques = live_techniques()
    for c in [*counted, tie, *cisa]:
        src = sources.get(c.source_id)
        if src is None:
            raise InputError(f"source {c.source_id!r} (counted from the raw copies) is missing", sources_path)
        trials = _check_trials(c, src, sources_path)
        rows, members = _complete_rows(c, trials, src.trials_basis, techniques)
        built.counts += rows
        built.members += members

    notes, inferred = _notes_figures(sources_path, observations_path, excluded)
    notes = _merge_collisions(notes, excluded)
    copy = _merge_collisions(_copy_figures(percents), excluded)
    mt2020 = sources[NOTES_AND_COPY]
    figures, built.crosscheck = _crosscheck_2020(notes, copy, inferred, mt2020.percent_decimals or 2, excluded)
    built.counts += _partial_rows(figures, sources, sources_path, {NOTES_AND_COPY: inferred})

    built.counts.sort(key=lambda r: (r["technique_id"], r["source_id"]))
    built.members.sort(key=lambda r: (r["technique_id"], r["source_id"]))
    for item in left_rows:
        excluded.append(
            {
                "raw_file": item.raw_file,
                "raw_rows": item.raw_rows,
                "source_id": item.source_id,
                "raw_id": item.raw_id,
                "reason": item.reason,
            }
        )
    built.excluded = sorted(
        excluded, key=lambda r: (r["raw_file"], r["source_id"], _first_line(r["raw_rows"]), r["raw_id"])
    )
    return built


def _first_line(rows: str) -> tuple:
    head = rows.split(" ")[0].split("-")[0]
    return (0, int(head)) if head.isdigit() else (1, rows)


def write_evidence(built: Built, folder: str | Path = EVIDENCE_DIR) -> list[Path]:
    """Write the built tables into ``folder``, each atomically. Returns the paths written."""
    from attackprev.atomic import write_text_atomic

    paths = []
    for name, text in built.tables().items():
        path = Path(folder) / name
        write_text_atomic(path, text)
        paths.append(path)
    return paths


def stale_tables(built: Built, folder: str | Path = EVIDENCE_DIR) -> list[str]:
    """Names of the tables in ``folder`` that differ from (or are missing against) the build."""
    stale = []
    for name, text in built.tables().items():
        path = Path(folder) / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale
