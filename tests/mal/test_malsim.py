"""Export and patch for mal-simulator: the TTCs behave as intended in each of its TTC modes.

A small language of our own (``data/master_style.mal``, TTCs commented out the way enterpriseLang's
master has them) is patched by ``export_mal(..., simulator='malsim')``, compiled with mal-toolbox and
run with mal-simulator 3.3 in every ``TTCMode``. The timed step's published time factor is
``Exponential(0.2)`` (one simulator step is one time unit), so that the time is visible in the
simulator: enterpriseLang's own rates (e.g. ``Exponential(106.67)`` per day) make almost every
attempt succeed at once.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from malsim.config.agent_settings import AttackerSettings
from malsim.mal_simulator import MalSimulator, MalSimulatorSettings, TTCMode
from malsim.mal_simulator.ttc_utils import TTCDist, attack_step_ttc_value, is_impossible_attack_step
from maltoolbox.attackgraph import AttackGraph
from maltoolbox.language import LanguageGraph
from maltoolbox.model import Model

from attackprev.errors import InputError
from attackprev.mal.dictionary import ttc_dict
from attackprev.mal.export import export_mal
from attackprev.mal.malfile import TtcChange, Unmatched
from tests.mal.test_malfile import MASTER_STYLE, compile_file

P = 0.3  # the model's p for the two steps run in the simulator
RATE = 0.2  # the published time factor Exponential(0.2)
STEPS_CSV = f"""\
technique_id,attack_step,asset,published_ttc,source
T1102,instantStep,OS,Bernoulli(0.0445),test
T1219,timedStep,OS,Bernoulli(0.0789)*Exponential({RATE}),test
T1099,timestomp,Windows;Linux,Bernoulli(0.0396),test
T1135,networkShareDiscovery,Windows;MacOS,Bernoulli(0.0129),test
T1003,credentialDumping,OS,Bernoulli(0.08785),test
"""
ESTIMATES_CSV = f"""\
technique_id,p,hdi_94_low,hdi_94_high
T1102,{P},0.2,0.4
T1219,{P},0.2,0.4
T1099,0.05,0.03,0.07
T1135,0.013,0.01,0.02
T1003,0.09,0.05,0.12
"""


def write_inputs(folder: Path, steps: str = STEPS_CSV, estimates: str = ESTIMATES_CSV, lang: str | None = None):
    """The step table, the estimates and the language in ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "steps.csv").write_text(steps, encoding="utf-8")
    (folder / "estimates.csv").write_text(estimates, encoding="utf-8")
    (folder / "lang.mal").write_text(lang or MASTER_STYLE.read_text(encoding="utf-8"), encoding="utf-8")
    return folder / "steps.csv", folder / "estimates.csv", folder / "lang.mal"


def export(folder: Path, **kwargs):
    steps, estimates, lang = write_inputs(folder, **{k: kwargs.pop(k) for k in ("steps", "lang") if k in kwargs})
    return export_mal(folder, steps_csv=steps, catalogue=estimates, patch=lang, **kwargs)


# ------------------------------------------------------------------------- export and patch


def test_malsim_patch_restores_commented_ttcs_lists_the_rest_and_warns(tmp_path):
    result = export(tmp_path, simulator="malsim")
    assert result.json["T1219"]["expression"] == f"Exponential({RATE})*Bernoulli({P})"
    assert "// Written for mal-simulator 3.3" in result.fragment
    assert [(c.asset, c.step, c.old, c.new) for c in result.changes] == [
        ("OS", "instantStep", "//(0.0445)]", f"Bernoulli({P})"),
        ("OS", "timedStep", f"//[Bernoulli(0.0789)*Exponential({RATE})]", f"Exponential({RATE})*Bernoulli({P})"),
        ("OS", "timestomp", "// [Bernoulli(0.0396)]", "Bernoulli(0.05)"),
        ("Windows", "networkShareDiscovery", "//(0.0129)]", "Bernoulli(0.013)"),
        ("MacOS", "networkShareDiscovery", None, "Bernoulli(0.013)"),
    ]
    assert result.unmatched == [
        Unmatched("OS.credentialDumping", "no attack step or defense named credentialDumping", "T1003")
    ]
    # the unmapped step in the order mal-simulator misreads is left alone, with a warning
    assert result.warnings == [
        "OS.bernoulliFirst [Bernoulli(0.3)*Exponential(0.2)]: mal-simulator's effort-based mode reads only the "
        "left factor of Bernoulli(0.3)*Exponential(0.2), so the time factor after the Bernoulli takes no time"
    ]
    steps = compile_file(tmp_path / "lang.patched.mal")
    assert steps[("Windows", "timedStep")] == ttc_dict(f"Exponential({RATE})*Bernoulli({P})")
    assert steps[("Linux", "timestomp")] == ttc_dict("Bernoulli(0.05)")
    # securiCAD: the same file, no warnings
    assert export(tmp_path / "securicad").warnings == []


@pytest.mark.parametrize(
    ("published", "problem"),
    [
        ("Bernoulli(0.0789)*TruncatedNormal(2,1)", "mal-simulator rejects TruncatedNormal (TruncatedNormal(2,1))"),
        ("Bernoulli(0.0789)*Pareto(1,2)", "mal-simulator rejects Pareto (Pareto(1,2))"),
        ("Bernoulli(0.0789)*(Uniform(8,30)+Exponential(2))", "mal-simulator drops part of"),
    ],
)
def test_malsim_refuses_an_exported_ttc_it_cannot_run_naming_step_and_distribution(tmp_path, published, problem):
    steps = STEPS_CSV.replace(f"Bernoulli(0.0789)*Exponential({RATE})", f'"{published}"')
    with pytest.raises(InputError) as err:
        export(tmp_path / "malsim", steps=steps, simulator="malsim")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("mal-simulator cannot run 1 exported TTC(s): T1219 -> OS.timedStep [")
    assert problem in message and "export for securicad" in message
    assert not (tmp_path / "malsim" / "lang.patched.mal").exists()
    # the MAL compiler and securiCAD read it: written as before, time factor first
    entry = export(tmp_path / "securicad", steps=steps).json["T1219"]
    assert entry["expression"].endswith(f"*Bernoulli({P})")


def test_malsim_writes_a_named_time_constant_as_its_definition(tmp_path):
    steps = STEPS_CSV.replace(f"Bernoulli(0.0789)*Exponential({RATE})", "Bernoulli(0.0789)*HardAndCertain")
    entry = export(tmp_path / "malsim", steps=steps, simulator="malsim").json["T1219"]
    assert entry["expression"] == f"Exponential(0.1)*Bernoulli({P})"
    assert "HardAndCertain written as Exponential(0.1)" in entry["remark"]
    entry = export(tmp_path / "securicad", steps=steps).json["T1219"]
    assert (entry["expression"], entry["remark"]) == (f"HardAndCertain*Bernoulli({P})", None)


def test_malsim_refuses_a_patched_file_it_could_not_load(tmp_path):
    lang = MASTER_STYLE.read_text(encoding="utf-8").replace(
        "| cron", "| cron [TruncatedNormal(26.82,15.913)]"
    )  # a step the mapping does not touch
    with pytest.raises(InputError) as err:
        export(tmp_path, lang=lang, simulator="malsim")
    assert str(err.value) == (
        f"{tmp_path / 'lang.mal'}: mal-simulator cannot load 1 other TTC(s) of the patched file: "
        "Linux.cron [TruncatedNormal(26.82,15.913)]: mal-simulator rejects TruncatedNormal "
        "(TruncatedNormal(26.82,15.913)); edit them, or patch for securicad"
    )
    assert not (tmp_path / "lang.patched.mal").exists()
    assert export(tmp_path / "securicad", lang=lang).changes[0] == TtcChange(
        "OS", "instantStep", "//(0.0445)]", f"Bernoulli({P})"
    )


def test_unknown_simulator_is_refused(tmp_path):
    with pytest.raises(InputError, match="simulator must be one of securicad, malsim, not 'securiCAD'"):
        export(tmp_path, simulator="securiCAD")


# ------------------------------------------------------------------ mal-simulator, mode by mode

HOSTS = 4  # Windows assets per model: four samples of each step per episode
#: Episodes per mode in the whole-simulator test; the expected-value mode is slow (scipy integrates at each reset)
#: and deterministic in time, so it gets fewer.
EPISODES = {mode: 40 if mode is TTCMode.EXPECTED_VALUE else 100 for mode in TTCMode}
MAX_STEPS = 30
#: Probability that a step with time factor Exponential(0.2) succeeds at its first attempt, by mode, from
#: mal-simulator's rules (attacker_step.attempt_attacker_step): effort-based, success when the left factor's
#: cdf(attempts) > U; per-step, a fresh sample <= 1; pre-sampled or expected value v, success when
#: attempts + 1 >= v (v = 1 / 0.2 = 5 for the latter). A zero-time step (a lone Bernoulli) succeeds at once.
FIRST_ATTEMPT = {
    TTCMode.DISABLED: 1.0,
    TTCMode.EFFORT_BASED_PER_STEP_SAMPLE: 1 - math.exp(-RATE),
    TTCMode.PER_STEP_SAMPLE: 1 - math.exp(-RATE),
    TTCMode.PRE_SAMPLE: 1 - math.exp(-2 * RATE),
    TTCMode.EXPECTED_VALUE: 0.0,
}
STEP_NAMES = ("instantStep", "timedStep", "bernoulliFirst")


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> AttackGraph:
    """The attack graph of the language patched for mal-simulator (the two simulated steps only), HOSTS Windows."""
    folder = tmp_path_factory.mktemp("malsim")
    steps = "\n".join(STEPS_CSV.splitlines()[:3]) + "\n"  # T1102 instantStep, T1219 timedStep
    estimates = "\n".join(ESTIMATES_CSV.splitlines()[:3]) + "\n"
    steps_csv, estimates_csv, lang_mal = write_inputs(folder, steps=steps, estimates=estimates)
    result = export_mal(folder, steps_csv=steps_csv, catalogue=estimates_csv, patch=lang_mal, simulator="malsim")
    assert [c.new for c in result.changes] == [f"Bernoulli({P})", f"Exponential({RATE})*Bernoulli({P})"]
    lang = LanguageGraph.from_mal_spec(str(result.written[0]))
    model = Model("test", lang)
    for i in range(HOSTS):
        model.add_asset("Windows", f"h{i}")
    return AttackGraph(lang, model)


def nodes(graph: AttackGraph, step: str) -> list:
    return [graph.get_node_by_full_name(f"h{i}:{step}") for i in range(HOSTS)]


def within(hits: int, n: int, p: float, sds: float = 4.5) -> bool:
    """``hits`` of ``n`` is within ``sds`` Monte Carlo standard errors of ``p`` (exactly ``p`` if it is 0 or 1)."""
    if p in (0.0, 1.0):
        return hits == p * n
    return abs(hits / n - p) <= sds * math.sqrt(p * (1 - p) / n)


def test_mal_simulator_finds_each_exported_step_possible_with_probability_p(graph):
    """The Bernoulli factor is sampled once per episode (at reset, the same way in every mode), whatever its place."""
    rng = np.random.default_rng(20240611)
    n = 20_000
    for name in STEP_NAMES:
        node = nodes(graph, name)[0]
        dist = TTCDist.from_node(node)
        possible = sum(not is_impossible_attack_step(node, dist, rng) for _ in range(n))
        assert within(possible, n, P), (name, possible / n)


def first_attempt(mode: TTCMode, node, rng: np.random.Generator, n: int) -> int:
    """How many of ``n`` first attempts at ``node`` succeed, by the function the simulator calls in ``mode``."""
    dist = TTCDist.from_node(node)
    if mode is TTCMode.DISABLED:
        return n
    if mode is TTCMode.EFFORT_BASED_PER_STEP_SAMPLE:
        return sum(dist.attempt_ttc_with_effort(1, rng) for _ in range(n))
    if mode is TTCMode.PER_STEP_SAMPLE:
        return sum(dist.sample_value(rng) <= 1 for _ in range(n))
    # PRE_SAMPLE, EXPECTED_VALUE: a value per episode (attack_step_ttc_value at reset), success when attempts + 1 >= it
    return sum(1 + 1 >= attack_step_ttc_value(node, dist, mode, rng) for _ in range(n))


@pytest.mark.parametrize("mode", list(TTCMode), ids=lambda m: m.name)
def test_each_ttc_mode_reads_the_time_factor_written_first(graph, mode):
    """mal-simulator's per-mode functions, many draws: the zero-time step succeeds at once, the timed step (time
    factor first) as its Exponential(0.2) says; the same TTC with the Bernoulli first takes no time in the
    effort-based mode."""
    rng = np.random.default_rng(20240611 + mode.value)
    n = 10 if mode is TTCMode.EXPECTED_VALUE else 10_000  # expected values are fixed (and slow: scipy integrates)
    instant, timed, misread = (nodes(graph, name)[0] for name in STEP_NAMES)
    assert first_attempt(mode, instant, rng, n) == n
    assert within(first_attempt(mode, timed, rng, n), n, FIRST_ATTEMPT[mode])
    wrong = 1.0 if mode is TTCMode.EFFORT_BASED_PER_STEP_SAMPLE else FIRST_ATTEMPT[mode]
    assert within(first_attempt(mode, misread, rng, n), n, wrong)
    if mode is TTCMode.EXPECTED_VALUE:
        assert attack_step_ttc_value(timed, None, mode, rng) == pytest.approx(1 / RATE)
        assert attack_step_ttc_value(instant, None, mode, rng) == 1.0
    if mode is TTCMode.PRE_SAMPLE:
        dist = TTCDist.from_node(timed)
        values = [attack_step_ttc_value(timed, dist, mode, rng) for _ in range(n)]
        assert np.mean(values) == pytest.approx(1 / RATE, rel=4.5 / math.sqrt(n))


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(TTCMode), ids=lambda m: m.name)
def test_each_ttc_mode_runs_p_and_the_time_of_the_exported_ttcs(graph, mode):
    """Whole episodes in mal-simulator: each step is possible with probability p; the zero-time step
    succeeds at once; the timed step (time factor first) takes time in every mode that reads time,
    while the same TTC with the Bernoulli first takes none in the effort-based mode."""
    entry_points = frozenset(f"h{i}:access" for i in range(HOSTS))
    sim = MalSimulator(
        graph,
        agents=[AttackerSettings(name="attacker", entry_points=entry_points)],
        sim_settings=MalSimulatorSettings(seed=20240611 + mode.value, ttc_mode=mode),
    )
    targets = {name: nodes(graph, name) for name in STEP_NAMES}
    possible = dict.fromkeys(STEP_NAMES, 0)
    first = dict.fromkeys(STEP_NAMES, 0)
    later = dict.fromkeys(STEP_NAMES, 0)
    for episode in range(EPISODES[mode]):
        state = (sim.reset() if episode else sim.agent_states)["attacker"]
        open_nodes = {}
        for name, group in targets.items():
            for node in group:
                if node in state.action_surface:  # impossible steps never enter the action surface
                    possible[name] += 1
                    open_nodes[node] = name
        for attempt in range(1, MAX_STEPS + 1):
            if not open_nodes:
                break
            state = sim.step({"attacker": list(open_nodes)})["attacker"]
            for node in [n for n in open_nodes if n in state.performed_nodes]:
                name = open_nodes.pop(node)
                if attempt == 1:
                    first[name] += 1
                else:
                    later[name] += 1
    n = EPISODES[mode] * HOSTS
    for name in STEP_NAMES:
        assert within(possible[name], n, P), (name, possible[name] / n)
    assert first["instantStep"] == possible["instantStep"]
    assert within(first["timedStep"], possible["timedStep"], FIRST_ATTEMPT[mode]), first["timedStep"]
    if mode is not TTCMode.DISABLED:
        assert later["timedStep"] > 0
    if mode is TTCMode.EFFORT_BASED_PER_STEP_SAMPLE:
        assert first["bernoulliFirst"] == possible["bernoulliFirst"]  # why the export writes the time first
    else:
        assert within(first["bernoulliFirst"], possible["bernoulliFirst"], FIRST_ATTEMPT[mode])
