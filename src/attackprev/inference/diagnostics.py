"""Sampler health (divergences, R-hat, ESS) and the package versions a result records."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata

import xarray as xr

from attackprev.config import DIAGNOSTIC_LIMITS

#: Packages whose versions every saved result records.
PACKAGES = ("attackprev", "pymc", "pytensor", "arviz", "nutpie", "numba", "numpy", "scipy", "xarray")


@dataclass
class Diagnostics:
    """Sampler health, with the reasons a run fails."""

    divergences: int
    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    chains: int
    draws: int
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def to_dict(self) -> dict:
        """Plain data for ``summary.json``."""
        return asdict(self) | {"passed": self.passed, "limits": DIAGNOSTIC_LIMITS}


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that produce a result."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def diagnose(tree: xr.DataTree, min_ess_bulk: float | None = None) -> Diagnostics:
    """Divergences, worst R-hat and smallest ESS over every posterior quantity."""
    import arviz as az

    limit = DIAGNOSTIC_LIMITS["min_ess_bulk"] if min_ess_bulk is None else min_ess_bulk
    post = tree["posterior"]
    rhat = az.rhat(tree).to_dataset()
    ess_bulk = az.ess(tree, method="bulk").to_dataset()
    ess_tail = az.ess(tree, method="tail").to_dataset()
    diag = Diagnostics(
        divergences=int(tree["sample_stats"]["diverging"].sum()),
        max_rhat=float(max(float(rhat[v].max()) for v in rhat.data_vars)),
        min_ess_bulk=float(min(float(ess_bulk[v].min()) for v in ess_bulk.data_vars)),
        min_ess_tail=float(min(float(ess_tail[v].min()) for v in ess_tail.data_vars)),
        chains=int(post.sizes["chain"]),
        draws=int(post.sizes["draw"]),
    )
    if diag.divergences > DIAGNOSTIC_LIMITS["divergences"]:
        diag.problems.append(f"{diag.divergences} divergent transitions")
    if not diag.max_rhat <= DIAGNOSTIC_LIMITS["max_rhat"]:
        diag.problems.append(f"max R-hat {diag.max_rhat:.3f} > {DIAGNOSTIC_LIMITS['max_rhat']}")
    if not diag.min_ess_bulk >= limit:
        diag.problems.append(f"min bulk ESS {diag.min_ess_bulk:.0f} < {limit:.0f}")
    return diag
