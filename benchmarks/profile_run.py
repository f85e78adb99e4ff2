"""Where the time of one ``attackprev fit`` goes, stage by stage.

    python benchmarks/profile_run.py fit T1102 --out DIR

Imports the libraries a default run loads (timed as one stage), wraps the functions that do
the work of a run in timers and runs the command line in this process. Time spent in a
timed function called from another timed one counts only for the inner one, so the stages
add up to the whole. Prints one JSON line: {stage: seconds} and the total.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
import time

#: (module, attribute) -> stage name. Methods are given as "Class.method".
STAGES = {
    ("attackprev.inference.catalogue", "load_result"): "load the saved multi-technique posterior (fit cache)",
    ("attackprev.inference.exact", "fit_exact"): "exact engine: grid posterior",
    ("attackprev.analysis.technique", "_exact_rows"): "exact engine: κ, θ and θ_new summaries",
    ("attackprev.inference.exact", "ExactPosterior.accuracy"): "exact engine: accuracy check (grid twice as fine)",
    ("attackprev.analysis.technique", "sensitivity_table"): "exact engine: prior-sensitivity table",
    ("attackprev.model.betabinomial", "build_model"): "MCMC: build the PyMC model",
    ("attackprev.inference.nutpie_cache", "compile_pymc_model"): "MCMC: compile (PyTensor graph, Numba kernels)",
    ("nutpie", "sample"): "MCMC: nutpie sampling",
    ("attackprev.inference.mcmc", "add_derived"): "MCMC: θ draws, prior and predictive draws",
    ("attackprev.analysis.technique", "_mcmc_rows"): "ArviZ: posterior table (HDI, ESS, R-hat, MCSE)",
    ("attackprev.inference.diagnostics", "diagnose"): "ArviZ: diagnostics",
    ("attackprev.analysis.technique", "_multi_block"): "multi-technique headline",
    ("attackprev.reporting.technique", "save_posterior"): "write posterior.nc",
    ("attackprev.reporting.figures", "write_figures"): "figures drawn in this process",
    ("attackprev.reporting.figure_workers", "PendingFigures.wait"): "figures: waiting for the workers",
    ("attackprev.reporting.figure_workers", "FigureWorkers.start"): "figures: forking the workers",
    ("attackprev.reporting.technique", "render_markdown"): "render report.md",
}
#: What a default run imports, timed as one stage before the run.
IMPORTS = (
    "attackprev.cli",
    "attackprev.analysis.technique",
    "attackprev.reporting.technique",
    "attackprev.pipeline",
    "attackprev.inference.catalogue",
    "attackprev.mal.mapping",
    "attackprev.evidence.attack",
    "pymc",
    "nutpie",
    "arviz",
    "arviz_plots",
    "matplotlib.pyplot",
    "h5netcdf",
)

_stack: list[float] = []  # time spent in timed callees of each active timed call
totals: dict[str, float] = {}


def _timed(stage: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _stack.append(0.0)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.perf_counter() - start
            inner = _stack.pop()
            totals[stage] = totals.get(stage, 0.0) + spent - inner
            if _stack:
                _stack[-1] += spent

    return wrapper


def _patch() -> None:
    for (module_name, attr), stage in STAGES.items():
        module = importlib.import_module(module_name)
        if "." in attr:
            cls_name, method = attr.split(".")
            cls = getattr(module, cls_name)
            setattr(cls, method, _timed(stage, getattr(cls, method)))
            continue
        original = getattr(module, attr)
        wrapped = _timed(stage, original)
        for mod in list(sys.modules.values()):  # also where it was imported by name
            ours = getattr(mod, "__name__", "").startswith(("attackprev", "nutpie"))
            if ours and getattr(mod, attr, None) is original:
                setattr(mod, attr, wrapped)


def main() -> None:
    """Run ``attackprev`` with the given arguments and print the stage times."""
    start = time.perf_counter()
    for name in IMPORTS:
        importlib.import_module(name)
    imported = time.perf_counter()
    _patch()
    from attackprev.cli import app

    patched = time.perf_counter()
    try:
        app(sys.argv[1:], standalone_mode=False)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    done = time.perf_counter()
    accounted = sum(totals.values())
    stages = {"imports (pymc, nutpie, arviz, matplotlib, xarray, scipy, attackprev)": imported - start} | totals
    stages["everything else (command line, evidence, ATT&CK table, summary.json, ...)"] = (
        done - patched - accounted + (patched - imported)
    )
    print(json.dumps({"stages": stages, "total": done - start}))


if __name__ == "__main__":
    main()
