"""Recovering unpublished denominators from rounded percentages.

For a source that publishes only rounded percentages, :func:`recover_denominator` finds the
trial counts n for which every one of the source's percentages is some k/n rounded to the
published decimals (a GRIM-style rounding-consistency check; Brown & Heathers 2017). For
M-Trends 2020 the smallest is 227, so 3.96 % is 9 of 227 (:func:`consistent_count`). The result
is an inference and is labelled as one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_DENOMINATOR = 5000


@dataclass(frozen=True)
class Recovery:
    """A denominator recovered from rounded percentages."""

    source_id: str
    trials: int
    candidates: tuple[int, ...]
    percents: tuple[float, ...]
    decimals: int

    def describe(self) -> str:
        """One sentence for reports."""
        more = ", ".join(str(c) for c in self.candidates[1:4])
        also = f" (multiples such as {more} fit too)" if more else ""
        return (
            f"{self.source_id} publishes no denominator; all {len(self.percents)} of its "
            f"percentages are k/{self.trials} rounded to {self.decimals} decimals, the smallest "
            f"such denominator among 1..{MAX_DENOMINATOR}{also}. This is an inference."
        )


def consistent_count(percent: float, trials: int, decimals: int) -> int | None:
    """The count k whose share of ``trials``, rounded to ``decimals``, is ``percent``.

    Parameters
    ----------
    percent
        A published percentage.
    trials
        A candidate denominator.
    decimals
        How many decimals the percentage is rounded to.

    Returns
    -------
    int or None
        The k with round(100 k / trials, decimals) == percent (the closest if several),
        or ``None`` if there is none.
    """
    k = round(percent * trials / 100.0)
    half = 0.5 * 10.0 ** (-decimals) + 1e-9
    best = None
    for cand in (k - 1, k, k + 1):
        if 0 <= cand <= trials and abs(100.0 * cand / trials - percent) <= half:
            if best is None or abs(100.0 * cand / trials - percent) < abs(100.0 * best / trials - percent):
                best = cand
    return best


def recover_denominator(
    percents: Iterable[float], decimals: int, source_id: str = "", limit: int = MAX_DENOMINATOR
) -> Recovery:
    """Find the trial counts consistent with every rounded percentage of a source.

    Parameters
    ----------
    percents
        The source's published percentages.
    decimals
        How many decimals they are rounded to.
    source_id
        For messages.
    limit
        Largest denominator tried.

    Returns
    -------
    Recovery
        With ``trials`` the smallest consistent denominator.

    Raises
    ------
    ValueError
        If no denominator up to ``limit`` fits all of them.
    """
    values = tuple(sorted(set(percents)))
    candidates = tuple(
        n for n in range(1, limit + 1) if all(consistent_count(p, n, decimals) is not None for p in values)
    )
    if not candidates:
        raise ValueError(
            f"no denominator up to {limit} makes all of {source_id}'s percentages "
            f"({', '.join(f'{p:g}' for p in values)}) counts rounded to {decimals} decimals"
        )
    return Recovery(source_id, candidates[0], candidates, values, decimals)
