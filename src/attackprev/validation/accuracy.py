"""Grid accuracy of the exact engine's summaries of μ, by refinement.

The mean and sd of μ are midpoint-rule sums (error O(h²)); the median and the 94 % HDI
come from the quantile function of the grid CDF. Interpolated linearly within cells (a
piecewise-constant density), that quantile function makes the HDI width piecewise linear
in the tail probability, so its minimum sits on a kink and one bound lands on a cell edge:
an O(h) error, up to 3·10⁻³ at 256 cells when this check first ran (``attackprev.inference.exact`` has
since moved to a monotone cubic). Refitting the same data on a grid ``factor`` times finer
measures how far each figure moves, and the share of HDIs with a bound on a cell edge
shows the snapping should it come back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logit

from attackprev.inference.exact import ExactPosterior, fit_exact
from attackprev.model.priors import Prior

FIGURES = ("mean", "sd", "median", "hdi_lo", "hdi_hi")
TOLERANCE = 1e-3  # the bound tests/test_exact.py holds T1102's figures to
EDGE_TOL = 0.01  # in cells


def mu_figures(post: ExactPosterior) -> np.ndarray:
    """(mean, sd, median, HDI low, HDI high) of μ."""
    s = post.mu
    return np.array([s.mean, s.sd, s.median, s.hdi_94[0], s.hdi_94[1]])


@dataclass(frozen=True)
class GridConvergence:
    """How far μ's figures move between two grid resolutions, over several data sets.

    Attributes
    ----------
    label
        Which data sets.
    resolution, refined
        Cells per axis of the two grids.
    change
        |figure(refined) − figure(resolution)|, shape (data sets, len(FIGURES)).
    sd
        Posterior sd of μ on the refined grid, one per data set.
    on_edge
        Fraction of the coarse grid's HDIs with a bound within ``EDGE_TOL`` of a cell edge
        (by chance about 4 %; the argmin of a piecewise-linear width sits on a kink, so a
        bound on an edge in nearly every HDI shows the O(h) snapping).
    """

    label: str
    resolution: int
    refined: int
    change: np.ndarray
    sd: np.ndarray
    on_edge: float

    def max_change(self) -> dict[str, float]:
        """Largest absolute change of each figure."""
        return dict(zip(FIGURES, self.change.max(axis=0), strict=True))

    def max_relative_change(self) -> dict[str, float]:
        """Largest change of each figure in units of the posterior sd."""
        return dict(zip(FIGURES, (self.change / self.sd[:, None]).max(axis=0), strict=True))

    @property
    def passed(self) -> bool:
        """Whether every figure moved less than :data:`TOLERANCE`."""
        return bool(self.change.max() < TOLERANCE)


def grid_convergence(
    label: str, successes: np.ndarray, trials: np.ndarray, prior: Prior, resolution: int = 256, factor: int = 4
) -> GridConvergence:
    """Fit each row of ``successes`` at ``resolution`` and ``factor × resolution`` cells per axis."""
    successes = np.atleast_2d(np.asarray(successes, float))
    change, sd, on_edge = [], [], []
    for y in successes:
        coarse = fit_exact(y, trials, prior, resolution=resolution)
        fine = fit_exact(y, trials, prior, resolution=factor * resolution)
        change.append(np.abs(mu_figures(fine) - mu_figures(coarse)))
        sd.append(fine.mu.sd)
        on_edge.append(any(hdi_on_cell_edge(coarse)))
    return GridConvergence(
        label, resolution, factor * resolution, np.array(change), np.array(sd), float(np.mean(on_edge))
    )


def hdi_on_cell_edge(post: ExactPosterior, tol: float = EDGE_TOL) -> list[bool]:
    """Whether each 94 % HDI bound of μ lies on a grid cell edge (within ``tol`` cells)."""
    edges, _ = post._cdf_edges("mu")
    h = edges[1] - edges[0]
    return [bool(np.min(np.abs(edges - logit(b))) < tol * h) for b in post.mu.hdi_94]
