"""ATT&CK v18.1 ``uses`` relationships: groups, software and campaigns per technique.

``data/raw/attack/attack_uses_v18.1.csv`` has one row per active relationship from a group
(intrusion set), software (malware or tool) or campaign to a technique or sub-technique.
"""

from __future__ import annotations

import re
from pathlib import Path

from attackprev.config import RAW_DIR
from attackprev.errors import InputError
from attackprev.evidence.ids import Decision, raw_key, resolve
from attackprev.evidence.raw.records import Counted, Left
from attackprev.evidence.tables import read_table

ATTACK_USES_CSV = RAW_DIR / "attack" / "attack_uses_v18.1.csv"

#: user_type -> (source_id, pattern of the user's ATT&CK ID)
USER_TYPES = {
    "group": ("attack_groups_v18", re.compile(r"^G\d{4}$")),
    "software": ("attack_software_v18", re.compile(r"^S\d{4}$")),
    "campaign": ("attack_campaigns_v18", re.compile(r"^C\d{4}$")),
}


def read_attack_uses(
    decisions: dict[tuple[str, str], Decision], path: str | Path = ATTACK_USES_CSV
) -> tuple[list[Counted], list[Left]]:
    """Count, per technique, the groups, software and campaigns that use it.

    Parameters
    ----------
    decisions
        From :func:`attackprev.evidence.ids.load_decisions`.
    path
        The raw relationships file.

    Returns
    -------
    (list of Counted, list of Left)
        One :class:`Counted` per user type (its ``trials`` is ``None``: active users without
        any technique are not in the file, so ``sources.csv`` states n); rows left out.
    """
    rows, _ = read_table(path, ["user_type", "user_id", "user_name", "technique_id", "relationship_created"])
    counted = {kind: Counted(source_id, None) for kind, (source_id, _) in USER_TYPES.items()}
    left: list[Left] = []
    seen: dict[tuple[str, str], int] = {}
    for line, r in rows:
        kind = r["user_type"]
        if kind not in USER_TYPES:
            raise InputError(f"user_type {kind!r} must be one of {', '.join(USER_TYPES)}", path, line)
        source_id, pattern = USER_TYPES[kind]
        if not pattern.match(r["user_id"]):
            raise InputError(f"user_id {r['user_id']!r} is not a {kind} ID", path, line)
        key = (r["user_id"], r["technique_id"])
        if key in seen:
            raise InputError(f"repeats the relationship of line {seen[key]}", path, line)
        seen[key] = line
        res = resolve(r["technique_id"], decisions, path, line)
        if res.technique_id is None:
            left.append(Left(raw_key(path), str(line), source_id, res.raw_id, res.note))
            continue
        counted[kind].add(res.technique_id, r["user_id"], res.raw_id)
    users = {kind: {r["user_id"] for _, r in rows if r["user_type"] == kind} for kind in USER_TYPES}
    for kind, c in counted.items():
        c.in_file = len(users[kind])
    return list(counted.values()), left
