"""The notebooks run top to bottom, match their jupytext twins, and are committed with full-run outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from attackprev.analysis.weighting import FAST_ENV

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
TWINS = sorted(FOLDER.glob("[0-9]*.py"))
MAX_BYTES = 1_000_000


def test_every_notebook_has_a_text_twin():
    assert NOTEBOOKS, "no notebooks found in notebooks/"
    assert {p.stem for p in NOTEBOOKS} == {p.stem for p in TWINS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_twins_hold_the_same_cells(path):
    import jupytext

    notebook = jupytext.read(path)
    twin = jupytext.read(path.with_suffix(".py"))
    assert [(c.cell_type, c.source) for c in notebook.cells] == [(c.cell_type, c.source) for c in twin.cells], (
        f"{path.name} and its .py twin differ; run `jupytext --sync notebooks/{path.stem}.py`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_come_from_one_full_run(path):
    assert path.stat().st_size < MAX_BYTES
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "not run top to bottom in one go"
    for cell in code:
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name} was committed with an error"
            assert "Fast run" not in str(out.get("data", {}).get("text/markdown", "")), "committed from a fast run"


@pytest.mark.parametrize("path", TWINS, ids=lambda p: p.stem)
def test_notebooks_read_no_old_posterior(path):
    """The old multi-technique posterior (reports/techniques/posterior.nc) is gone; the notebooks read the
    multi-source fit instead."""
    assert "posterior.nc" not in path.read_text(encoding="utf-8")


def _output_text(nb) -> str:
    """Every markdown and text output of an executed notebook, joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            data = out.get("data", {})
            parts.append(str(data.get("text/markdown", "")) + str(data.get("text/plain", "")))
    return "\n".join(parts)


def _target_populations() -> set[str]:
    """What the default target family's sources count, as ``data/sources.csv`` words it."""
    from attackprev.config import DEFAULT_TARGET
    from attackprev.evidence.counts import load_counts

    table = load_counts()
    return {table.sources[s].population for s in table.used_sources() if table.sources[s].family == DEFAULT_TARGET}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch):
    """Execute the notebook in fast mode; any cell error fails the test. The kernel must be this interpreter.
    A fast run says so, and names the target population its probabilities are shares of."""
    from nbclient import NotebookClient

    monkeypatch.setenv(FAST_ENV, "1")
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    client = NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(FOLDER)}}, allow_errors=False
    )
    client.execute()
    prefix = "".join(o.get("text", "") for o in nb.cells[-1].outputs).strip()
    assert Path(prefix).resolve() == Path(sys.prefix).resolve(), "the python3 kernel is not this environment's Python"
    text = _output_text(nb)
    assert "fast run" in text.lower(), "a fast run must say so in its output"
    assert "target population" in text.lower()
    assert any(p in text for p in _target_populations()), "the outputs must name the target population"
