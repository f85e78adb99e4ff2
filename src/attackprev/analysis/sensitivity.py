"""Which uncertain inputs move a simulation's answer most: first-order variance shares from the draws alone.

Each posterior draw d gives every mapped technique's probability θ_d (the inputs) and, through the
attack-graph engine, an estimate Ŷ_d of the answer (the probability that a target is reached) from M
simulated episodes. The first-order share of input i is

    S_i = Var(E[Y | θ_i]) / Var(Y),

the part of the answer's variance across the posterior that θ_i alone explains. It is estimated
from the same draws ("given data", no extra runs; Plischke 2010; Strong & Oakley 2013): sort the
draws by θ_i, cut them into B bins of equal count, and take the variance of the bins' means of Ŷ.
Two corrections keep the estimate honest:

- Monte Carlo noise. Ŷ_d = Y_d + ε_d with Var(ε_d) = Y_d(1 − Y_d)/M; it inflates Var(Ŷ) but not
  Var(E[Ŷ | θ_i]) (bins average it away), so the denominator is Var(Ŷ) minus the mean noise
  variance;
- finite bins. Even an input without effect gives bin means that vary by about σ²/n_b
  (n_b draws per bin); that expected amount, from the pooled within-bin variance, is subtracted.

The inputs are correlated in the posterior (techniques share the model's hyperparameters), so a
share counts what θ_i explains together with whatever moves with it, and the shares need not
sum to 1. They rank inputs; they do not apportion the variance exactly.
"""

from __future__ import annotations

import numpy as np


def bin_count(n: int) -> int:
    """Bins for ``n`` draws: about √n, between 5 and 50."""
    return int(min(50, max(5, round(np.sqrt(n)))))


def noise_variance(estimates: np.ndarray, episodes: int) -> float:
    """The mean Monte Carlo variance of per-draw binomial estimates from ``episodes`` episodes each (unbiased)."""
    y = np.asarray(estimates, dtype=float)
    if episodes < 2:
        return 0.0
    return float(np.mean(y * (1.0 - y)) / (episodes - 1))


def first_order_share(x: np.ndarray, y: np.ndarray, noise: float = 0.0, bins: int | None = None) -> float:
    """The first-order variance share of input ``x`` in answer ``y`` (see the module's docstring).

    Parameters
    ----------
    x
        The input's value per draw, shape ``(n,)``.
    y
        The answer's estimate per draw, shape ``(n,)``.
    noise
        The mean Monte Carlo variance of ``y`` (:func:`noise_variance`); 0 for exact answers.
    bins
        Number of equal-count bins (default :func:`bin_count`).

    Returns
    -------
    float
        The share, clipped to [0, 1]; 0 when the answer does not vary beyond its noise.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.size
    bins = bins or bin_count(n)
    total = float(np.var(y)) - noise
    if total <= 0.0 or np.ptp(x) == 0.0:
        return 0.0
    order = np.argsort(x, kind="stable")
    groups = np.array_split(y[order], bins)
    means = np.array([g.mean() for g in groups])
    sizes = np.array([g.size for g in groups])
    between = float(np.sum(sizes * (means - y.mean()) ** 2) / n)
    within = float(sum(((g - g.mean()) ** 2).sum() for g in groups) / (n - bins))
    # without any effect, E[between] = within * (bins - 1) / n
    share = (between - within * (bins - 1) / n) / total
    return float(np.clip(share, 0.0, 1.0))


def decile_swing(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The answer's mean over the draws in ``x``'s lowest and in its highest tenth."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    order = np.argsort(x, kind="stable")
    k = max(1, x.size // 10)
    return float(y[order[:k]].mean()), float(y[order[-k:]].mean())


def rank_inputs(inputs: np.ndarray, names: list[str], y: np.ndarray, episodes: int) -> list[dict]:
    """Every input's first-order share of the answer's variance and its decile swing, largest share first.

    Parameters
    ----------
    inputs
        Shape ``(n, k)``: each draw's value of the k inputs.
    names
        The inputs' names (length k).
    y
        Shape ``(n,)``: each draw's estimate of the answer from ``episodes`` Monte Carlo episodes.
    episodes
        Episodes behind each estimate (for the noise correction); 0 or 1 for exact answers.
    """
    noise = noise_variance(y, episodes) if episodes > 1 else 0.0
    rows = []
    for j, name in enumerate(names):
        low, high = decile_swing(inputs[:, j], y)
        rows.append(
            {
                "input": name,
                "share": first_order_share(inputs[:, j], y, noise),
                "low_decile": low,
                "high_decile": high,
            }
        )
    return sorted(rows, key=lambda r: (-r["share"], r["input"]))
