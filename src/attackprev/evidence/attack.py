"""MITRE ATT&CK Enterprise technique IDs: validation and migration of revoked IDs.

The bundled table ``data/attack/enterprise_techniques_v18.1.csv`` lists every
Enterprise technique and sub-technique of ATT&CK v18.1, including revoked and
deprecated ones, so that IDs quoted in older publications (for example T1073
DLL Side-Loading) can be checked and followed to the ID that replaced them.
"""

from __future__ import annotations

import csv
import difflib
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from attackprev.config import ATTACK_DIR
from attackprev.errors import InputError

ATTACK_VERSION = "18.1"
ATTACK_TABLE = ATTACK_DIR / f"enterprise_techniques_v{ATTACK_VERSION}.csv"

_ID_RE = re.compile(r"T(\d{4})(?:\.(\d{3}))?")
_N_SUGGESTIONS = 3


@dataclass(frozen=True)
class Technique:
    """One ATT&CK Enterprise technique or sub-technique.

    Attributes
    ----------
    id
        The ATT&CK ID, ``T####`` or ``T####.###``.
    name
        The name as ATT&CK gives it; for a sub-technique, its own name only
        (see :attr:`display_name` for "Parent: Child").
    is_subtechnique
        Whether this is a sub-technique.
    revoked
        Whether ATT&CK revoked the ID (it was merged into or replaced by another).
    deprecated
        Whether ATT&CK deprecated the ID without a replacement.
    revoked_by
        For a revoked ID, the ID that replaced it (which may itself be revoked).
    url
        The technique's page on attack.mitre.org.
    tactics
        The tactics (kill-chain phases) it serves, e.g. ``("command-and-control",)``.
    """

    id: str
    name: str
    is_subtechnique: bool
    revoked: bool
    deprecated: bool
    revoked_by: str | None
    url: str
    tactics: tuple[str, ...] = ()

    @property
    def parent_id(self) -> str:
        """The parent technique's ID (the ID itself for a technique)."""
        return self.id.split(".", 1)[0]

    @property
    def display_name(self) -> str:
        """The name to show users: "Parent: Child" for a sub-technique."""
        if not self.is_subtechnique:
            return self.name
        parent = attack_table().get(self.parent_id)
        return self.name if parent is None else f"{parent.name}: {self.name}"

    @property
    def live(self) -> bool:
        """Whether the ID is current (neither revoked nor deprecated)."""
        return not (self.revoked or self.deprecated)


def _parse_bool(value: str, where: str) -> bool:
    if value == "True":
        return True
    if value == "False":
        return False
    raise InputError(f"expected True or False, got {value!r} ({where})", path=ATTACK_TABLE)


@functools.cache
def attack_table() -> dict[str, Technique]:
    """Load the bundled ATT&CK v18.1 Enterprise technique table.

    Returns
    -------
    dict[str, Technique]
        Every technique and sub-technique, keyed by ID, revoked and deprecated
        ones included. Loaded once and cached.

    Raises
    ------
    InputError
        If the bundled table is missing or malformed.
    """
    if not ATTACK_TABLE.is_file():
        raise InputError(
            "bundled ATT&CK table not found; reinstall attackprev or restore the file",
            path=ATTACK_TABLE,
        )
    table: dict[str, Technique] = {}
    with ATTACK_TABLE.open(newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            tid = row["technique_id"]
            if not _ID_RE.fullmatch(tid) or tid in table:
                raise InputError(f"bad or repeated technique ID {tid!r}", ATTACK_TABLE, line)
            is_sub = _parse_bool(row["is_subtechnique"], tid)
            if is_sub != ("." in tid):
                raise InputError(f"{tid}: is_subtechnique disagrees with the ID", ATTACK_TABLE, line)
            table[tid] = Technique(
                id=tid,
                name=row["name"],
                is_subtechnique=is_sub,
                revoked=_parse_bool(row["revoked"], tid),
                deprecated=_parse_bool(row["deprecated"], tid),
                revoked_by=row["revoked_by"] or None,
                url=row["url"],
                tactics=tuple(t for t in row["tactics"].split(";") if t),
            )
    return table


def _suggestions(technique_id: str, table: dict[str, Technique]) -> list[str]:
    """Return the nearest live IDs to a well-formed but unknown ID."""
    m = _ID_RE.fullmatch(technique_id)
    assert m is not None
    number, sub = int(m.group(1)), m.group(2)
    live = [t for t in table.values() if t.live]
    found: list[str] = []
    parent = f"T{m.group(1)}"
    if sub is not None and parent in table:
        # same parent first: the parent itself, then its sub-techniques by closeness
        siblings = sorted(
            (t for t in live if t.is_subtechnique and t.parent_id == parent),
            key=lambda t: abs(int(t.id[-3:]) - int(sub)),
        )
        found += [parent] + [t.id for t in siblings]
    else:
        # numerically nearest techniques at the same level
        same_level = [t for t in live if t.is_subtechnique == (sub is not None)]
        same_level.sort(key=lambda t: (abs(int(t.id[1:5]) - number), t.id))
        found += [t.id for t in same_level]
    found = found[:_N_SUGGESTIONS]
    for close in difflib.get_close_matches(technique_id, [t.id for t in live], n=_N_SUGGESTIONS):
        if close not in found:
            found.append(close)
    return sorted(found[:_N_SUGGESTIONS], key=lambda i: (i.split(".")[0], i))


def check_technique_id(technique_id: str, path: str | Path | None = None, row: int | None = None) -> Technique:
    """Check that an ATT&CK technique ID exists in ATT&CK v18.1.

    Revoked and deprecated IDs are accepted (publications quote the ID that was
    current at the time); use :func:`current_id` to follow them.

    Parameters
    ----------
    technique_id
        The ID as written, e.g. ``"T1102"`` or ``"T1574.002"``; surrounding
        whitespace is ignored.
    path, row
        Where the ID was read from, for the error message.

    Returns
    -------
    Technique
        The table entry for the ID.

    Raises
    ------
    InputError
        If the ID is malformed (not ``T####`` or ``T####.###`` with an upper-case
        T) or not in ATT&CK v18.1; the message suggests the nearest valid IDs.
    """
    if not isinstance(technique_id, str):
        raise InputError(f"ATT&CK technique ID must be text, got {technique_id!r}", path, row)
    tid = technique_id.strip()
    if not _ID_RE.fullmatch(tid):
        hint = ""
        if _ID_RE.fullmatch(tid.upper()):
            hint = f"; did you mean {tid.upper()!r}?"
        elif re.fullmatch(r"\d{4}(\.\d{3})?", tid):
            hint = f"; did you mean 'T{tid}'?"
        raise InputError(
            f"malformed ATT&CK technique ID {technique_id!r}: expected T#### or T####.###{hint}",
            path,
            row,
        )
    table = attack_table()
    technique = table.get(tid)
    if technique is None:
        near = ", ".join(_suggestions(tid, table))
        raise InputError(
            f"unknown ATT&CK technique ID {tid!r} (not in ATT&CK v{ATTACK_VERSION}); nearest valid IDs: {near}",
            path,
            row,
        )
    return technique


def _chain(technique_id: str) -> list[Technique]:
    """Return the technique followed by every ID it was revoked to, in order."""
    table = attack_table()
    chain = [check_technique_id(technique_id)]
    while chain[-1].revoked:
        target = chain[-1].revoked_by
        if target is None or target not in table:
            raise InputError(
                f"ATT&CK table: {chain[-1].id} is revoked but its replacement {target!r} is unknown",
                path=ATTACK_TABLE,
            )
        if any(t.id == target for t in chain):
            raise InputError(f"ATT&CK table: revocation cycle at {target}", path=ATTACK_TABLE)
        chain.append(table[target])
    return chain


def current_id(technique_id: str) -> str:
    """Follow revocations to the ID that is current in ATT&CK v18.1.

    Parameters
    ----------
    technique_id
        A valid ATT&CK technique ID, live or revoked.

    Returns
    -------
    str
        The ID itself when it is not revoked (a deprecated ID has no
        replacement and is returned unchanged); otherwise the end of its
        ``revoked_by`` chain, e.g. T1073 -> T1574.002 -> T1574.001.

    Raises
    ------
    InputError
        If the ID is malformed or unknown.
    """
    return _chain(technique_id)[-1].id


def describe_migration(technique_id: str) -> str | None:
    """Describe how an old ID maps onto ATT&CK v18.1, for reports.

    Parameters
    ----------
    technique_id
        A valid ATT&CK technique ID.

    Returns
    -------
    str or None
        ``None`` for a live ID. For a revoked ID, its chain of replacements, e.g.
        ``"T1086 PowerShell (revoked) -> T1059.001 Command and Scripting
        Interpreter: PowerShell"``. For a deprecated ID, a note that ATT&CK
        v18.1 has no replacement.

    Raises
    ------
    InputError
        If the ID is malformed or unknown.
    """
    chain = _chain(technique_id)
    first = chain[0]
    if first.live:
        return None
    if len(chain) == 1:
        return f"{first.id} {first.display_name} (deprecated; no replacement in ATT&CK v{ATTACK_VERSION})"
    steps = [f"{t.id} {t.display_name} (revoked)" for t in chain[:-1]]
    last = chain[-1]
    end = f"{last.id} {last.display_name}" + (" (deprecated)" if last.deprecated else "")
    return " -> ".join([*steps, end])
