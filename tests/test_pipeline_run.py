"""run_fit end to end, fast: every option reaches the number reported, checked against an independent answer.

The multi-source fit is replaced by a posterior drawn with numpy from the settings run_fit passes
(:func:`tests.synthesis_fixtures.posterior_result`), so what is checked is the pipeline: which fit it
asks for, with which settings, and that the numbers it writes are the ones those draws give. The
fit itself is checked in tests/inference/test_synthesis.py; the single-technique exact engine
against quadrature in tests/inference/test_exact.py.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.special

from attackprev.config import OBSERVATIONS_CSV, SOURCES_CSV
from attackprev.errors import InputError
from attackprev.evidence.tables import load_evidence
from attackprev.inference.exact import fit_exact
from attackprev.inference.summaries import hdi
from attackprev.model.priors import PRIORS, get_prior
from attackprev.pipeline import RunOptions, run_fit
from tests.synthesis_fixtures import posterior_result, small_table


@pytest.fixture(scope="module")
def evidence():
    return load_evidence(OBSERVATIONS_CSV, SOURCES_CSV)


@pytest.fixture(scope="module")
def table():
    return small_table()


def replace_fit(monkeypatch, size: tuple[int, int] | None = None):
    """Replace the cached multi-source fit by :func:`posterior_result` draws; record every call's settings.

    ``size`` (chains, draws): a fixed posterior size; by default the settings run_fit passes, which the result
    then records as its own. Returns the calls and a state whose ``problems`` the fake fit reports and whose
    ``origin`` it says the fit came from (``"fitted"``, or where a saved fit was found; default "the cache").
    """
    calls, state = [], {"problems": [], "origin": "the cache"}

    def fake(tab, priors=None, settings=None, reference="mtrends", exclude_sources=(), *, refit=False, progress=False):
        calls.append({"settings": settings, "refit": refit, "progress": progress, "table": tab})
        chains, draws = size or (settings.chains, settings.draws)
        result = posterior_result(tab, chains=chains, draws=draws, seed=settings.seed)
        if size is None:
            result.settings = settings
        result.diagnostics.problems.extend(state["problems"])
        return result, state["origin"]

    monkeypatch.setattr("attackprev.inference.synthesis_cache.cached_fit_synthesis", fake)
    return calls, state


@pytest.fixture
def fits(monkeypatch):
    """The multi-source fit replaced by draws of the size run_fit asks for."""
    return replace_fit(monkeypatch)


def _truth(table, seed, draws, chains, technique="T1102", family="mtrends"):
    """The target-scale draws the fake posterior gives, computed from its φ directly."""
    r = posterior_result(table, chains=chains, draws=draws, seed=seed)
    phi = r.tree["posterior"]["phi"].values.reshape(chains * draws, -1)
    return scipy.special.expit(phi[:, r.data.cells.index((technique, family))])


def _summary(out, technique="t1102"):
    return json.loads((out / technique / "summary.json").read_text())


#: Not the defaults, so each is seen to arrive; tiny, so the single-technique MCMC fit kept beside the
#: headline takes a fraction of a second (too few draws for its diagnostics: runs with a technique "fail")
ROOT = Path(__file__).resolve().parent.parent
QUICK = {"draws": 100, "tune": 100, "chains": 2, "figures": False}
D, C = 100, 2


def test_seed_and_settings_reach_the_multi_source_headline(fits, evidence, table, tmp_path):
    calls, _ = fits
    run = run_fit(["T1102"], evidence, RunOptions(seed=7, **QUICK), out=tmp_path / "a", table=table)
    s = calls[0]["settings"]
    assert (s.seed, s.draws, s.tune, s.chains, calls[0]["refit"]) == (7, 100, 100, 2, False)
    x = _truth(table, 7, D, C)
    summary = _summary(tmp_path / "a")
    assert summary["model"] == "multi-source" and summary["settings"]["seed"] == 7
    assert summary["prevalence"]["mean"] == pytest.approx(x.mean(), rel=1e-5)
    assert summary["prevalence"]["hdi_94"] == pytest.approx(list(hdi(x)), rel=1e-5)
    assert summary["mal"]["expression"] == f"Bernoulli({x.mean():.4g})"
    # another seed: another posterior, another headline, and the record says which
    run_fit(["T1102"], evidence, RunOptions(seed=8, **QUICK), out=tmp_path / "b", table=table)
    other = _summary(tmp_path / "b")
    assert other["settings"]["seed"] == 8 and calls[1]["settings"].seed == 8
    assert other["prevalence"]["mean"] == pytest.approx(_truth(table, 8, D, C).mean(), rel=1e-5)
    assert other["prevalence"]["mean"] != summary["prevalence"]["mean"]
    assert any("reused the cache" in line for line in run.lines)


def test_target_and_refit_reach_the_fit(fits, evidence, table, tmp_path):
    calls, _ = fits
    run_fit(["T1102"], evidence, RunOptions(seed=3, target="groups", refit=True, **QUICK), out=tmp_path, table=table)
    assert calls[0]["refit"] is True
    x = _truth(table, 3, D, C, family="groups")
    assert _summary(tmp_path)["prevalence"]["mean"] == pytest.approx(x.mean(), rel=1e-5)
    with pytest.raises(InputError, match="--target 'cisa'"):
        run_fit(["T1102"], evidence, RunOptions(target="cisa", **QUICK), out=tmp_path, table=table)


def test_a_failed_multi_source_fit_fails_the_run_and_says_so(fits, evidence, table, tmp_path):
    _, state = fits
    state["problems"].append("max R-hat 1.200 > 1.01")
    run = run_fit([], evidence, RunOptions(seed=1, **QUICK), out=tmp_path, all_techniques=True, table=table)
    assert run.failed  # with no technique named, nothing else was fitted that could fail
    assert any("DIAGNOSTICS FAILED: max R-hat 1.200" in line for line in run.lines)
    head = (tmp_path / "techniques" / "catalogue.md").read_text().split("\n## ")[0]
    assert "**Sampler diagnostics failed** (max R-hat 1.200 > 1.01)" in head
    # a technique's report carries the headline fit's failure first, in its opening lines
    run_fit(["T1102"], evidence, RunOptions(seed=1, **QUICK), out=tmp_path, table=table)
    summary = _summary(tmp_path)
    assert not summary["diagnostics"]["passed"] and summary["diagnostics"]["problems"][0] == "max R-hat 1.200 > 1.01"
    head = (tmp_path / "t1102" / "report.md").read_text().split("\n## ")[0]
    assert "THIS RUN FAILED ITS DIAGNOSTICS" in head and "max R-hat 1.200" in head


def test_all_writes_the_catalogue_of_those_draws(fits, evidence, table, tmp_path):
    calls, _ = fits
    run = run_fit([], evidence, RunOptions(seed=5, **QUICK), out=tmp_path, all_techniques=True, table=table)
    assert not run.failed and calls[0]["settings"].seed == 5
    folder = tmp_path / "techniques"
    with (folder / "catalogue.csv").open(newline="") as fh:
        rows = {r["technique_id"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"T1003", "T1059", "T1102", "T1566"}
    for t in rows:
        r = posterior_result(table, chains=C, draws=D, seed=5)
        j = r.data.techniques.index(t)
        if (t, "mtrends") in r.data.cells:
            x = _truth(table, 5, D, C, technique=t)
            assert float(rows[t]["mean"]) == pytest.approx(x.mean(), rel=1e-5), t
        else:  # no mtrends row: a + b + σ z, so its mean lies between the level's and the level shifted by b
            a = r.tree["posterior"]["a"].values.reshape(C * D, -1)[:, j]
            assert abs(scipy.special.logit(float(rows[t]["mean"])) - a.mean()) < 1.0
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["headline"]["mean"] == pytest.approx(_truth(table, 5, D, C).mean(), rel=1e-5)
    assert summary["record"]["settings"]["seed"] == 5
    assert summary["counts"] == {"techniques": 4, "observations": 9, "sources": 4, "families": 3, "without_target": 2}
    layers = sorted(p.name for p in (folder / "layers").iterdir())
    assert layers == ["enterpriselang_shift.json", "groups.json", "malware.json", "mtrends.json"]
    groups = json.loads((folder / "layers" / "groups.json").read_text())
    assert groups["name"] == "attackprev: groups (groups)" and "a share of adversary groups" in groups["description"]
    # the model comparison's runner-up (the committed reports/validation/model_comparison.csv) beside each estimate
    with (ROOT / "reports" / "validation" / "model_comparison.csv").open(newline="") as fh:
        compared = {r["technique_id"] for r in csv.DictReader(fh)}
    assert summary["runner_up"]["techniques"] == len(compared & set(rows)) == 4
    assert summary["runner_up"]["model"] is not None and rows["T1102"]["runner_up_model"]
    # the headline technique's new-report rates, one per family
    assert set(summary["headline_predictive"]) == {"mtrends", "groups", "malware"}
    assert {r["technique_id"] for r in summary["headline_predictive"].values()} == {"T1102"}
    assert (folder / "index.html").stat().st_size > 1000


def test_exact_engine_and_weights_reach_the_single_technique_headline(evidence, tmp_path):
    """--engine exact and --weight: the headline is the exact engine's, fitted on the tempered counts."""
    t1102 = [o for o in evidence.observations if o.technique_id == "T1102"]
    y = np.array([o.successes for o in t1102], float)
    n = np.array([o.trials for o in t1102], float)
    sources = [o.source_id for o in t1102]
    prior = get_prior("halfnormal1")
    plain = fit_exact(y, n, prior, sources=sources)
    weights = {sources[-1]: 0.25}
    w = np.array([weights.get(s, 1.0) for s in sources])
    tempered = fit_exact(y, n, prior, sources=sources, weights=w)
    run_fit(["T1102"], evidence, RunOptions(engine="exact", figures=False), out=tmp_path / "plain")
    run_fit(["T1102"], evidence, RunOptions(engine="exact", weights=weights, figures=False), out=tmp_path / "w")
    a, b = _summary(tmp_path / "plain"), _summary(tmp_path / "w")
    assert a["model"] == "single-technique" and a["engine"] == "exact"
    assert a["prevalence"]["mean"] == pytest.approx(plain.mu.mean, rel=1e-5)
    assert b["prevalence"]["mean"] == pytest.approx(tempered.mu.mean, rel=1e-5)
    assert abs(a["prevalence"]["mean"] - b["prevalence"]["mean"]) > 1e-4
    assert b["weights"] == {s: weights.get(s, 1.0) for s in sources}
    # a prior option reaches the single-technique model
    run_fit(["T1102"], evidence, RunOptions(engine="exact", prior="pareto", figures=False), out=tmp_path / "p")
    pareto = fit_exact(y, n, PRIORS["pareto"], sources=sources)
    assert _summary(tmp_path / "p")["prevalence"]["mean"] == pytest.approx(pareto.mu.mean, rel=1e-5)
    assert pareto.mu.mean != pytest.approx(plain.mu.mean, rel=1e-3)


# -- attackprev simulate's pipeline ------------------------------------------------------------------
EXAMPLE = ROOT / "examples" / "simulation"
ENTRY, TARGET = ["internet:attackerAccess"], ["dc:execute", "ws-00:execute"]


@pytest.fixture
def sim_fits(monkeypatch):
    """The real count table's fit replaced by a small numpy posterior (1 chain × 60 draws)."""
    return replace_fit(monkeypatch, size=(1, 60))


def _simulate(out, scale="mtrends", **kw):
    from attackprev.analysis.simulation import SimulationSettings
    from attackprev.pipeline import run_simulation

    settings = SimulationSettings(draws=20, episodes=64, point_episodes=512, ttc_episodes=1, seed=11, scale=scale)
    return run_simulation(
        EXAMPLE / "attackprevlang.mal",
        EXAMPLE / "enterprise_model.yml",
        kw.pop("entry", ENTRY),
        kw.pop("targets", TARGET),
        steps=EXAMPLE / "steps.csv",
        settings=kw.pop("settings", settings),
        out=out,
        name="ex",
        command="attackprev simulate (test)",
        echo=kw.pop("echo", lambda line: None),
        **kw,
    )


def test_simulation_takes_the_fit_s_draws_on_the_chosen_scale(sim_fits, tmp_path):
    calls, state = sim_fits
    run = _simulate(tmp_path, scale="attack_groups", refit=True)
    assert calls[0]["refit"] is True and not run.failed
    folder = tmp_path / "simulation" / "ex"
    assert run.targets == [folder] and {p.name for p in folder.iterdir()} >= {"report.md", "summary.json"}
    s = json.loads((folder / "summary.json").read_text())
    assert (s["scale"], s["draws"], s["episodes"], s["seed"], s["command"]) == (
        "attack_groups",
        20,
        64,
        11,
        "attackprev simulate (test)",
    )
    assert s["entry_points"] == ENTRY and [t["target"] for t in s["targets"]] == TARGET
    assert run.lines[0].startswith("dc:execute: P(reached) ") and run.lines[-1].startswith("20 draws x 64 episodes in")
    assert len(run.lines) == 3
    # a fit that failed its diagnostics fails the run
    state["problems"].append("max R-hat 1.200 > 1.01")
    assert _simulate(tmp_path / "b").failed


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"entry": []}, "name at least one entry point, e.g. --entry internet:attackerAccess"),
        ({"targets": []}, "name at least one target step, e.g. --target dc:execute"),
        ({"scale": "nosuch"}, "--scale 'nosuch': not a family of the evidence; families: "),
    ],
)
def test_simulation_refuses_before_any_fit(sim_fits, tmp_path, kw, message):
    calls, _ = sim_fits
    with pytest.raises(InputError) as err:
        _simulate(tmp_path, **kw)
    assert str(err.value).startswith(message) and not calls


@pytest.mark.parametrize(("draws", "episodes"), [(19, 64), (20, 0)])
def test_simulation_needs_20_draws_and_an_episode(sim_fits, tmp_path, draws, episodes):
    from attackprev.analysis.simulation import SimulationSettings

    with pytest.raises(InputError) as err:
        _simulate(tmp_path, settings=SimulationSettings(draws=draws, episodes=episodes))
    assert str(err.value) == "--draws must be at least 20 and --episodes at least 1"


# -- defaults, progress lines and the multi-technique branch ----------------------------------------
def test_defaults_write_reports_here_quietly_with_the_command_that_made_them(evidence, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = run_fit(["T1102"], evidence, RunOptions(engine="exact", figures=False), echo=lambda line: None)
    assert run.targets == [Path("reports") / "t1102"] and not (tmp_path / "reports" / "techniques").exists()
    assert not run.failed  # the exact engine has nothing to fail
    assert _summary(tmp_path / "reports")["reproduce"]["command"] == "attackprev fit T1102"
    assert capsys.readouterr().err == ""  # no progress lines unless asked
    lines = []
    run_fit(["T1102"], evidence, RunOptions(engine="exact", figures=False), out="o", echo=lines.append, progress=True)
    assert capsys.readouterr().err == "fitting T1102 (exact, prior halfnormal1) ...\n"
    assert lines[0] == (
        "note: the headline is the single-technique model, not the default: --engine exact computes the "
        "single-technique model (this technique's sources alone) on a grid; the default multi-source model is "
        "sampled by MCMC"
    )
    assert lines[1].startswith("T1102: Bernoulli(") and "(single-technique model, exact; mean " in lines[1]
    assert lines[1].endswith(f"diagnostics passed) -> {Path('o') / 't1102'}") and len(lines) == 2


def test_progress_lines_and_the_fit_line_of_the_multi_source_model(fits, evidence, table, tmp_path, capsys):
    lines = []
    run_fit(
        [], evidence, RunOptions(seed=5, **QUICK), out=tmp_path, all_techniques=True, table=table, echo=lines.append
    )
    assert capsys.readouterr().err == ""
    run_fit(
        ["T1102"], evidence, RunOptions(seed=5, **QUICK), out=tmp_path, table=table, progress=True, echo=lines.append
    )
    assert capsys.readouterr().err.splitlines()[:2] == [
        "multi-source model: looking for a saved fit, else fitting (about 3 minutes) ...",
        "fitting T1102 (mcmc, prior halfnormal1) ...",
    ]
    import re

    fit_line = re.compile(
        r"multi-source model: 4 techniques, 4 sources, seed 5, 2 chains × 100 draws after 100 tuning steps "
        r"\(reused the cache in \d+\.\d s; diagnostics passed\)"
    )
    assert fit_line.fullmatch(lines[0]) and fit_line.fullmatch(lines[2])
    x = _truth(table, 5, D, C)
    lo, hi = hdi(x)
    assert lines[1] == (
        f"catalogue on the mtrends scale -> {tmp_path / 'techniques'} "
        f"(T1102: {x.mean():.4f}, 94 % HDI {lo:.4f}-{hi:.4f})"
    )


SMALL_MULTI = {"model": "multi", "draws": 100, "tune": 100, "chains": 2, "figures": False}


def test_the_multi_technique_branch(tmp_path):
    """--model multi on a small --data file: the catalogue fit (saved in the user's cache after the first run, so
    a rerun takes seconds), its line, its report with --all, the note, and a failed fit failing the run."""
    from tests.conftest import write_csv
    from tests.test_pipeline import SMALL

    small = load_evidence(write_csv(tmp_path / "small.csv", SMALL), None)
    lines = []
    run = run_fit(
        ["T1102"], small, RunOptions(**SMALL_MULTI), out=tmp_path / "a", all_techniques=True, echo=lines.append
    )
    assert run.failed  # 2 × 100 draws cannot pass the diagnostics
    assert run.targets == [tmp_path / "a" / "techniques", tmp_path / "a" / "t1102"]
    import re

    assert re.fullmatch(
        r"multi-technique model: 6 techniques, variant \w+, seed 20201102, 2 chains × 100 draws after 100 tuning "
        r"steps \((fitted|reused \S+) in \d+\.\d s; DIAGNOSTICS FAILED\)",
        lines[0],
    ), lines[0]
    assert lines[1] == f"catalogue report -> {tmp_path / 'a' / 'techniques'}"
    assert lines[2] == (
        "note: the headline is the multi-technique model, not the default: --model multi: the four sources of "
        "enterpriseLang's notes, treated as measuring the same thing, not the default multi-source model"
    )
    summary = _summary(tmp_path / "a")
    assert summary["model"] == "multi-technique" and summary["reproduce"]["command"] == "attackprev fit --all T1102"
    with (tmp_path / "a" / "techniques" / "catalogue.csv").open(newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["technique_id"] == "T1102")
    assert summary["prevalence"]["mean"] == pytest.approx(float(row["mean"]), rel=1e-4)
    # the saved catalogue beside the report is what a second run reuses
    again = []
    run_fit(["T1102"], small, RunOptions(**SMALL_MULTI), out=tmp_path / "a", echo=again.append)
    assert f"reused {tmp_path / 'a' / 'techniques' / 'posterior.nc'} in " in again[0]


# -- what each line says, what each callee receives, and when a run stays failed --------------------------
def steady_clock(monkeypatch, step: float = 2.0) -> None:
    """Make the pipeline's clock advance ``step`` seconds at each reading, so a timed line is known exactly."""
    import itertools
    import types

    ticks = itertools.count(1000.0, step)
    monkeypatch.setattr("attackprev.pipeline.time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))


SETTINGS_TEXT = "2 chains × 100 draws after 100 tuning steps"


def test_the_multi_source_fit_line_says_fitted_or_reused_how_long_and_every_problem(
    fits, evidence, table, tmp_path, monkeypatch, capsys
):
    calls, state = fits
    steady_clock(monkeypatch)
    state["origin"] = "fitted"
    state["problems"] += ["max R-hat 1.200 > 1.01", "3 divergent transitions"]
    lines = []
    options = RunOptions(seed=5, **QUICK)
    run = run_fit(
        ["T1102"], evidence, options, out=tmp_path, all_techniques=True, table=table, progress=True, echo=lines.append
    )
    assert calls[0]["progress"] is True and run.failed
    assert capsys.readouterr().err.startswith(
        "multi-source model: looking for a saved fit, else fitting (about 3 minutes) ...\n"
    )
    assert run.targets == [tmp_path / "techniques", tmp_path / "t1102"]
    assert lines[0] == (
        f"multi-source model: 4 techniques, 4 sources, seed 5, {SETTINGS_TEXT} (fitted in 2.0 s; "
        "DIAGNOSTICS FAILED: max R-hat 1.200 > 1.01; 3 divergent transitions)"
    )
    assert lines[1].startswith(f"catalogue on the mtrends scale -> {tmp_path / 'techniques'} (T1102: ")
    # the technique's line names every problem of its headline fit, in order, joined by "; "
    problems = _summary(tmp_path)["diagnostics"]["problems"]
    assert problems[:2] == ["max R-hat 1.200 > 1.01", "3 divergent transitions"]
    assert lines[2].startswith("T1102: Bernoulli(") and "(multi-source model, mcmc; mean " in lines[2]
    assert lines[2].endswith(f"; DIAGNOSTICS FAILED: {'; '.join(problems)}) -> {tmp_path / 't1102'}")
    assert len(lines) == 3  # the default model: no note
    # without progress the fit is not asked to show any
    run_fit([], evidence, options, out=tmp_path / "b", all_techniques=True, table=table, echo=lines.append)
    assert calls[1]["progress"] is False and capsys.readouterr().err == ""


def test_the_multi_source_fit_never_clears_an_earlier_failure(fits, evidence, table, tmp_path):
    """_fit_synthesis records its own failure and leaves an earlier one standing (a passing fit here)."""
    from attackprev.pipeline import RunResult, _fit_synthesis, plan_run

    options = RunOptions(seed=5, **QUICK)
    plan = plan_run(options, evidence, ["T1102"], False, table)
    for before in (False, True):
        result = RunResult(failed=before)
        view = _fit_synthesis(table, plan, options, tmp_path, False, "attackprev fit T1102", False, print, result)
        assert result.failed is before and view.target == "mtrends" and result.targets == []


def test_a_failed_catalogue_fit_fails_a_run_whose_technique_passed(fits, evidence, table, tmp_path):
    """--all --engine exact: the multi-source catalogue is fitted for its report (here failing its diagnostics),
    T1102's headline stays the exact single-technique model, which passes; the run fails all the same."""
    _, state = fits
    state["problems"].append("max R-hat 1.200 > 1.01")
    lines = []
    options = RunOptions(engine="exact", seed=5, **QUICK)
    run = run_fit(["T1102"], evidence, options, out=tmp_path, all_techniques=True, table=table, echo=lines.append)
    summary = _summary(tmp_path)
    assert summary["model"] == "single-technique" and summary["engine"] == "exact" and summary["diagnostics"]["passed"]
    assert run.failed
    assert lines[2].startswith("note: the headline is the single-technique model, not the default: --engine exact")
    assert lines[3].endswith(f"; diagnostics passed) -> {tmp_path / 't1102'}") and len(lines) == 4
    # the same run with a passing catalogue fit passes
    state["problems"].clear()
    assert not run_fit(["T1102"], evidence, options, out=tmp_path, all_techniques=True, table=table, echo=print).failed


def test_a_failed_technique_fails_the_run(evidence, tmp_path):
    """--model single with 2 × 100 draws: the single-technique MCMC fit fails its diagnostics, and the run with it."""
    lines = []
    run = run_fit(["T1102"], evidence, RunOptions(model="single", seed=5, **QUICK), out=tmp_path, echo=lines.append)
    problems = _summary(tmp_path)["diagnostics"]["problems"]
    assert run.failed and problems
    assert lines[-1].endswith(f"; DIAGNOSTICS FAILED: {'; '.join(problems)}) -> {tmp_path / 't1102'}")


@pytest.fixture
def analyses(monkeypatch):
    """Record what run_fit hands analyse_technique; the real analysis then runs, without figure workers (a test passes
    a stand-in for them, to see whether run_fit passes it on)."""
    from attackprev.analysis import technique

    real, calls = technique.analyse_technique, []

    def spy(*args, **kw):
        calls.append((args, kw))
        return real(*args, **(kw | {"workers": None}))

    monkeypatch.setattr(technique, "analyse_technique", spy)
    return calls


def test_settings_progress_workers_note_and_figures_reach_the_analysis_and_the_report(
    fits, analyses, evidence, table, tmp_path
):
    from attackprev.analysis.synthesis import SynthesisView
    from attackprev.inference.mcmc import SamplerSettings
    from attackprev.reporting.figures import FILENAMES

    workers = object()  # a stand-in: only whether run_fit passes it on is checked
    sampled = {"seed": 5, "draws": 100, "tune": 100, "chains": 2}
    command = "attackprev fit T1102 (test)"
    run_fit(
        ["T1102"],
        evidence,
        RunOptions(**sampled),
        out=tmp_path / "a",
        table=table,
        workers=workers,
        progress=True,
        command=command,
        echo=print,
    )
    ((args, kw),) = analyses
    assert args[3] == SamplerSettings(**sampled) and args[5] == "mcmc"
    assert kw["progress"] is True and kw["workers"] is workers and kw["estimand_note"] is None
    assert kw["catalogue"] is None and isinstance(kw["synthesis"], SynthesisView)
    summary = _summary(tmp_path / "a")
    assert summary["reproduce"]["command"] == command
    assert {k: summary["models"]["single_technique"]["settings"][k] for k in sampled} == sampled
    figures = {p.name for p in (tmp_path / "a" / "t1102").glob("*.png")}
    assert figures and figures <= set(FILENAMES.values())
    # no figures: no workers and no figure files; the exact engine: no workers (nothing is sampled), and its note
    run_fit(
        ["T1102"],
        evidence,
        RunOptions(figures=False, **sampled),
        out=tmp_path / "b",
        table=table,
        workers=workers,
        echo=print,
    )
    assert analyses[1][1]["workers"] is None and analyses[1][1]["progress"] is False
    assert not list((tmp_path / "b" / "t1102").glob("*.png"))
    run_fit(
        ["T1102"], evidence, RunOptions(engine="exact"), out=tmp_path / "c", table=table, workers=workers, echo=print
    )
    note = (
        "--engine exact computes the single-technique model (this technique's sources alone) on a grid; the default "
        "multi-source model is sampled by MCMC"
    )
    assert analyses[2][1]["workers"] is None and analyses[2][1]["estimand_note"] == note
    estimand = _summary(tmp_path / "c")["estimand"]
    assert (estimand["default"], estimand["note"]) == (False, note)


def test_the_analysis_gets_only_the_fits_this_run_made(evidence, tmp_path):
    """run_fit takes any plan: one whose headline names a model it does not fit reports the single-technique model
    (the analysis is handed no fit, not a placeholder)."""
    from dataclasses import replace

    from attackprev.analysis.technique import MULTI, SYNTHESIS
    from attackprev.pipeline import plan_run

    options = RunOptions(engine="exact", figures=False)
    plan = plan_run(options, evidence, ["T1102"], False)
    for i, headline in enumerate((SYNTHESIS, MULTI)):
        odd = replace(plan, headline=headline, fit_multi=False, fit_synthesis=False)
        run_fit(["T1102"], evidence, options, out=tmp_path / str(i), plan=odd, echo=print)
        assert _summary(tmp_path / str(i))["model"] == "single-technique"


# -- the multi-technique model's branch, with its (real) fit handed back as fitted or reused, passed or failed ---
@pytest.fixture(scope="module")
def small_fit(tmp_path_factory):
    """The --data file of tests/test_pipeline.py and its multi-technique fit with SMALL_MULTI's settings (from the
    user's cache after the first run, as in test_the_multi_technique_branch)."""
    from attackprev.inference.catalogue import CatalogueSettings, cached_fit_catalogue
    from tests.conftest import write_csv
    from tests.test_pipeline import SMALL

    small = load_evidence(write_csv(tmp_path_factory.mktemp("small") / "small.csv", SMALL), None)
    fit, _ = cached_fit_catalogue(small, settings=CatalogueSettings(draws=100, tune=100, chains=2))
    return small, fit


def replace_catalogue(monkeypatch, fit, origin: str, passed: bool) -> list[dict]:
    """Replace the cached multi-technique fit by ``fit``, said to come from ``origin`` (``"fitted"`` or a saved
    file) and to have ``passed`` its diagnostics or not; returns the keyword arguments of every call."""
    from dataclasses import replace

    chosen = fit.diagnostics[fit.variant]
    problems = [] if passed else ["bulk ESS 50 < 400"]
    fit = replace(fit, diagnostics=fit.diagnostics | {fit.variant: replace(chosen, problems=problems)})
    calls = []

    def fake(evidence, priors=None, settings=None, *, beside=None, refit=False, progress=False):
        calls.append(
            {"evidence": evidence, "settings": settings, "beside": beside, "refit": refit, "progress": progress}
        )
        return fit, origin

    monkeypatch.setattr("attackprev.inference.catalogue.cached_fit_catalogue", fake)
    return calls


def test_the_multi_technique_fit_line_says_fitted_or_reused_how_long_and_whether_it_passed(
    small_fit, tmp_path, monkeypatch, capsys
):
    from attackprev.inference.catalogue import CatalogueSettings

    small, fit = small_fit
    steady_clock(monkeypatch)
    calls = replace_catalogue(monkeypatch, fit, "fitted", passed=True)
    lines = []
    command = "attackprev fit --all --model multi (test)"
    run = run_fit(
        [],
        small,
        RunOptions(refit=True, **SMALL_MULTI),
        out=tmp_path,
        all_techniques=True,
        command=command,
        progress=True,
        echo=lines.append,
    )
    assert capsys.readouterr() == (
        "",
        "multi-technique model: looking for a saved fit, else fitting every variant ...\n",
    )
    (call,) = calls
    assert call["evidence"] is small and (call["beside"], call["refit"], call["progress"]) == (tmp_path, True, True)
    assert call["settings"] == CatalogueSettings(draws=100, tune=100, chains=2)
    folder = tmp_path / "techniques"
    assert lines == [
        f"multi-technique model: 6 techniques, variant {fit.variant}, seed 20201102, {SETTINGS_TEXT} "
        "(fitted in 2.0 s; diagnostics passed)",
        f"catalogue report -> {folder}",
    ]  # and no note: no technique is reported
    assert run.targets == [folder] and not run.failed
    assert json.loads((folder / "summary.json").read_text())["command"] == command
    # reused from a saved file, failing its diagnostics, without progress: the run fails, quietly
    calls = replace_catalogue(monkeypatch, fit, "/saved/posterior.nc", passed=False)
    lines.clear()
    run = run_fit([], small, RunOptions(**SMALL_MULTI), out=tmp_path / "b", all_techniques=True, echo=lines.append)
    assert capsys.readouterr() == ("", "") and (calls[0]["refit"], calls[0]["progress"]) == (False, False)
    assert lines[0] == (
        f"multi-technique model: 6 techniques, variant {fit.variant}, seed 20201102, {SETTINGS_TEXT} "
        "(reused /saved/posterior.nc in 2.0 s; DIAGNOSTICS FAILED)"
    )
    assert run.failed


def test_a_failed_multi_technique_catalogue_fails_a_run_whose_technique_passed(small_fit, tmp_path, monkeypatch):
    """--data --all --engine exact: the catalogue is fitted for its report, T1102's headline stays the exact
    single-technique model (not the catalogue's), which passes; the catalogue's failure fails the run."""
    small, fit = small_fit
    replace_catalogue(monkeypatch, fit, "fitted", passed=False)
    run = run_fit(
        ["T1102"], small, RunOptions(engine="exact", figures=False), out=tmp_path, all_techniques=True, echo=print
    )
    summary = _summary(tmp_path)
    assert summary["model"] == "single-technique" and summary["diagnostics"]["passed"] and run.failed


def test_a_passing_fit_after_a_failed_one_leaves_the_run_failed(fits, small_fit, table, tmp_path, monkeypatch):
    """A plan fitting both the multi-source and the multi-technique model (run_fit takes any plan): the second
    passing does not clear the first's failure."""
    from dataclasses import replace

    from attackprev.pipeline import plan_run

    small, fit = small_fit
    _, state = fits
    state["problems"].append("max R-hat 1.200 > 1.01")
    replace_catalogue(monkeypatch, fit, "fitted", passed=True)
    options = RunOptions(**SMALL_MULTI)
    plan = replace(plan_run(options, small, [], True), fit_synthesis=True)
    lines = []
    run = run_fit([], small, options, out=tmp_path, plan=plan, table=table, echo=lines.append)
    assert lines[0].endswith("; DIAGNOSTICS FAILED: max R-hat 1.200 > 1.01)")
    assert lines[1].endswith("; diagnostics passed)") and len(lines) == 2
    assert run.failed


# -- the multi-source catalogue's summary and browsable files -------------------------------------------------
def test_the_catalogue_summary_counts_techniques_without_target_data_and_gives_tau_only_when_it_exists(table):
    from attackprev.inference.summaries import draw_summary
    from attackprev.pipeline import synthesis_summary
    from tests.synthesis_fixtures import ROWS

    result = posterior_result(table, chains=C, draws=D, seed=5)
    groups, _, _ = synthesis_summary(result, table, "groups", "T1102", "cmd")
    assert groups["counts"]["without_target"] == 0  # the groups family lists every technique
    malware, _, _ = synthesis_summary(result, table, "malware", "T1102", "cmd")
    assert malware["counts"]["without_target"] == 2 and malware["command"] == "cmd"
    assert groups["tau"] == draw_summary(np.full(C * D, 0.3))  # mtrends has two sources: τ is a parameter
    one = small_table([r for r in ROWS if r[1] != "mtrends2021"])  # one source per family: no τ
    summary, _, _ = synthesis_summary(posterior_result(one, chains=C, draws=D, seed=5), one, "mtrends", "T1102", "")
    assert summary["tau"] is None and summary["log_kappa"] == {}


def test_the_catalogue_page_shows_the_estimates_with_their_runner_up(table):
    """The page's rows on the target scale are the catalogue's own estimates, the model comparison's runner-up
    included (not the target's estimates recomputed without it)."""
    import re

    from attackprev.pipeline import browse_files, synthesis_summary

    result = posterior_result(table, chains=C, draws=D, seed=5)
    summary, estimates, _ = synthesis_summary(result, table, "mtrends", "T1102", "cmd")
    page = browse_files(result, table, summary, estimates)["index.html"]
    data = re.search(r'<script type="application/json" id="catalogue-data">(.*?)</script>', page, re.S).group(1)
    shown = {r["id"]: r["runner_up"] for r in json.loads(data)}
    expected = {e["technique_id"]: e["runner_up_model"] for e in estimates}
    assert all(expected.values()) and {t: r and r["model"] for t, r in shown.items()} == expected


# -- attackprev simulate: its defaults, lines and progress ------------------------------------------------------
def test_simulation_defaults_and_lines(sim_fits, tmp_path, monkeypatch, capsys):
    from attackprev.analysis.simulation import SimulationSettings
    from attackprev.pipeline import run_simulation

    calls, _ = sim_fits
    monkeypatch.chdir(tmp_path)
    steady_clock(monkeypatch)
    lines = []
    settings = SimulationSettings(draws=20, episodes=64, point_episodes=512, ttc_episodes=1, seed=11)
    steps = EXAMPLE / "steps.csv"
    model = EXAMPLE / "enterprise_model.yml"
    run = run_simulation(
        EXAMPLE / "attackprevlang.mal", model, ENTRY, TARGET, steps=steps, settings=settings, echo=lines.append
    )
    folder = Path("reports") / "simulation" / "enterprise_model"  # OUT/simulation/<the model file's stem>
    assert run.targets == [folder] and capsys.readouterr() == ("", "")
    assert (calls[0]["refit"], calls[0]["progress"]) == (False, False)
    s = json.loads((folder / "summary.json").read_text())
    assert s["command"] == "attackprev simulate" and s["steps"]["file"] == str(steps)
    assert s["scale_description"] == "intrusions investigated by Mandiant incident responders"
    expected = []
    for t in s["targets"]:
        p = t["posterior"]
        lo, hi = p["hdi_94"]
        expected.append(
            f"{t['target']}: P(reached) {p['mean']:.4g} (94 % interval across draws {lo:.4g}-{hi:.4g}); "
            f"language's values {t['language']['p']:.4g}, posterior means {t['plug_in']['p']:.4g}"
        )
    assert lines == run.lines == [*expected, f"20 draws x 64 episodes in 2.0 s -> {folder}"]
    assert any(lo < hi for lo, hi in (t["posterior"]["hdi_94"] for t in s["targets"]))  # low, then high


def test_simulation_progress_goes_to_stderr_and_its_lines_to_stdout(sim_fits, tmp_path, capsys):
    calls, _ = sim_fits
    run = _simulate(tmp_path, progress=True, echo=None)
    out, err = capsys.readouterr()
    assert err == "multi-source model: looking for a saved fit, else fitting (about 3 minutes) ...\n"
    assert out == "".join(f"{line}\n" for line in run.lines) and len(run.lines) == 3
    assert calls[0]["progress"] is True


def test_simulation_takes_a_single_episode(sim_fits, tmp_path):
    from attackprev.analysis.simulation import SimulationSettings

    settings = SimulationSettings(draws=20, episodes=1, point_episodes=512, ttc_episodes=1, seed=11)
    run = _simulate(tmp_path, settings=settings)
    assert run.lines[-1].startswith("20 draws x 1 episodes in ")
