"""What the raw readers return: counted sources, published percentages and rows left out."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Counted:
    """A complete source counted from raw rows: which members (groups, reports, advisories) name each technique.

    Attributes
    ----------
    source_id
        The key in ``data/sources.csv``.
    trials
        n as counted from the raw rows (``None`` when the raw file cannot give it, e.g. ATT&CK's
        active groups that use no technique; ``sources.csv`` then states it).
    members
        Live ATT&CK v18.1 ID (as named, before any roll-up) -> the members naming it.
    raw_ids
        Live ID -> the raw IDs that were resolved to it, where they differ from it.
    in_file
        Distinct members that appear in the raw file (at most n).
    """

    source_id: str
    trials: int | None
    in_file: int = 0
    members: dict[str, set[str]] = field(default_factory=dict)
    raw_ids: dict[str, set[str]] = field(default_factory=dict)

    def add(self, technique_id: str, member: str, raw_id: str) -> None:
        """Record that ``member`` names ``technique_id`` (written ``raw_id`` in the raw file)."""
        self.members.setdefault(technique_id, set()).add(member)
        if raw_id != technique_id:
            self.raw_ids.setdefault(technique_id, set()).add(raw_id)


@dataclass(frozen=True)
class Percent:
    """One published percentage of a partial source, at its raw row."""

    source_id: str
    technique_id: str
    raw_id: str
    raw_name: str
    percent_text: str
    raw_file: str
    line: int
    spelled: str = ""
    moved: bool = True

    @property
    def percent(self) -> float:
        """The percentage as a number."""
        return float(self.percent_text)

    @property
    def ref(self) -> str:
        """``file:line``, the row's address."""
        return f"{self.raw_file}:{self.line}"


@dataclass(frozen=True)
class Left:
    """Raw rows not used, with why."""

    raw_file: str
    raw_rows: str
    source_id: str
    raw_id: str
    reason: str
