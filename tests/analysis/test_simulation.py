"""Posterior draws through an attack graph, against exact answers on a small language of our own.

The language: an attacker on ``net:access`` reaches ``host:foothold`` through one of two OR paths
(techniques T1190 and T1566) and then ``host:admin`` through an AND step (T1003) that also needs
``creds:use`` (technique T1078). With independent steps, P(foothold) = 1 − (1 − a)(1 − b) and
P(admin) = P(foothold) · c · d for one draw of (a, b, c, d): computed here exactly for every draw.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from attackprev.analysis.simulation import PosteriorDraws, SimulationSettings, choose_draws, simulate
from attackprev.errors import InputError
from attackprev.reporting.simulation import render_simulation_markdown, write_simulation_report
from attackprev.simulation.graph import load_attack_graph
from attackprev.simulation.techniques import read_step_techniques

LANGUAGE = """\
#id: "org.attackprev.testlang"
#version: "0.0.1"
category Test {
  asset Net {
    | access
      -> hosts.exploit, hosts.phish, creds.found
  }
  asset Host {
    | exploit [Exponential(0.5)*Bernoulli(0.3)]
      -> foothold
    | phish [Bernoulli(0.2)]
      -> foothold
    | foothold
      -> escalate
    & escalate [Bernoulli(0.5)]
      -> admin
    | admin
  }
  asset Creds {
    | found
      -> use
    | use [Bernoulli(0.6)]
      -> hosts2.escalate
  }
}
associations {
  Net [nets] * <-- Contains --> * [hosts] Host
  Net [credNets] * <-- Leaks --> * [creds] Creds
  Creds [creds2] * <-- ValidOn --> * [hosts2] Host
}
"""
MODEL = """\
assets:
  0:
    name: net
    type: Net
    associated_assets:
      hosts: {1: host}
      creds: {2: creds}
  1:
    name: host
    type: Host
    associated_assets:
      nets: {0: net}
      creds2: {2: creds}
  2:
    name: creds
    type: Creds
    associated_assets:
      credNets: {0: net}
      hosts2: {1: host}
metadata:
  name: testmodel
  langID: org.attackprev.testlang
  langVersion: 0.0.1
  malVersion: 0.1.0-SNAPSHOT
  MAL-Toolbox Version: 2.11.0
  info: test
"""
STEPS = """\
asset,attack_step,technique_id
Host,exploit,T1190
Host,phish,T1566
Host,escalate,T1003
Creds,use,T1078
"""
TECHNIQUES = ["T1003", "T1078", "T1190", "T1566", "T9999"]  # the fit holds more techniques than the graph maps


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("lang")
    (d / "test.mal").write_text(LANGUAGE)
    (d / "model.yml").write_text(MODEL)
    (d / "steps.csv").write_text(STEPS)
    return d


def posterior(n=400, seed=0, passed=True) -> PosteriorDraws:
    rng = np.random.default_rng(seed)
    p = np.column_stack(
        [
            rng.beta(20, 20, n),  # T1003: around 0.5, fairly certain
            rng.beta(2, 2, n),  # T1078: wide
            rng.beta(30, 70, n),  # T1190
            rng.beta(5, 45, n),  # T1566
            rng.beta(1, 1, n),
        ]
    )
    return PosteriorDraws(
        TECHNIQUES, p, "fam", "test intrusions", "ab" * 32, "2 chains", passed, [] if passed else ["x"]
    )


def run(files, post, **kw):
    graph = load_attack_graph(files / "test.mal", files / "model.yml")
    steps = read_step_techniques(files / "steps.csv")
    settings = SimulationSettings(**{"draws": 400, "episodes": 4096, "point_episodes": 2**16, **kw})
    return simulate(
        graph,
        steps,
        ["net:access"],
        ["host:foothold", "host:admin"],
        post,
        settings,
        language=files / "test.mal",
        model=files / "model.yml",
        command="test",
    )


def exact(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, d, a, b = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
    foothold = 1 - (1 - a) * (1 - b)
    return foothold, foothold * c * d


def test_every_draw_matches_the_exact_answer_within_monte_carlo_error(files):
    post = posterior()
    summary, draws = run(files, post)
    chosen = post.p[choose_draws(400, 400, SimulationSettings().seed)]
    foothold, admin = exact(chosen)
    for name, truth in [("host:foothold", foothold), ("host:admin", admin)]:
        se = np.sqrt(truth * (1 - truth) / 4096)
        z = (draws[name] - truth) / se
        assert np.abs(z).max() < 4.5, name
        assert abs(z.mean()) < 4 / np.sqrt(z.size), name  # no bias across the draws
    t = {r["target"]: r for r in summary["targets"]}
    assert t["host:admin"]["posterior"]["mean"] == pytest.approx(
        admin.mean(), abs=3 * np.sqrt(admin.mean() / 4096 / 400)
    )


def test_point_values_are_the_languages_and_the_posterior_means(files):
    post = posterior()
    summary, _ = run(files, post)
    t = {r["target"]: r for r in summary["targets"]}
    lang_foothold = 1 - 0.7 * 0.8
    assert t["host:foothold"]["language"]["p"] == pytest.approx(lang_foothold, abs=4 * 0.0019)
    assert t["host:admin"]["language"]["p"] == pytest.approx(lang_foothold * 0.5 * 0.6, abs=4 * 0.0016)
    m = post.p[choose_draws(400, 400, SimulationSettings().seed)].mean(axis=0)
    plug_foothold = 1 - (1 - m[2]) * (1 - m[3])
    assert t["host:admin"]["plug_in"]["p"] == pytest.approx(plug_foothold * m[0] * m[1], abs=4 * 0.0016)


def test_the_widest_input_moves_the_answer_most(files):
    summary, _ = run(files, posterior())
    admin = next(r for r in summary["targets"] if r["target"] == "host:admin")
    ranked = [r["input"] for r in admin["sensitivity"]]
    assert ranked[0] == "T1078"  # Beta(2, 2): by far the widest factor of P(admin)
    shares = {r["input"]: r["share"] for r in admin["sensitivity"]}
    assert shares["T1078"] > 0.6 and shares["T1003"] < 0.2
    foothold = next(r for r in summary["targets"] if r["target"] == "host:foothold")
    f_shares = {r["input"]: r["share"] for r in foothold["sensitivity"]}
    assert f_shares["T1003"] < 0.05 and f_shares["T1078"] < 0.05  # after the foothold: no effect on it


def test_joint_draws_and_the_seed(files):
    post = posterior()
    a, da = run(files, post)
    b, db = run(files, post)
    assert json.dumps(a) == json.dumps(b) and all(np.array_equal(da[k], db[k]) for k in da)
    c, dc = run(files, post, seed=5)
    assert not np.array_equal(da["host:admin"], dc["host:admin"]) and c["seed"] == 5
    assert choose_draws(10, 5, 1).tolist() == sorted(set(choose_draws(10, 5, 1).tolist()))  # without replacement
    assert len(choose_draws(10, 25, 1)) == 25


def test_the_time_to_compromise_of_one_exponential_step(files):
    summary, _ = run(files, posterior())
    foothold = next(r for r in summary["targets"] if r["target"] == "host:foothold")
    # reached through exploit (2 days on average when possible) or phish (no time): the time is 0 when phish
    # is possible, else Exponential(0.5); with the language's values P(phish) = 0.2
    lang = foothold["ttc"]["language"]
    expected = (0.3 * 0.8 * 2.0) / (1 - 0.7 * 0.8)
    assert lang["mean"] == pytest.approx(expected, rel=0.05)


def test_the_report_renders_from_its_summary_and_says_when_the_fit_failed(files, tmp_path):
    summary, draws = run(files, posterior(passed=False))
    folder = write_simulation_report(summary, draws, tmp_path, "t")
    text = (folder / "report.md").read_text()
    stored = json.loads((folder / "summary.json").read_text())
    assert text == render_simulation_markdown(stored)
    assert text.startswith("> **Sampler diagnostics failed**")
    assert sorted(p.name for p in folder.iterdir()) == ["reach.png", "report.md", "sensitivity.png", "summary.json"]


def test_noise_dominated_rankings_are_withheld(files):
    summary, _ = run(files, posterior(), episodes=8)
    admin = next(r for r in summary["targets"] if r["target"] == "host:admin")
    assert admin["posterior"]["noise_share"] > 0.5
    assert all(r["share"] is None for r in admin["sensitivity"])
    assert "cannot be told from noise" in render_simulation_markdown(summary)


def test_bad_input_is_one_line(files):
    post = posterior()
    with pytest.raises(InputError, match="no attack-graph node named 'host:admn'"):
        graph = load_attack_graph(files / "test.mal", files / "model.yml")
        simulate(
            graph,
            read_step_techniques(files / "steps.csv"),
            ["net:access"],
            ["host:admn"],
            post,
            SimulationSettings(draws=50, episodes=64),
            language=files / "test.mal",
            model=files / "model.yml",
            command="t",
        )
    bad = files / "bad_steps.csv"
    bad.write_text("asset,attack_step,technique_id\nHost,exploit,T0001\n")
    with pytest.raises(InputError) as err:
        read_step_techniques(bad)
    assert str(err.value) == f"{bad}:2: technique_id 'T0001': not an ATT&CK Enterprise v18.1 technique"
    short = PosteriorDraws(["T1003"], post.p[:, :1], "fam", "x", "ab" * 32, "s", True, [])
    with pytest.raises(InputError, match="not in the multi-source fit"):
        run(files, short)
