"""Which enterpriseLang step each technique maps to, and the probabilities to write there.

:func:`load_steps` reads the technique -> step table (``data/enterpriselang_steps.csv``);
:func:`published_time_factor` decides which part of a published TTC is kept;
:func:`estimates_from_reports` and :func:`estimates_from_catalogue` read each technique's
probability, its 94 % interval and the model that produced it.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from attackprev.config import CATALOGUE_DIR, DEFAULT_MODEL, STEPS_CSV
from attackprev.errors import InputError
from attackprev.mal.expressions import IDENTIFIER, _check_probability, _contains_bernoulli, _parse, _unwrap, parse_ttc

STEPS_COLUMNS = ("technique_id", "attack_step", "asset", "published_ttc", "source")
CATALOGUE_COLUMNS = ("technique_id", "p", "hdi_94_low", "hdi_94_high")
TECHNIQUE_ID = re.compile(r"T\d{4}(\.\d{3})?")


@dataclass(frozen=True)
class StepMapping:
    """One row of ``data/enterpriselang_steps.csv``.

    ``assets`` is empty when the asset is unknown (then every asset's step of that name
    is patched); several assets are written ``Windows;MacOS`` in the CSV.
    """

    technique_id: str
    attack_step: str
    assets: tuple[str, ...]
    published_ttc: str
    source: str

    def patch_keys(self) -> list[str]:
        """Keys for :func:`attackprev.mal.malfile.patch_mal`."""
        if not self.assets:
            return [self.attack_step]
        return [f"{a}.{self.attack_step}" for a in self.assets]


def load_steps(path: str | Path | None = None) -> dict[str, StepMapping]:
    """Read the technique -> enterpriseLang step table.

    Parameters
    ----------
    path
        The CSV (default ``data/enterpriselang_steps.csv``), with columns
        ``technique_id, attack_step, asset, published_ttc, source``.

    Returns
    -------
    dict
        :class:`StepMapping` by technique ID.

    Raises
    ------
    InputError
        For a missing column, a duplicate or malformed ID, a step or asset name that is
        not a MAL identifier, or a published TTC that cannot be read (see
        :func:`published_time_factor`).
    """
    path = Path(STEPS_CSV if path is None else path)
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            absent = [c for c in STEPS_COLUMNS if c not in (reader.fieldnames or [])]
            if absent:
                raise InputError(f"missing column(s) {', '.join(absent)}", path)
            rows = list(reader)
    except OSError as err:
        raise InputError(f"cannot read the step table: {err.strerror}", path) from err
    table: dict[str, StepMapping] = {}
    for line, row in enumerate(rows, start=2):
        tid = (row["technique_id"] or "").strip()
        step = (row["attack_step"] or "").strip()
        assets = tuple(a.strip() for a in (row["asset"] or "").split(";") if a.strip())
        if not TECHNIQUE_ID.fullmatch(tid):
            raise InputError(f"technique_id {tid!r} is not like T1102 or T1055.012", path, line)
        if tid in table:
            raise InputError(f"{tid} appears twice", path, line)
        for name in (step, *assets):
            if not IDENTIFIER.fullmatch(name):
                raise InputError(f"{name!r} is not a MAL identifier", path, line)
        mapping = StepMapping(tid, step, assets, (row["published_ttc"] or "").strip(), (row["source"] or "").strip())
        try:
            published_time_factor(mapping.published_ttc)
        except InputError as err:
            raise InputError(f"published_ttc: {err.message}", path, line) from err
        table[tid] = mapping
    return table


def published_expression(published: str) -> str:
    """The MAL expression at the start of a published TTC, without a trailing remark.

    ``'Exponential(1440) (Bernoulli(0.0122) computed in Findings but deliberately not
    used)'`` gives ``'Exponential(1440)'``.

    Parameters
    ----------
    published
        The published result as written in the step table.

    Returns
    -------
    str
        The longest leading part that is a valid MAL TTC expression.

    Raises
    ------
    InputError
        If no leading part is a valid expression.
    """
    text = published.strip()
    try:
        _parse(text)
        return text
    except InputError:
        pass
    for m in reversed(list(re.finditer(r"\s+\(", text))):
        head = text[: m.start()]
        try:
            _parse(head)
            return head
        except InputError:
            continue
    _parse(text)  # raises with the full text
    return text


def published_time_factor(published: str) -> tuple[str | None, str | None]:
    """The time factor to keep from an enterpriseLang TTC, and a remark if there is one.

    Decisions:

    * ``Bernoulli(p)*X`` (or ``X*Bernoulli(p)``): keep ``X`` verbatim; only the Bernoulli
      factor is replaced (and written after ``X``, see
      :func:`attackprev.mal.expressions.ttc_expression`).
    * lone ``Bernoulli(p)``: no time factor (the step takes no time).
    * no Bernoulli factor (``Exponential(1440)``, processHollowing.md): keep the whole
      expression as the time factor, followed by the new Bernoulli; a remark says so.
    * a lone ``TruncatedNormal(mean, sd)``: three enterpriseLang notes use it for the
      probability itself, in percent (e.g. ``TruncatedNormal(26.82,15.913)`` for T1032),
      with an instant TTC; it is not a time, so no time factor is kept; a remark says so.

    Parameters
    ----------
    published
        The note's published result (text after the expression is ignored, see
        :func:`published_expression`); empty means no time factor.

    Returns
    -------
    time_factor, remark
        ``time_factor`` is None for a zero-time step; ``remark`` is None when nothing
        needs saying.
    """
    if not published.strip():
        return None, "no published TTC; written as a zero-time step"
    expr = published_expression(published)
    parsed = parse_ttc(expr)
    if parsed.bernoulli is not None:
        if parsed.time_factor is not None and _contains_bernoulli(_parse(parsed.time_factor)):
            raise InputError(f"cannot separate the Bernoulli factor of {expr!r}")
        return parsed.time_factor, None
    node = _unwrap(_parse(expr))
    if node.kind == "call" and node.name == "TruncatedNormal":
        return None, (
            f"published {expr} is a probability in percent, not a time (not valid MAL "
            "for a probability); written as a zero-time step"
        )
    if _contains_bernoulli(node):
        raise InputError(f"cannot separate the Bernoulli factor of {expr!r}")
    return expr, f"published {expr} has no Bernoulli factor; kept as the time factor"


#: ``summary["mal"]["model"]`` of a report whose headline is the default, multi-technique
#: model; the catalogue table (``<reports>/techniques/catalogue.csv``) is that model's too.


@dataclass(frozen=True)
class Estimate:
    """One technique's probability for MAL and its 94 % interval, with where it came from.

    Attributes
    ----------
    technique_id
        ATT&CK ID, e.g. ``'T1102'``.
    p
        Probability that the step is available, in [0, 1].
    hdi_94
        94 % interval of ``p``, or None if the source gives none.
    origin
        The summary or CSV the value was read from.
    model
        The model that produced ``p``: ``'multi-source'`` (:data:`DEFAULT_MODEL`, the
        catalogue), ``'multi-technique'``, ``'single-technique'``, or None if a summary does not say.
    target
        The population whose share ``p`` is (the multi-source model's target family and its
        description), or None when the model states none.
    """

    technique_id: str
    p: float
    hdi_94: tuple[float, float] | None
    origin: Path
    model: str | None = DEFAULT_MODEL
    target: str | None = None


def _check_estimate(tid: Any, p: Any, hdi: Any, origin: Path, row: int | None, model: str | None) -> Estimate:
    if not isinstance(tid, str) or not TECHNIQUE_ID.fullmatch(tid.strip()):
        raise InputError(f"technique_id {tid!r} is not like T1102 or T1055.012", origin, row)
    try:
        value = _check_probability(p, "p")
    except InputError as err:
        raise InputError(f"{tid}: {err.message}", origin, row) from err
    interval = None
    if hdi is not None:
        try:
            lo, hi = (_check_probability(x, "hdi_94") for x in hdi)
        except (TypeError, ValueError, InputError) as err:
            raise InputError(f"{tid}: hdi_94 must be two numbers in [0, 1]", origin, row) from err
        if lo > hi:
            raise InputError(f"{tid}: hdi_94 lower bound {lo} > upper {hi}", origin, row)
        interval = (lo, hi)
    return Estimate(tid.strip(), value, interval, origin, model)


def estimates_from_reports(reports_dir: str | Path) -> list[Estimate]:
    """Read the technique reports ``<reports_dir>/*/summary.json``.

    Parameters
    ----------
    reports_dir
        A reports folder. Sub-folders without ``summary.json`` are skipped, and so is the
        catalogue's own folder (``techniques/``, read by :func:`estimates_from_catalogue`) and the
        synthesis's (``sources/``; it is not exported yet).

    Returns
    -------
    list of Estimate
        One per summary, in path order: ``p`` is ``summary["mal"]["p"]``, the interval
        ``summary["prevalence"]["hdi_94"]`` and the model ``summary["mal"]["model"]``
        (the report's headline model; None if absent).

    Raises
    ------
    InputError
        If the folder does not exist, or a summary cannot be read or has an invalid ID,
        ``p``, interval or model.
    """
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        raise InputError("reports folder not found", reports_dir)
    estimates = []
    for summary in sorted(reports_dir.glob("*/summary.json")):
        if summary.parent.name == CATALOGUE_DIR:
            continue  # the catalogue's and the synthesis's own summaries, not technique reports
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(f"cannot read summary: {err}", summary) from err
        if not isinstance(data, dict) or not isinstance(data.get("mal"), dict):
            raise InputError('summary has no "mal" section', summary)
        if "p" not in data["mal"]:
            raise InputError('summary has no "mal": {"p": ...}', summary)
        model = data["mal"].get("model")
        if model is not None and not isinstance(model, str):
            raise InputError(f'"mal": {{"model": ...}} must be a string, got {model!r}', summary)
        hdi = (data.get("prevalence") or {}).get("hdi_94")
        est = _check_estimate(data.get("technique_id"), data["mal"]["p"], hdi, summary, None, model)
        source = (data.get("models") or {}).get("multi_source") or {}
        target = f"{source['target']} ({source['target_description']})" if source.get("target") else None
        estimates.append(replace(est, target=target))
    return estimates


def estimates_from_catalogue(path: str | Path, model: str = DEFAULT_MODEL) -> list[Estimate]:
    """Read a catalogue CSV with columns ``technique_id, p, hdi_94_low, hdi_94_high``.

    Parameters
    ----------
    path
        The CSV (other columns are ignored); an empty interval pair means no interval.
    model
        The model recorded for every row (the catalogue table is the multi-technique
        model's, :data:`DEFAULT_MODEL`).

    Returns
    -------
    list of Estimate
        One per row, in file order.

    Raises
    ------
    InputError
        If the file cannot be read, lacks a column, or has an invalid ID, ``p`` or interval.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            absent = [c for c in CATALOGUE_COLUMNS if c not in (reader.fieldnames or [])]
            if absent:
                raise InputError(f"missing column(s) {', '.join(absent)}", path)
            rows = list(reader)
    except OSError as err:
        raise InputError(f"cannot read the catalogue: {err.strerror}", path) from err

    def number(text: str) -> float | str:
        try:
            return float(text)
        except ValueError:
            return text

    described = {}  # the target population in words, from the catalogue's summary beside the table
    try:
        summary = json.loads((path.parent / "summary.json").read_text(encoding="utf-8"))
        described[summary["target"]] = summary["target_description"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    estimates = []
    for line, row in enumerate(rows, start=2):
        hdi = None
        if row["hdi_94_low"].strip() or row["hdi_94_high"].strip():
            hdi = (number(row["hdi_94_low"]), number(row["hdi_94_high"]))
        est = _check_estimate(row["technique_id"], number(row["p"]), hdi, path, line, model)
        target = row.get("target") or None
        estimates.append(replace(est, target=f"{target} ({described[target]})" if target in described else target))
    return estimates
