"""Drawing a report's figures in worker processes forked before the model is compiled.

A default run spends a few seconds compiling the model (one core, Numba) and then about two
seconds drawing six figures, besides writing ``posterior.nc`` and the report.
:class:`FigureWorkers` forks its workers at the start of a command, once the libraries are
imported but before any sampler thread exists. At low priority, each worker pays
matplotlib's and ArviZ's first-figure costs while the parent compiles, then waits. As soon as
a fit's draws exist, :meth:`FigureWorkers.submit` sends each worker its share of the figures
and returns, so they are drawn while the parent computes and writes the rest of the report;
:meth:`PendingFigures.collect` gathers them.

The workers run :func:`attackprev.reporting.figures.write_figures` on the same data, so the files are the
ones drawing them here would give. A figure a worker fails to draw is drawn here instead
(and its error, if it fails again, is raised here). Workers exist only where forking is safe
and useful: Linux, two or more usable CPUs, and the headless Agg backend; elsewhere
:meth:`FigureWorkers.start` returns ``None`` and the caller draws the figures itself.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attackprev.reporting.figures import FILENAMES, write_figures

#: Figures per worker, balanced by their drawing time (about 0.8 s each group on 2 cores).
GROUPS = (("trace", "mu_posterior", "prior_posterior"), ("rank", "ppc", "forest"))
#: Workers run at this lower priority, so they use the cycles the parent's compilation (one core,
#: on the critical path) leaves free; measured on 2 cores, nice 0 made cold runs ~1 s slower.
NICENESS = 10


def _warm_up(keys: tuple[str, ...]) -> None:
    """Draw ``keys`` once on a small synthetic fit: pays the first-figure costs in advance.

    Those are lazy imports, matplotlib's font cache and ArviZ's compiled helpers, about half
    a second per worker, paid while the parent compiles the model.
    """
    import shutil
    import tempfile

    from attackprev.inference.summaries import Headline
    from attackprev.reporting.figures import example_tree

    tree = example_tree(draws=200, seed=0)
    headline = Headline(mu=tree["posterior"]["mu"].values, theta_new=tree["posterior"]["theta_new"].values)
    folder = tempfile.mkdtemp(prefix="attackprev-warm-up-")
    try:
        write_figures(tree, Path(folder), 0.05, (0.01, 0.1), "T0000", headline=headline, keys=keys)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _serve(conn: Any, keys: tuple[str, ...]) -> None:
    """A worker's life: warm up on ``keys``, then draw each job received until the parent hangs up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        os.nice(NICENESS)
    except OSError:
        pass
    try:
        _warm_up(keys)
    except Exception:  # a failed warm-up only costs time; the job may still work
        pass
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            write_figures(**job)
            conn.send(None)
        except BaseException as err:  # reported to the parent, which redraws
            conn.send(f"{type(err).__name__}: {err}")


def usable() -> bool:
    """Whether workers can draw figures here: Linux, two or more CPUs, a headless backend."""
    if sys.platform != "linux" or not hasattr(os, "fork") or len(os.sched_getaffinity(0)) < 2:
        return False
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    return matplotlib.get_backend().lower() == "agg"


@dataclass
class PendingFigures:
    """Figures being drawn by the workers; :meth:`wait` returns ``{key: filename}``."""

    workers: FigureWorkers
    job: dict  # arguments of attackprev.reporting.figures.write_figures, without ``keys``
    keys: tuple[str, ...]  # every figure of the job
    sent: list[tuple[Any, tuple[str, ...]]]  # (worker connection, its figures)
    local: list[str] = field(default_factory=list)  # figures no worker took: drawn here
    errors: list[str] = field(default_factory=list)  # what went wrong in a worker
    done: bool = False

    def wait(self) -> dict[str, str]:
        """Wait for every worker; draw here whatever a worker could not."""
        if not self.done:
            self.done = True
            redraw = list(self.local)
            for conn, keys in self.sent:
                try:
                    error = conn.recv()
                except (EOFError, OSError) as err:
                    error = f"worker lost ({type(err).__name__})"
                    self.workers.discard(conn)
                if error is not None:
                    self.errors.append(error)
                    redraw.extend(keys)
            if redraw:
                write_figures(**self.job, keys=tuple(redraw))
        return {k: FILENAMES[k] for k in FILENAMES if k in self.keys}

    def collect(self, dest: Path) -> dict[str, str]:
        """Wait, move the figures from the job's folder into ``dest`` and remove that folder."""
        import shutil

        src = Path(self.job["out_dir"])
        try:
            files = self.wait()
            Path(dest).mkdir(parents=True, exist_ok=True)
            for name in files.values():
                shutil.move(src / name, Path(dest) / name)
        finally:
            shutil.rmtree(src, ignore_errors=True)
        return files

    def discard(self) -> None:
        """Let the workers finish (so they are free for the next job) and delete what they drew."""
        import shutil

        try:
            self.wait()
        except Exception:  # the figures are not wanted any more
            pass
        finally:
            shutil.rmtree(self.job["out_dir"], ignore_errors=True)


class FigureWorkers:
    """Processes forked early that draw report figures on request.

    Create them with :meth:`start` (``None`` where workers cannot be used) and end them with
    :meth:`close`, or use them as a context manager.
    """

    def __init__(self, processes: int = len(GROUPS)) -> None:
        from multiprocessing import Pipe

        self.conns: list[Any] = []
        self.pids: list[int] = []
        sys.stdout.flush()
        sys.stderr.flush()
        for i in range(processes):
            parent, child = Pipe()
            pid = os.fork()
            if pid == 0:  # the worker: serve, then leave without the parent's exit handlers
                code = 1
                try:
                    parent.close()
                    for other in self.conns:
                        other.close()
                    _serve(child, GROUPS[i % len(GROUPS)])
                    code = 0
                finally:
                    os._exit(code)
            child.close()
            self.conns.append(parent)
            self.pids.append(pid)

    @classmethod
    def start(cls, processes: int = len(GROUPS)) -> FigureWorkers | None:
        """Fork the workers, or return ``None`` where they cannot be used (see :func:`usable`)."""
        if not usable():
            return None
        import arviz  # noqa: F401  (imported once, before forking, rather than in every worker)

        return cls(processes)

    def submit(
        self,
        tree: Any,
        out_dir: Path,
        point_estimate: float,
        hdi_mu: tuple[float, float],
        technique_id: str,
        **kwargs: Any,
    ) -> PendingFigures:
        """Send each worker its group of figures (arguments as :func:`attackprev.reporting.figures.write_figures`)."""
        job = {
            "tree": tree,
            "out_dir": Path(out_dir),
            "point_estimate": point_estimate,
            "hdi_mu": tuple(hdi_mu),
            "technique_id": technique_id,
        } | kwargs
        wanted = tuple(job.pop("keys", None) or FILENAMES)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        pending = PendingFigures(self, job, wanted, sent=[])
        groups = [tuple(k for k in g if k in wanted) for g in GROUPS]
        groups.append(tuple(k for k in wanted if not any(k in g for g in GROUPS)))
        for i, keys in enumerate(g for g in groups if g):
            try:
                conn = self.conns[i % len(self.conns)]
                conn.send(job | {"keys": keys})
                pending.sent.append((conn, keys))
            except (IndexError, OSError, ValueError):  # no worker left, or it hung up
                pending.local.extend(keys)
        return pending

    def discard(self, conn: Any) -> None:
        """Forget a worker whose connection broke."""
        if conn in self.conns:
            i = self.conns.index(conn)
            self.conns.pop(i)
            pid = self.pids.pop(i)
            _reap(pid)

    def close(self) -> None:
        """Hang up on every worker and wait for it to leave."""
        for conn in self.conns:
            conn.close()
        for pid in self.pids:
            _reap(pid)
        self.conns, self.pids = [], []

    def __enter__(self) -> FigureWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
