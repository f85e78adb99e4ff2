"""Technique IDs as raw copies spell them, resolved to ATT&CK Enterprise v18.1.

Third-party copies of published tables carry IDs that ATT&CK no longer has (revoked,
deprecated), IDs of other ATT&CK domains (ICS, Mobile) and typing slips (``T1566:001``).
Every raw ID goes through :func:`resolve`:

1. an ID listed in ``data/id_decisions.csv`` for its file is corrected or left out as that
   hand-edited table says, with its reason;
2. any other ID must be in the bundled ATT&CK v18.1 table, or the build stops with one line
   naming the raw file and row (so a new slip is never dropped silently);
3. a revoked ID follows its chain of replacements to the live ID (T1086 -> T1059.001);
4. a deprecated ID, which has no replacement, is left out with its reason.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from attackprev.config import DATA_DIR, ID_DECISIONS_CSV
from attackprev.errors import InputError
from attackprev.evidence.attack import attack_table, check_technique_id, current_id
from attackprev.evidence.tables import read_table

DECISIONS = ("correct", "exclude")


@dataclass(frozen=True)
class Decision:
    """A hand-made decision about one raw ID in one raw file."""

    raw_file: str
    raw_id: str
    raw_name: str
    decision: str
    technique_id: str
    reason: str


@dataclass(frozen=True)
class Resolved:
    """Where a raw ID lands: a live v18.1 ID, or ``None`` with the reason it was left out.

    ``spelled`` is the ID after any correction and before revocations are followed;
    ``moved`` is False when a revocation merged the technique into a wider one (see :func:`is_move`).
    """

    raw_id: str
    technique_id: str | None
    note: str = ""
    spelled: str = ""
    moved: bool = True


def load_decisions(path: str | Path = ID_DECISIONS_CSV) -> dict[tuple[str, str], Decision]:
    """Read ``data/id_decisions.csv``, keyed by (raw file relative to ``data/``, raw ID)."""
    rows, _ = read_table(path, ["raw_file", "raw_id", "raw_name", "decision", "technique_id", "reason"])
    out: dict[tuple[str, str], Decision] = {}
    for line, r in rows:
        if r["decision"] not in DECISIONS:
            raise InputError(f"decision {r['decision']!r} must be one of {', '.join(DECISIONS)}", path, line)
        if r["decision"] == "correct":
            check_technique_id(r["technique_id"], path, line)
            if not attack_table()[r["technique_id"]].live:
                raise InputError(f"correction {r['technique_id']} is not a live ATT&CK v18.1 ID", path, line)
        elif r["technique_id"]:
            raise InputError("an 'exclude' decision takes no technique_id", path, line)
        if not r["reason"]:
            raise InputError("every decision needs a reason", path, line)
        key = (r["raw_file"], r["raw_id"])
        if key in out:
            raise InputError(f"duplicate decision for {r['raw_id']} in {r['raw_file']}", path, line)
        out[key] = Decision(**{k: r[k] for k in Decision.__dataclass_fields__})
    return out


def raw_key(path: str | Path) -> str:
    """A raw file's name relative to ``data/`` (how ``id_decisions.csv`` names it)."""
    return _raw_key(str(path))


@functools.cache
def _raw_key(path: str) -> str:
    path = Path(path)
    try:
        return path.resolve().relative_to(DATA_DIR.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def resolve(raw_id: str, decisions: dict[tuple[str, str], Decision], path: str | Path, line: int) -> Resolved:
    """Resolve one raw ID (see the module docstring).

    Parameters
    ----------
    raw_id
        The ID as the raw file writes it.
    decisions
        From :func:`load_decisions`.
    path, line
        The raw file and its line (or record number), for the error message.

    Returns
    -------
    Resolved

    Raises
    ------
    InputError
        For an ID that is neither in ATT&CK v18.1 nor covered by a decision.
    """
    raw_id = raw_id.strip()
    decision = decisions.get((raw_key(path), raw_id))
    if decision is not None:
        if decision.decision == "exclude":
            return Resolved(raw_id, None, f"left out: {decision.reason}", raw_id)
        note = f"corrected to {decision.technique_id}: {decision.reason}"
        return Resolved(raw_id, decision.technique_id, note, decision.technique_id)
    try:
        technique = check_technique_id(raw_id, path, line)
    except InputError as err:
        raise InputError(
            f"{err.message}; add a decision for it to {ID_DECISIONS_CSV.name} (correct or exclude, with a reason)",
            path,
            line,
        ) from None
    if technique.live:
        return Resolved(raw_id, raw_id, "", raw_id)
    live = current_id(raw_id)
    if not attack_table()[live].live:
        note = f"left out: {raw_id} {technique.name} is deprecated in ATT&CK v18.1 (no replacement)"
        return Resolved(raw_id, None, note, raw_id)
    note = f"{raw_id} {technique.name} is revoked; ATT&CK v18.1 replaced it with {live}"
    return Resolved(raw_id, live, note, raw_id, is_move(raw_id))


def _plain(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def is_move(technique_id: str) -> bool:
    """Whether following a revoked ID only moved the technique (same name at every step).

    T1086 PowerShell -> T1059.001 PowerShell is a move: a figure for the old ID is a figure for
    the new one. T1073 DLL Side-Loading -> T1574.001 DLL is a merge: the old technique is only
    part of the new one, so a published share of the old one is not the new one's share.
    """
    table = attack_table()
    names = {_plain(table[technique_id].name)}
    tid = technique_id
    while table[tid].revoked and table[tid].revoked_by in table:
        tid = table[tid].revoked_by
        names.add(_plain(table[tid].name))
    return len(names) == 1


@functools.cache
def absorbed(technique_id: str) -> tuple[str, ...]:
    """Revoked IDs that ATT&CK v18.1 merged into ``technique_id`` (not mere moves), sorted.

    A technique that absorbed others is wider in v18.1 than the technique of the same ID in an
    older publication (T1574.001, "DLL Search Order Hijacking" until v18, is now "DLL" and
    covers side-loading too).
    """
    out = []
    for t in attack_table().values():
        if t.revoked and not is_move(t.id) and current_id(t.id) == technique_id:
            out.append(t.id)
    return tuple(sorted(out))


def widened(technique_id: str, raw_name: str) -> str | None:
    """Why a figure named ``raw_name`` is not ``technique_id``'s in v18.1, or ``None``.

    When ``technique_id`` absorbed other techniques and the row calls it by another name than
    its v18.1 one, the row counts the older, narrower technique.
    """
    merged = absorbed(technique_id)
    own = raw_name.rpartition(":")[2].strip()
    if not merged or not own or _plain(own) == _plain(attack_table()[technique_id].name):
        return None
    return (
        f"ATT&CK v18.1 widened {technique_id} (now {attack_table()[technique_id].name!r}) by merging "
        f"{', '.join(merged)} into it; the row's {own!r} is the narrower, older technique"
    )


@functools.cache
def _names_index() -> dict[str, frozenset[str]]:
    """Plain name -> the live IDs of every table entry (live or revoked) with that name."""
    index: dict[str, set[str]] = {}
    for t in attack_table().values():
        live = current_id(t.id)
        if attack_table()[live].live:
            index.setdefault(_plain(t.name), set()).add(live)
    return {name: frozenset(ids) for name, ids in index.items()}


def name_conflict(technique_id: str, raw_name: str) -> str | None:
    """Whether a row's technique name names another technique than its ID does.

    The name's own part (after ``Parent:``) is looked up among every ATT&CK v18.1 name, live or
    revoked. It contradicts the ID when it names techniques of which none shares the ID's parent
    technique, and the ``Parent:`` part (if any) does not name the ID's parent either. A name
    found nowhere (renamed since, or typed differently) is not judged, nor is a sibling
    sub-technique's name (the parent-level count stays right).

    Parameters
    ----------
    technique_id
        A live ID (after corrections and revocations).
    raw_name
        The name as the row writes it.

    Returns
    -------
    str or None
        The contradiction, for the reason a row is left out.
    """
    parent_part, _, own = raw_name.rpartition(":")
    own = own.strip()
    if not own:
        return None
    index = _names_index()
    named = index.get(_plain(own), frozenset())
    family = technique_id.split(".", 1)[0]
    if not named or any(n.split(".", 1)[0] == family for n in named):
        return None
    if parent_part and any(n.split(".", 1)[0] == family for n in index.get(_plain(parent_part), frozenset())):
        return None
    others = ", ".join(sorted(named))
    name = attack_table()[technique_id].name
    return f"the row names {own!r} ({others}) but its ID resolves to {technique_id} ({name!r})"


def names_of(name: str) -> set[str]:
    """The live IDs of every ATT&CK v18.1 entry (live or revoked) named ``name`` (case and punctuation ignored)."""
    return set(_names_index().get(_plain(name), frozenset()))


def parent_of(technique_id: str) -> str | None:
    """The parent of a sub-technique, ``None`` for a technique."""
    return technique_id.split(".", 1)[0] if "." in technique_id else None


def live_techniques() -> list[str]:
    """Every live ATT&CK v18.1 Enterprise technique and sub-technique, sorted."""
    return sorted(t.id for t in attack_table().values() if t.live)
