"""Figure workers: forked early, they draw the same files as this process, and failures are redrawn here."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from attackprev.inference.summaries import Headline
from attackprev.reporting.figure_workers import FigureWorkers
from attackprev.reporting.figures import FILENAMES, example_tree, write_figures
from tests.reporting.test_figures import assert_real_png

ARGS = (0.0445, (0.015, 0.17), "T1102")


@pytest.fixture
def workers():
    started = FigureWorkers.start()
    if started is None:
        pytest.skip("figure workers need Linux, two CPUs and the Agg backend")
    yield started
    started.close()


def _headline(tree) -> Headline:
    post = tree["posterior"]
    return Headline(mu=post["mu"].values * 0.8, theta_new=post["theta_new"].values)


def _same_files(a: Path, b: Path) -> None:
    for name in FILENAMES.values():
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs"


def test_workers_draw_the_files_this_process_draws(workers, tmp_path: Path) -> None:
    tree = example_tree()
    headline = _headline(tree)
    pending = workers.submit(tree, tmp_path / "job", *ARGS, headline=headline)
    files = pending.collect(tmp_path / "collected")
    assert files == FILENAMES
    assert not (tmp_path / "job").exists(), "the job's folder is removed once collected"
    write_figures(tree, tmp_path / "here", *ARGS, headline=headline)
    _same_files(tmp_path / "collected", tmp_path / "here")
    for name in files.values():
        assert_real_png(tmp_path / "collected" / name)
    assert pending.errors == []


def test_a_dead_worker_figures_are_drawn_here(workers, tmp_path: Path) -> None:
    os.kill(workers.pids[0], signal.SIGKILL)
    os.waitpid(workers.pids[0], 0)
    tree = example_tree()
    pending = workers.submit(tree, tmp_path / "job", *ARGS)
    files = pending.collect(tmp_path / "collected")
    assert files == FILENAMES
    write_figures(tree, tmp_path / "here", *ARGS)
    _same_files(tmp_path / "collected", tmp_path / "here")


def test_a_failing_figure_is_redrawn_here_and_its_error_raised(workers, tmp_path: Path) -> None:
    from attackprev.errors import InputError

    tree = example_tree()
    del tree["posterior_predictive"]
    pending = workers.submit(tree, tmp_path / "job", *ARGS)
    with pytest.raises(InputError, match="posterior_predictive"):
        pending.collect(tmp_path / "collected")
    assert pending.errors and all("posterior_predictive" in e for e in pending.errors)
    assert not (tmp_path / "job").exists()


def test_a_discarded_job_leaves_the_workers_in_step(workers, tmp_path: Path) -> None:
    first, second = example_tree(seed=1), example_tree(seed=2)
    workers.submit(first, tmp_path / "first", *ARGS).discard()
    assert not (tmp_path / "first").exists()
    workers.submit(second, tmp_path / "second", *ARGS).collect(tmp_path / "collected")
    write_figures(second, tmp_path / "here", *ARGS)
    _same_files(tmp_path / "collected", tmp_path / "here")


def test_close_ends_every_worker() -> None:
    started = FigureWorkers.start()
    if started is None:
        pytest.skip("figure workers need Linux, two CPUs and the Agg backend")
    pids = list(started.pids)
    started.close()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
