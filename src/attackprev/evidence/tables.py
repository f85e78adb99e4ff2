"""Loading and checking the evidence tables.

Two tables, both hand-edited CSV (see ``data/README.md``):

* ``data/sources.csv``: one row per publication, with how its number of trials is known
  (``published``, ``inferred`` from its rounded percentages, or ``assumed``);
* ``data/observations.csv``: one row per (technique, source) figure, as published — a count
  (``successes``) or a percentage (``percent``).

A user's own file (``attackprev fit --data FILE``) needs only ``technique_id, source_id,
successes, trials``; rows may give a ``percent`` instead of ``successes``, and a blank
``trials`` is then recovered from the source's percentages.

Percentages become counts here, never in the data files. For a source that publishes only
rounded percentages, the trial count is recovered by
:func:`attackprev.evidence.denominators.recover_denominator`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from attackprev.config import OBSERVATIONS_CSV, SOURCES_CSV
from attackprev.errors import InputError
from attackprev.evidence.denominators import Recovery, consistent_count, recover_denominator

TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
TRIALS_BASES = ("published", "inferred", "assumed", "counted")
#: ``complete``: every technique was counted (absent means 0 of n); ``partial``: only the listed rows
#: (absent means unknown, never 0).
COVERAGES = ("complete", "partial")


@dataclass(frozen=True)
class Source:
    """A publication that reports counts or percentages of trials."""

    source_id: str
    citation: str = ""
    year: str = ""
    url: str = ""
    population: str = ""
    trials: int | None = None
    trials_basis: str = "published"
    percent_decimals: int | None = None
    notes: str = ""
    family: str = ""
    unit: str = ""
    coverage: str = "partial"
    publisher: str = ""
    line: int = 0


@dataclass(frozen=True)
class Observation:
    """One technique's figure from one source, resolved to a count out of trials."""

    technique_id: str
    source_id: str
    successes: int
    trials: int
    percent: float | None
    trials_basis: str
    reported_as: str = ""
    location: str = ""
    note_path: str = ""
    line: int = 0

    @property
    def rate(self) -> float:
        """successes / trials."""
        return self.successes / self.trials


@dataclass(frozen=True)
class Evidence:
    """Every resolved observation, the sources, and the denominators recovered."""

    path: str
    observations: tuple[Observation, ...]
    sources: dict[str, Source]
    recoveries: dict[str, Recovery] = field(default_factory=dict)
    digest: str = ""

    def techniques(self) -> list[str]:
        """Technique IDs with at least one observation, sorted."""
        return sorted({o.technique_id for o in self.observations})

    def for_technique(self, technique_id: str) -> list[Observation]:
        """The technique's observations; an :class:`InputError` if there are none."""
        rows = [o for o in self.observations if o.technique_id == technique_id]
        if not rows:
            raise InputError(
                f"no evidence for technique {technique_id}; techniques with evidence: "
                f"{', '.join(self.techniques()[:12])}{' ...' if len(self.techniques()) > 12 else ''}",
                self.path,
            )
        return rows


# --------------------------------------------------------------------------------------
# reading CSV files safely
# --------------------------------------------------------------------------------------
def read_table(path: str | Path, required: Iterable[str]) -> tuple[list[tuple[int, dict]], bytes]:
    """Read a CSV file into (line number, row) pairs, with one-line errors.

    Returns the rows and the raw bytes (for hashing).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save the file as UTF-8",
            path,
            line,
        ) from None
    if not text.strip():
        raise InputError("file is empty; expected a CSV header and at least one row", path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"(found: {', '.join(header)})",
            path,
            1,
        )
    rows = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise InputError("more fields than the header has columns", path, line)
        clean = {k: (v or "").strip() for k, v in row.items()}
        if not any(clean.values()):
            continue
        rows.append((line, clean))
    if not rows:
        raise InputError("no data rows below the header", path)
    return rows, raw


def _int_field(value: str, name: str, path, line, *, positive: bool = False) -> int:
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{name} {value!r} is not a number", path, line) from None
    if not math.isfinite(number) or number != int(number):
        raise InputError(f"{name} {value!r} is not a whole number", path, line)
    number = int(number)
    if number < 0:
        raise InputError(f"{name} {value} is negative", path, line)
    if positive and number == 0:
        raise InputError(f"{name} is 0; a source needs at least one trial", path, line)
    return number


def _percent_field(value: str, path, line) -> float:
    try:
        pct = float(value)
    except ValueError:
        raise InputError(f"percent {value!r} is not a number", path, line) from None
    if not math.isfinite(pct) or not 0.0 <= pct <= 100.0:
        raise InputError(f"percent {value} is outside 0-100", path, line)
    return pct


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def check_technique_format(technique_id: str, path=None, line=None) -> str:
    """Reject malformed technique IDs (``T1234`` or ``T1234.567``)."""
    tid = technique_id.strip()
    if not TECHNIQUE_ID.match(tid):
        hint = f" (did you mean {tid.upper()}?)" if TECHNIQUE_ID.match(tid.upper()) else ""
        raise InputError(
            f"malformed technique ID {technique_id!r}; expected T1234 or T1234.567{hint}",
            path,
            line,
        )
    return tid


# --------------------------------------------------------------------------------------
# the tables
# --------------------------------------------------------------------------------------
def load_sources(path: str | Path = SOURCES_CSV) -> dict[str, Source]:
    """Read ``sources.csv``."""
    rows, _ = read_table(path, ["source_id", "trials", "trials_basis"])
    out: dict[str, Source] = {}
    for line, r in rows:
        sid = r["source_id"]
        if not sid:
            raise InputError("empty source_id", path, line)
        if sid in out:
            raise InputError(f"duplicate source_id {sid!r}", path, line)
        basis = r["trials_basis"] or ("published" if r["trials"] else "inferred")
        if basis not in TRIALS_BASES:
            raise InputError(f"trials_basis {basis!r} must be one of {', '.join(TRIALS_BASES)}", path, line)
        trials = _int_field(r["trials"], "trials", path, line, positive=True) if r["trials"] else None
        if trials is None and basis != "inferred":
            raise InputError(f"trials is blank but trials_basis is {basis!r}", path, line)
        dec = r.get("percent_decimals", "")
        if "family" in r and not r["family"]:
            raise InputError("family is blank (the publisher or data set the source belongs to)", path, line)
        coverage = r.get("coverage", "") or "partial"
        if coverage not in COVERAGES:
            raise InputError(f"coverage {coverage!r} must be one of {', '.join(COVERAGES)}", path, line)
        out[sid] = Source(
            source_id=sid,
            citation=r.get("citation", ""),
            year=r.get("year", ""),
            url=r.get("url", ""),
            population=r.get("population", ""),
            trials=trials,
            trials_basis=basis if trials is None else ("published" if basis == "inferred" else basis),
            percent_decimals=_int_field(dec, "percent_decimals", path, line) if dec else None,
            notes=r.get("notes", ""),
            family=r.get("family", sid),
            unit=r.get("unit", ""),
            coverage=coverage,
            publisher=r.get("publisher", ""),
            line=line,
        )
    return out


def load_evidence(
    observations: str | Path = OBSERVATIONS_CSV,
    sources: str | Path | None = SOURCES_CSV,
    trials_override: dict[str, int] | None = None,
    check_ids: bool = True,
) -> Evidence:
    """Read, check and resolve an observations table into counts out of trials.

    Parameters
    ----------
    observations
        The observations CSV (the bundled one, or a user's file).
    sources
        The sources CSV, or ``None`` for a self-contained user file.
    trials_override
        Denominators to use instead of the sources table's or the recovered ones,
        e.g. ``{"mtrends2020": 300}``.
    check_ids
        Check technique IDs against the bundled ATT&CK table.

    Returns
    -------
    Evidence

    Raises
    ------
    InputError
        For any problem, naming the file and line.
    """
    path = str(observations)
    rows, raw = read_table(observations, ["technique_id", "source_id"])
    header = set(rows[0][1])
    if "successes" not in header and "percent" not in header:
        raise InputError("missing column 'successes' (or 'percent')", path, 1)
    if sources is not None:
        source_table = load_sources(sources)
        digest_src = Path(sources).read_bytes()
    else:
        source_table, digest_src = {}, b""
    overrides = dict(trials_override or {})

    parsed = []
    seen: dict[tuple[str, str], int] = {}
    for line, r in rows:
        tid = check_technique_format(r["technique_id"], path, line)
        if check_ids:
            from attackprev.evidence.attack import check_technique_id

            check_technique_id(tid, path, line)
        sid = r["source_id"]
        if not sid:
            raise InputError("empty source_id", path, line)
        if source_table and sid not in source_table:
            raise InputError(f"source_id {sid!r} is not in {sources}", path, line)
        key = (tid, sid)
        if key in seen:
            raise InputError(f"duplicate row for ({tid}, {sid}); first seen on line {seen[key]}", path, line)
        seen[key] = line
        succ = r.get("successes", "")
        pct = r.get("percent", "")
        trials_text = r.get("trials", "")
        k = _int_field(succ, "successes", path, line) if succ else None
        n = _int_field(trials_text, "trials", path, line, positive=True) if trials_text else None
        p = _percent_field(pct, path, line) if pct else None
        if k is None and p is None:
            raise InputError("row gives neither successes nor percent", path, line)
        if k is not None and n is not None and k > n:
            raise InputError(f"successes {k} exceed trials {n}", path, line)
        parsed.append((line, r, tid, sid, k, n, p, _decimals(pct) if pct else None))

    # denominators: explicit override > row > sources table > recovered from percentages
    recoveries: dict[str, Recovery] = {}
    by_source: dict[str, list] = {}
    for item in parsed:
        by_source.setdefault(item[3], []).append(item)
    denominators: dict[str, tuple[int, str]] = {}
    for sid, items in by_source.items():
        src = source_table.get(sid)
        if sid in overrides:
            denominators[sid] = (overrides[sid], "assumed")
        elif src is not None and src.trials is not None:
            denominators[sid] = (src.trials, src.trials_basis)
        else:
            pcts = [it for it in items if it[4] is None and it[5] is None]
            if not pcts:
                continue
            decimals = src.percent_decimals if src and src.percent_decimals is not None else None
            if decimals is None:
                decimals = max(it[7] for it in pcts)
            try:
                rec = recover_denominator([it[6] for it in pcts], decimals, sid)
            except ValueError as exc:
                raise InputError(str(exc), path, pcts[0][0]) from None
            recoveries[sid] = rec
            denominators[sid] = (rec.trials, "inferred")

    resolved = []
    for line, r, tid, sid, k, n, p, dec in parsed:
        if n is not None:
            trials, basis = n, "published"
        elif sid in denominators:
            trials, basis = denominators[sid]
        else:
            raise InputError(f"trials is blank and source {sid!r} has no known number of trials", path, line)
        if k is None:
            src = source_table.get(sid)
            decimals = src.percent_decimals if src and src.percent_decimals is not None else dec
            k = consistent_count(p, trials, decimals)
            if k is None:
                raise InputError(
                    f"percent {p:g} is not any count out of {trials} rounded to {decimals} decimals",
                    path,
                    line,
                )
        if k > trials:
            raise InputError(f"successes {k} exceed trials {trials}", path, line)
        resolved.append(
            Observation(
                technique_id=tid,
                source_id=sid,
                successes=k,
                trials=trials,
                percent=p,
                trials_basis=basis,
                reported_as=r.get("reported_as", ""),
                location=r.get("location", ""),
                note_path=r.get("note_path", ""),
                line=line,
            )
        )
    digest = hashlib.sha256(raw + b"\0" + digest_src + repr(sorted(overrides.items())).encode()).hexdigest()
    return Evidence(path, tuple(resolved), source_table, recoveries, digest)
