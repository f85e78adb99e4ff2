"""Data quality of the published enterpriseLang notes: the checks, from the data tables only.

Each enterpriseLang note justifies a probability with a short computation, kept verbatim in
``data/enterpriselang_notes.csv`` (``published_arithmetic``, ``published_result``); the figures it
used are its rows in ``data/observations.csv`` and ``data/excluded.csv``. From those files only,
:func:`check_notes` recomputes

* every step of a note's arithmetic, and of the derived figures in its data rows
  (``100-37 = 73%``);
* the note's final value against the ``Bernoulli(p)`` of its result (or the mean of a
  ``TruncatedNormal`` in percent units);
* every quoted ``k of n (x %)`` / ``k/n = x %`` against its own k/n;
* its inputs: a number of the arithmetic that matches none of the note's figures, while one of its
  countable figures is unused and within 5 % of it, is a slip for that figure, and the note is
  recomputed with the figure as quoted;
* chart readings ``a/b = r % ... f1 * f2 = x %`` whose product does not use the ratio r;

and reports results without the Bernoulli factor their arithmetic derives, ``TruncatedNormal``
probabilities in percent units, and notes stored twice with different results.

A note row is *checked* when at least one published number could be compared with a
recomputation, and *reproduced* when every such number agrees to one unit of its last written
decimal (the notes truncate as often as they round).
"""

from __future__ import annotations

import csv
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from attackprev.config import DATA_DIR
from attackprev.evidence.audit.arithmetic import (
    Step,
    bernoulli_ps,
    chart_reading,
    distributions,
    percent_truncnormals,
    primary_result,
    quoted_ratios,
    recompute,
)
from attackprev.evidence.audit.numbers import (
    _ANNOTATION,
    _EPS,
    _N_VALUES,
    _SUM_OVER,
    Written,
    agrees,
    clean_arithmetic,
    format_number,
    format_written,
)

#: Kinds of finding, with the label the report uses.
KINDS = {
    "quoted ratio": "quoted percentage is not its own k/n",
    "step": "a step does not evaluate to the value written",
    "input": "an input differs from the note's own figure",
    "derived input": "a derived input uses the wrong factors",
    "result": "the result is not the value its arithmetic gives",
    "no Bernoulli": "the result drops the Bernoulli factor its arithmetic derives",
    "count": "the number of values averaged is not the number stated",
    "percent units": "TruncatedNormal in percent units used as a probability",
    "duplicate": "one note stored twice with different results",
}
#: Kinds meaning that a published number does not reproduce from the note's own inputs.
REPRODUCTION_KINDS = frozenset({"quoted ratio", "step", "input", "derived input", "result", "no Bernoulli"})

RELATIVE_SLIP = 0.05  # an unmatched input within 5 % of an unused figure is read as a slip for it
_NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}


@dataclass(frozen=True)
class Finding:
    """One data-quality problem of one note.

    Attributes
    ----------
    technique_id
        The note's technique (or mitigation, tactic) ID as in ``enterpriselang_notes.csv``.
    note_path
        The note's path inside the enterpriseLang repository.
    kind
        A key of :data:`KINDS`.
    published
        The number the note publishes (a probability where it is one), or None.
    recomputed
        The number recomputed from the note's own inputs, or None.
    detail
        One plain sentence with the numbers.
    """

    technique_id: str
    note_path: str
    kind: str
    published: float | None
    recomputed: float | None
    detail: str


@dataclass(frozen=True)
class QualityStats:
    """Note rows by outcome (a note stored in two versions is two rows).

    Attributes
    ----------
    notes
        Rows of ``enterpriselang_notes.csv``.
    checked
        Rows with at least one published number compared with a recomputation.
    reproduced, not_reproduced
        Checked rows without / with a finding of a kind in :data:`REPRODUCTION_KINDS`.
    not_checkable
        Rows that give nothing to compare (no figure, copied, ordinal, or not parsed).
    """

    notes: int
    checked: int
    reproduced: int
    not_reproduced: int
    not_checkable: int


@dataclass(frozen=True)
class QualityCheck:
    """Findings, counts, and each row's status keyed by (note_path, note_caveats)."""

    findings: list[Finding]
    stats: QualityStats
    status: dict[tuple[str, str], str] = field(default_factory=dict)


# ------------------------------------------------------------------------------ the data tables
@dataclass(frozen=True)
class _Figure:
    """One of a note's figures in ``observations.csv`` or ``excluded.csv``."""

    source: str
    reported_as: str
    candidates: tuple[float, ...]  # its numbers as written (and 100 k/n for a count)
    quoted: Written | None = None  # the percentage a countable figure is quoted as
    k: int | None = None
    n: int | None = None


def _read(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _numbers(text: str) -> list[Written]:
    pattern = r"(?<![\w.])(\d+(?:\.\d+)?)(\s*%)?"
    return [Written(m.group(1), bool(m.group(2))) for m in re.finditer(pattern, text.replace(",", ""))]


def _figures(data_dir: Path) -> dict[str, list[_Figure]]:
    sources = {s["source_id"]: s for s in _read(data_dir / "sources.csv")}
    by_note: dict[str, list[_Figure]] = defaultdict(list)
    for o in _read(data_dir / "observations.csv"):
        k = int(o["successes"]) if o.get("successes") else None
        n_text = o.get("trials") or sources.get(o.get("source_id", ""), {}).get("trials", "")
        n = int(n_text) if n_text else None
        written = [w for w in _numbers(o["reported_as"]) if w.text not in {str(k), str(n)}]
        quoted = Written(o["percent"], True) if o.get("percent") else next((w for w in written if w.percent), None)
        cands = [w.number for w in written] + ([100 * k / n] if k is not None and n else [])
        by_note[o["note_path"]].append(_Figure(o.get("source_id", ""), o["reported_as"], tuple(cands), quoted, k, n))
    for e in _read(data_dir / "excluded.csv"):
        cands = tuple(w.number for w in _numbers(e["reported_as"]))
        by_note[e["note_path"]].append(_Figure(e.get("source_key", ""), e["reported_as"], cands))
    return by_note


def _shares(figures: dict[str, list[_Figure]]) -> dict[str, float]:
    """Per source, the most common other factor of its chart readings that do use the ratio."""
    shares: dict[str, Counter] = defaultdict(Counter)
    for key in {(path, f.source, f.reported_as) for path, figs in figures.items() for f in figs}:
        reading = chart_reading(key[2])
        i = reading.ratio_factor() if reading else None
        if i is not None:
            shares[key[1]][reading.factors[1 - i].number] += 1
    return {s: c.most_common(1)[0][0] for s, c in shares.items()}


# ------------------------------------------------------------------------------ the checks
@dataclass
class _Note:
    """One note row being checked, and what was found."""

    row: dict[str, str]
    figures: list[_Figure]
    label: str = ""  # which stored version, when a note has several rows
    findings: list[Finding] = field(default_factory=list)
    checked: bool = False

    def __post_init__(self) -> None:
        self.arithmetic = self.row.get("published_arithmetic", "")
        self.result = self.row.get("published_result", "")
        self.rec = recompute(self.arithmetic)
        self.ps = bernoulli_ps(self.result)
        self.tns = percent_truncnormals(self.result)
        self.targets = self.ps + [m for m, _ in self.tns]

    def add(self, kind: str, published: float | None, recomputed: float | None, detail: str) -> None:
        published = None if published is None else float(published)
        recomputed = None if recomputed is None else round(float(recomputed), 12)
        detail = detail[:-1] + self.label + "." if detail.endswith(".") else detail + self.label
        row = self.row
        self.findings.append(Finding(row["technique_id"], row["note_path"], kind, published, recomputed, detail))

    def probability(self, x: float) -> float:
        """A recomputed value in the units of the published p (percent values divided by 100)."""
        if self.targets:
            return min((x, x / 100), key=lambda v: abs(v - self.targets[0].number))
        return x / 100 if x > 1 else x

    def effect(self, old: Written, new: float) -> tuple[float | None, str]:
        """The note's final value with ``old`` replaced by ``new``, and a clause saying so."""
        text = re.sub(
            rf"(?<![\d.]){re.escape(old.text)}(?!\d|\.\d)",
            format_number(new),
            _ANNOTATION.sub(" ", self.arithmetic),
            count=1,
        )
        final = recompute(text, carry_written=False).final
        if final is None or not self.targets:
            return None, ""
        what = "the mean of its inputs" if self.rec.uses_mean else "its result"
        p = self.probability(final)
        return p, f"; {what} is then {format_number(p)} vs published {self.targets[0].text}"


def _shown(step: Step) -> str:
    return format_number(step.shown()) + (" %" if step.written.percent else "")


def _check_steps(note: _Note) -> None:
    for step in note.rec.bad_steps:
        w = step.written
        note.add(
            "step",
            w.value,
            step.shown() / 100 if w.percent else step.shown(),
            f"writes {step.expression} = {format_written(w)}, but it evaluates to {_shown(step)}.",
        )
    for fig in note.figures:  # derived figures in the data rows ("100-37 = 73%")
        rec = recompute(fig.reported_as)
        note.checked |= rec.compared > 0
        for step in rec.bad_steps:
            w = step.written
            _, effect = note.effect(w, step.shown())
            note.add(
                "step",
                w.value,
                step.shown() / 100 if w.percent else step.shown(),
                f"its {fig.source} figure writes {step.expression} = {format_written(w)}, but it evaluates to "
                f"{_shown(step)}{effect}.",
            )


def _check_result(note: _Note) -> None:
    final = note.rec.final
    if final is None:
        return
    note.checked = True
    expression = primary_result(note.result)
    if not note.targets:
        p = note.probability(final)
        note.add(
            "no Bernoulli",
            None,
            p,
            f"its arithmetic gives p = {format_number(p)} but its result, {expression}, has no Bernoulli factor.",
        )
    elif not any(agrees(final, t) for t in note.targets):
        p = note.probability(final)
        what = "the mean of its inputs" if note.rec.uses_mean else "its arithmetic"
        note.add(
            "result", note.targets[0].number, p, f"{what} gives {format_number(p)} but its result is {expression}."
        )


def _check_counts(note: _Note) -> None:
    said = re.search(r"\b(?:average|mean) of (?:these |the )?(two|three|four|five|six|seven|eight)\b", note.arithmetic)
    n = len(note.rec.mean_values)
    if said and n and _NUMBER_WORDS[said.group(1)] != n:
        note.add("count", _NUMBER_WORDS[said.group(1)], n, f"says '{said.group(0)}' but averages {n} values.")
    cleaned = clean_arithmetic(note.arithmetic)
    listed = _N_VALUES.search(cleaned)
    if listed and int(listed.group(1)) != len(listed.group(2).split(",")):
        k = len(listed.group(2).split(","))
        note.add("count", int(listed.group(1)), k, f"says the mean of {listed.group(1)} values but lists {k}.")
    for m in _SUM_OVER.finditer(cleaned):
        k = len(m.group(1).split("+"))
        if k != int(m.group(2)):
            note.add("count", int(m.group(2)), k, f"divides the sum of {k} values ({m.group(1)}) by {m.group(2)}.")


def _check_units(note: _Note) -> None:
    for mean, sd in note.tns:
        values = note.rec.mean_values
        sd_clause = ""
        if len(values) > 1:
            sds = (statistics.pstdev(values), statistics.stdev(values))
            if not any(abs(s - sd.number) <= sd.unit + _EPS for s in sds):
                sd_clause = (
                    f"; its SD {sd.text} is neither the population ({format_number(sds[0])}) "
                    f"nor the sample SD ({format_number(sds[1])})"
                )
        note.add(
            "percent units",
            mean.number,
            mean.number / 100,
            f"TruncatedNormal({mean.text},{sd.text}) is in percent units, not a probability in [0, 1] "
            f"(as a Bernoulli p its mean would be {format_number(mean.number / 100)}){sd_clause}.",
        )


def _check_quotes(note: _Note, seen: set) -> None:
    texts = [("", note.arithmetic)] + [(f.source, f.reported_as) for f in note.figures]
    for source, text in texts:
        for k, n, w in quoted_ratios(text):
            note.checked = True
            key = (note.row["note_path"], k, n, w.text)
            if agrees(k / n, w) or key in seen:
                continue
            seen.add(key)
            carried = any(agrees(w.value, p) for p in note.ps)
            where = f" (its {source} figure)" if source else ""
            note.add(
                "quoted ratio",
                w.value,
                k / n,
                f"writes {k}/{n} as {w.text} %{where} but {k}/{n} = {format_number(100 * k / n)} %"
                + (f"; its result Bernoulli({note.ps[0].text}) carries the slip." if carried else "."),
            )


def _check_inputs(note: _Note) -> None:
    """A number of the arithmetic matching none of the note's figures, close to an unused one."""
    rec = note.rec
    if rec.final is None or not rec.leaves:
        return

    def matches(leaf: Written, candidates) -> bool:
        return any(abs(leaf.number - v) <= leaf.unit + _EPS for c in candidates for v in (c, 100 * c, c / 100))

    stray = [leaf for leaf in rec.leaves if not matches(leaf, [c for f in note.figures for c in f.candidates])]
    for fig in note.figures:
        note.checked = True
        if fig.quoted is None or any(matches(leaf, fig.candidates) for leaf in rec.leaves):
            continue
        near = [w for w in stray if abs(w.number - fig.quoted.number) <= RELATIVE_SLIP * fig.quoted.number]
        if not near:
            continue
        leaf = min(near, key=lambda w: abs(w.number - fig.quoted.number))
        p, effect = note.effect(leaf, fig.quoted.number)
        quote = f"{fig.k}/{fig.n} = {format_written(fig.quoted)}" if fig.k is not None else format_written(fig.quoted)
        published = note.targets[0].number if note.targets else None
        note.add("input", published, p, f"quotes {quote} ({fig.source}) but uses {format_written(leaf)}{effect}.")


def _check_readings(note: _Note, shares: dict[str, float]) -> None:
    for fig in note.figures:
        reading = chart_reading(fig.reported_as)
        if reading is None:
            continue
        note.checked = True
        if reading.ratio_factor() is not None:
            continue
        share = shares.get(fig.source)
        corrected = None if share is None else reading.ratio.value * share
        f1, f2 = reading.factors
        detail = (
            f"computes {f1.text} x {f2.text} = {format_written(reading.product)} where its own figures give "
            f"{reading.a}/{reading.b} = {reading.ratio.text} %"
        )
        if corrected is not None:
            _, effect = note.effect(reading.product, 100 * corrected if reading.product.percent else corrected)
            detail += (
                f" and the share {format_number(share)} of the other {fig.source} readings: "
                f"{format_number(reading.ratio.value)} x {format_number(share)} = "
                f"{format_number(100 * corrected)} %{effect}"
            )
        note.add("derived input", reading.product.value, corrected, detail + ".")


def _duplicates(notes: list[dict[str, str]]) -> list[Finding]:
    """Technique notes stored twice (both folders, or two versions) with different results."""
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for n in notes:
        if n.get("note_kind", "technique") == "technique":
            groups[(n["technique_id"], n["note_path"].rsplit("/", 1)[-1])].append(n)
    out = []
    for (tid, name), rows in groups.items():
        if len({tuple(distributions(r["published_result"])) for r in rows}) < 2:
            continue
        ps = bernoulli_ps(rows[0]["published_result"])
        each = "; ".join(f"'{r['note_path'].rsplit('/', 1)[0]}' gives {r['published_result']}" for r in rows)
        detail = f"{name} is stored {len(rows)} times with different results: {each}."
        out.append(Finding(tid, rows[0]["note_path"], "duplicate", ps[0].number if ps else None, None, detail))
    return out


def check_notes(data_dir: str | Path = DATA_DIR) -> QualityCheck:
    """Recompute every note of ``data_dir`` and collect its data-quality findings.

    Parameters
    ----------
    data_dir
        Folder with ``enterpriselang_notes.csv`` and, optionally, ``observations.csv``,
        ``excluded.csv`` and ``sources.csv``.

    Returns
    -------
    QualityCheck
        Findings in note order (duplicates last), counts, and each row's status
        (``reproduced``, ``not reproduced``, ``not checkable``).
    """
    data_dir = Path(data_dir)
    rows = _read(data_dir / "enterpriselang_notes.csv")
    figures = _figures(data_dir)
    shares = _shares(figures)
    versions = Counter(r["note_path"] for r in rows)
    findings: list[Finding] = []
    status: dict[tuple[str, str], str] = {}
    seen: set = set()
    for row in rows:
        commit = re.search(r"commit ([0-9a-f]{7})", row.get("note_caveats", ""))
        label = f" (version {commit.group(1)})" if versions[row["note_path"]] > 1 and commit else ""
        note = _Note(row, figures.get(row["note_path"], []), label)
        if not re.match(r"\s*(none|n/a)\b", note.arithmetic, re.I):
            note.checked = note.rec.compared > 0
            for check in (_check_steps, _check_result, _check_counts, _check_units, _check_inputs):
                check(note)
        else:
            _check_units(note)
        _check_quotes(note, seen)
        _check_readings(note, shares)
        new = [f for f in note.findings if (f.note_path, f.kind, f.detail) not in seen]
        seen.update((f.note_path, f.kind, f.detail) for f in new)
        findings += new
        bad = any(f.kind in REPRODUCTION_KINDS for f in note.findings)
        key = (row["note_path"], row.get("note_caveats", ""))
        status[key] = "not reproduced" if bad else "reproduced" if note.checked else "not checkable"
    findings += _duplicates(rows)
    counts = Counter(status.values())
    stats = QualityStats(
        notes=len(rows),
        checked=counts["reproduced"] + counts["not reproduced"],
        reproduced=counts["reproduced"],
        not_reproduced=counts["not reproduced"],
        not_checkable=counts["not checkable"],
    )
    return QualityCheck(findings, stats, status)


def note_findings(data_dir: str | Path = DATA_DIR) -> list[Finding]:
    """The data-quality findings of every enterpriseLang note, computed from the data tables.

    Parameters
    ----------
    data_dir
        Folder with the tables (default: the package's ``data/``).

    Returns
    -------
    list[Finding]
        One finding per problem (see :func:`check_notes` for the counts).
    """
    return check_notes(data_dir).findings
