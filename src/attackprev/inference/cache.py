"""What every saved posterior shares: the cache folder, the draws' digest, atomic netCDF files.

A fit is saved in the user's cache folder (``platformdirs``; ``ATTACKPREV_CACHE_DIR``
overrides it) under a key made of everything that decides its draws, with a SHA-256 of the
draws written beside them; a reader trusts a file only when both match.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import xarray as xr

from attackprev.atomic import write_bytes_atomic


def cache_root() -> Path:
    """The user's cache folder of attackprev (``ATTACKPREV_CACHE_DIR`` overrides it)."""
    env = os.environ.get("ATTACKPREV_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("attackprev"))


def draws_digest(tree: xr.DataTree) -> str:
    """SHA-256 of a saved posterior's numbers, variable by variable in a fixed order."""
    h = hashlib.sha256()
    for group in ("posterior", "sample_stats"):
        ds = tree[group].to_dataset()
        for name in sorted(ds.data_vars):
            h.update(f"{group}/{name}{ds[name].shape}".encode())
            h.update(np.ascontiguousarray(ds[name].values).tobytes())
    return h.hexdigest()


def save_tree(tree: xr.DataTree, path: Path) -> None:
    """Write ``tree`` to ``path`` (netCDF) atomically: the file appears whole or not at all."""
    import io

    buf = io.BytesIO()
    tree.to_netcdf(buf, engine="h5netcdf")
    write_bytes_atomic(path, buf.getvalue())


def load_tree(path: Path) -> xr.DataTree:
    """Read a saved tree fully into memory (the file is closed on return)."""
    with xr.open_datatree(path, engine="h5netcdf") as handle:
        return handle.load()
