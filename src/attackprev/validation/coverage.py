"""Frequentist coverage of credible intervals of μ over prior-predictive replicates.

Averaged over data sets drawn from the prior, a correct ℓ-credible interval contains the
true μ with probability exactly ℓ (for any ℓ and any interval rule). With R replicates the
number of hits is Binomial(R, ℓ), so the observed rate has standard error sqrt(ℓ(1 − ℓ)/R)
under the null; a rate more than :data:`Z_LIMIT` such errors from ℓ fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVELS = (0.5, 0.9, 0.94)
Z_LIMIT = 3.0


@dataclass(frozen=True)
class Coverage:
    """Coverage of one kind of interval at one level.

    Attributes
    ----------
    interval
        ``"central"`` (equal-tailed) or ``"hdi"``.
    level
        Nominal probability ℓ.
    hits, replicates
        Intervals that contained the truth, out of how many.
    """

    interval: str
    level: float
    hits: int
    replicates: int

    @property
    def rate(self) -> float:
        """Observed coverage."""
        return self.hits / self.replicates

    @property
    def se(self) -> float:
        """Binomial standard error of the rate if the nominal level is right."""
        return float(np.sqrt(self.level * (1.0 - self.level) / self.replicates))

    @property
    def z(self) -> float:
        """(rate − level) / se."""
        return (self.rate - self.level) / self.se

    @property
    def ci95(self) -> tuple[float, float]:
        """Wilson 95 % interval for the true coverage."""
        z, n, p = 1.959964, self.replicates, self.rate
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
        return float(centre - half), float(centre + half)

    def passed(self, z_limit: float = Z_LIMIT) -> bool:
        """Whether the rate is within ``z_limit`` standard errors of the level."""
        return abs(self.z) <= z_limit


def central_coverage(cdf_at_truth: np.ndarray, level: float) -> Coverage:
    """Coverage of the central ℓ interval, from the posterior CDF at each truth.

    The equal-tailed interval [q_{(1−ℓ)/2}, q_{(1+ℓ)/2}] contains the truth exactly when
    F(truth) lies in [(1 − ℓ)/2, (1 + ℓ)/2].
    """
    u = np.asarray(cdf_at_truth, float)
    tail = (1.0 - level) / 2.0
    hits = int(np.sum((u >= tail) & (u <= 1.0 - tail)))
    return Coverage("central", level, hits, len(u))


def coverage_table(
    cdf_at_truth: np.ndarray, in_hdi94: np.ndarray, levels: tuple[float, ...] = LEVELS
) -> list[Coverage]:
    """Central-interval coverage at each level, and that of the 94 % HDI the package reports."""
    rows = [central_coverage(cdf_at_truth, level) for level in levels]
    in_hdi94 = np.asarray(in_hdi94, bool)
    rows.append(Coverage("hdi", 0.94, int(in_hdi94.sum()), len(in_hdi94)))
    return rows
