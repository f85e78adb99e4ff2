"""The multi-technique catalogue's numbers, from a posterior of known draws, against hand counts and scipy.stats.

The draws are independent Beta and Normal samples, so every figure has an answer known without the package:
means and tail probabilities by counting, HDIs from the Beta's quantile function, Monte Carlo errors and
effective sample sizes from the closed forms for independent draws.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import xarray as xr

from attackprev.analysis.catalogue import catalogue_summary, hyper_rows, technique_rows
from attackprev.evidence.tables import load_evidence
from attackprev.inference.catalogue import CatalogueResult, CatalogueSettings
from attackprev.inference.diagnostics import Diagnostics
from attackprev.model.catalogue import VARIANTS, CatalogueData
from attackprev.model.priors import CataloguePriors
from tests.grid_reference import beta_hdi

CHAINS, DRAWS = 4, 2000
#: Beta(a, b) of each technique's μ and θ_new. T1102: mean 0.03, far below its published 0.0445;
#: T1076 (revoked, now T1021.001): mean 0.5, close to its published 0.5561; T1571: no published probability.
MU = {"T1076": (50.0, 50.0), "T1102": (30.0, 970.0), "T1571": (3.0, 27.0)}
NEW = {"T1076": (5.0, 5.0), "T1102": (3.0, 97.0), "T1571": (1.5, 13.5)}
HYPER = {
    "mu_logit_mean": (-2.0, 0.5),
    "mu_logit_sd": (1.2, 0.2),
    "log_kappa_mean": (3.0, 0.4),
    "log_kappa_sd": (0.7, 1),
}
OFFSET = (0.4, 0.3)


@pytest.fixture(scope="module")
def evidence():
    return load_evidence()


@pytest.fixture(scope="module")
def result(evidence) -> CatalogueResult:
    """A catalogue result for three techniques of the evidence, with independent draws of known distributions."""
    obs = [o for o in evidence.observations if o.technique_id in MU]
    data = CatalogueData.from_observations(obs)
    rng = np.random.default_rng(2024)
    shape = (CHAINS, DRAWS)
    mu = np.stack([rng.beta(*MU[t], size=shape) for t in data.techniques], axis=-1)
    new = np.stack([rng.beta(*NEW[t], size=shape) for t in data.techniques], axis=-1)
    kappa = np.exp(rng.normal(3.0, 0.5, size=(*shape, len(data.techniques))))
    coords = {"chain": np.arange(CHAINS), "draw": np.arange(DRAWS), "technique": data.techniques}
    per_t = ("chain", "draw", "technique")
    variables = {"mu": (per_t, mu), "theta_new": (per_t, new), "kappa": (per_t, kappa)}
    variables |= {k: (("chain", "draw"), rng.normal(m, s, size=shape)) for k, (m, s) in HYPER.items()}
    offsets = rng.normal(*OFFSET, size=(*shape, len(data.sources) - 1))
    variables["source_offset"] = (("chain", "draw", "source"), offsets)
    post = xr.Dataset(variables, coords=coords | {"source": data.sources[1:]})
    tree = xr.DataTree.from_dict({"posterior": post})
    diag = Diagnostics(0, 1.002, 950.0, 900.0, CHAINS, DRAWS)
    return CatalogueResult(
        data=data,
        variant="offsets",
        tree=tree,
        diagnostics={"offsets": diag, "shared": Diagnostics(5, 1.2, 20.0, 10.0, CHAINS, DRAWS, ["5 divergent"])},
        comparison=[],
        key="k",
        priors=CataloguePriors(),
        settings=CatalogueSettings(),
        seconds={},
    )


def four(x: float) -> str:
    """``x`` to four significant figures, as a MAL probability is written (no trailing zeros)."""
    return f"{float(f'{x:.4g}'):g}"


def draws(result, name: str, t: str) -> np.ndarray:
    return result.tree["posterior"][name].sel(technique=t).values.ravel()


@pytest.fixture(scope="module")
def rows(result, evidence) -> dict[str, dict]:
    out = technique_rows(result, evidence)
    assert [r["technique_id"] for r in out] == ["T1102", "T1076", "T1571"]  # |log(mean / published)| largest first
    return {r["technique_id"]: r for r in out}


def test_means_and_tail_probabilities_are_counts_of_the_draws(result, rows):
    for t in MU:
        mu = draws(result, "mu", t)
        assert rows[t]["mean"] == pytest.approx(mu.mean(), rel=1e-12)
        assert rows[t]["mean"] == pytest.approx(scipy.stats.beta(*MU[t]).mean(), rel=0.01)
    mu = draws(result, "mu", "T1102")
    assert rows["T1102"]["prob_above_published"] == np.count_nonzero(mu > 0.0445) / mu.size
    exact = scipy.stats.beta(*MU["T1102"]).sf(0.0445)  # about 0.004
    assert abs(rows["T1102"]["prob_above_published"] - exact) < 4 * math.sqrt(exact / mu.size) + 1e-4
    mu = draws(result, "mu", "T1076")
    assert rows["T1076"]["prob_above_published"] == pytest.approx(scipy.stats.beta(*MU["T1076"]).sf(0.5561), abs=0.01)
    assert rows["T1571"]["prob_above_published"] is None


def test_hdis_are_the_shortest_intervals_of_the_betas(result, rows):
    for t in MU:
        lo, hi = beta_hdi(*MU[t])
        width = hi - lo
        # the draws' HDI scatters by about 1.5 % of the width around the Beta's (8000 draws): 4 sd allowed
        assert rows[t]["hdi_94_low"] == pytest.approx(lo, abs=0.06 * width), t
        assert rows[t]["hdi_94_high"] == pytest.approx(hi, abs=0.06 * width), t
        mu = draws(result, "mu", t)
        inside = np.count_nonzero((mu >= rows[t]["hdi_94_low"]) & (mu <= rows[t]["hdi_94_high"]))
        assert inside == math.ceil(0.94 * mu.size), t  # the interval holds exactly 94 % of the draws
        hi_new = beta_hdi(*NEW[t])[1]
        assert rows[t]["theta_new_hdi_94_high"] == pytest.approx(hi_new, abs=0.06 * hi_new), t


def test_published_values_against_the_interval(rows):
    assert rows["T1102"]["published_p"] == 0.0445 and rows["T1102"]["published_inside_hdi_94"] is False
    assert rows["T1076"]["published_p"] == 0.5561 and rows["T1076"]["published_inside_hdi_94"] is True
    assert rows["T1571"]["published_p"] is None and rows["T1571"]["published_inside_hdi_94"] is None
    assert rows["T1102"]["log_ratio"] == pytest.approx(abs(math.log(rows["T1102"]["mean"] / 0.0445)), rel=1e-12)
    assert rows["T1076"]["log_ratio"] == pytest.approx(abs(math.log(rows["T1076"]["mean"] / 0.5561)), rel=1e-12)
    assert rows["T1571"]["log_ratio"] is None


def test_mal_lines_keep_four_significant_figures_and_the_time_factor(rows):
    assert rows["T1102"]["mal_expression"] == f"Bernoulli({four(rows['T1102']['mean'])})"
    assert rows["T1076"]["mal_expression"] == f"Exponential(480)*Bernoulli({four(rows['T1076']['mean'])})"


def test_monte_carlo_error_of_independent_draws_is_sd_over_root_n(result, rows):
    for t in MU:
        mu = draws(result, "mu", t)
        assert rows[t]["mean_mcse"] == pytest.approx(mu.std() / math.sqrt(mu.size), rel=0.1), t


def test_identity_evidence_and_notes(rows, evidence):
    assert rows["T1076"]["current_id"] == "T1021.001" and rows["T1102"]["current_id"] == ""
    assert rows["T1102"]["evidence"] == "mtrends2020 9/227; sok2019_windows_malware 47/951"
    for t in MU:
        obs = evidence.for_technique(t)
        assert rows[t]["sources"] == len(obs)
        assert rows[t]["evidence"] == "; ".join(f"{o.source_id} {o.successes}/{o.trials}" for o in obs)
    assert rows["T1102"]["published_result"] == "Bernoulli(0.0445)" and rows["T1102"]["name"] == "Web Service"


def test_hyperparameters_of_normal_draws(result):
    out = {r["name"]: r for r in hyper_rows(result)}
    n = CHAINS * DRAWS
    for name, (m, s) in HYPER.items():
        x = result.tree["posterior"][name].values.ravel()
        r = out[name]
        assert r["mean"] == pytest.approx(x.mean(), rel=1e-12) and r["sd"] == pytest.approx(x.std(ddof=1), rel=1e-12)
        assert r["mean"] == pytest.approx(m, abs=4 * s / math.sqrt(n))
        # the ends of 8000 normal draws' HDI scatter by about 0.055 sd around the exact ones: 4 sd allowed
        assert r["hdi_94"] == pytest.approx(list(scipy.stats.norm(m, s).interval(0.94)), abs=0.22 * s)
        assert r["ess_bulk"] == pytest.approx(n, rel=0.15) and abs(r["r_hat"] - 1.0) < 0.01
    sources = result.data.sources[1:]
    assert [r["name"] for r in hyper_rows(result)][len(HYPER) :] == [f"source_offset[{s}]" for s in sources]
    for s in sources:
        r = out[f"source_offset[{s}]"]
        x = result.tree["posterior"]["source_offset"].sel(source=s).values.ravel()
        assert r["mean"] == pytest.approx(x.mean(), rel=1e-12) and r["sd"] == pytest.approx(x.std(ddof=1), rel=1e-12)
        assert r["hdi_94"] == pytest.approx(list(scipy.stats.norm(*OFFSET).interval(0.94)), abs=0.22 * OFFSET[1])
        assert r["ess_bulk"] == pytest.approx(n, rel=0.15)


def test_summary_counts_by_hand(result, evidence):
    s = catalogue_summary(result, evidence)
    obs = [o for o in evidence.observations if o.technique_id in MU]
    per_technique = {t: sum(o.technique_id == t for o in obs) for t in MU}
    assert s["n_techniques"] == 3 and s["n_observations"] == len(obs)
    assert s["n_multi_source"] == sum(n > 1 for n in per_technique.values())
    assert s["variant"] == "offsets" and s["variant_description"] == VARIANTS["offsets"].description
    assert s["reference_source"] == result.data.sources[0] == "mtrends2020"
    assert s["diagnostics"]["offsets"]["passed"] is True and s["diagnostics"]["shared"]["passed"] is False
    assert s["settings"] == asdict(CatalogueSettings()) and s["data_sha256"] == evidence.digest
    assert [r["technique_id"] for r in s["techniques"]] == ["T1102", "T1076", "T1571"]
    assert s["priors"] == CataloguePriors().to_dict() and s["cache_key"] == "k"


def test_a_technique_without_a_note_keeps_its_row(result, evidence, monkeypatch):
    """A technique whose note cannot be found gets no published value and a plain Bernoulli line."""
    import attackprev.evidence.enterpriselang as elang

    monkeypatch.setattr(elang, "note_for", lambda t, path: None)
    out = {r["technique_id"]: r for r in technique_rows(result, evidence)}
    assert out["T1076"]["published_p"] is None and out["T1076"]["log_ratio"] is None
    assert out["T1076"]["mal_expression"] == f"Bernoulli({four(out['T1076']['mean'])})"
    assert out["T1076"]["published_result"] == "" and out["T1076"]["note_path"] == ""
