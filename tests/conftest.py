"""Shared fixtures: small CSV writers and one default T1102 fit reused by many tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attackprev.mal.dictionary import import_mal_clients

# mal-toolbox and mal-simulator write ./logs/ on import: import them away from the repo.
import_mal_clients("maltoolbox", "malsim")

ROOT = Path(__file__).resolve().parent.parent


def write_csv(path: Path, text: str) -> Path:
    """Write a CSV given as a dedented string."""
    import textwrap

    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def t1102_run(tmp_path_factory):
    """The default `attackprev fit T1102` (MCMC, all figures, multi-source headline), run once per worker."""

    from typer.testing import CliRunner

    from attackprev.cli import app

    out = tmp_path_factory.mktemp("reports")
    # the multi-source fit comes from the user's cache when `make report` has made it, else it is fitted here
    result = CliRunner().invoke(app, ["fit", "T1102", "--out", str(out)])
    folder = out / "t1102"
    summary = json.loads((folder / "summary.json").read_text()) if folder.exists() else None
    return {"result": result, "folder": folder, "summary": summary, "out": out}
