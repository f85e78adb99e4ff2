"""The multi-technique fit: a seeded fit's diagnostics and the catalogue table written from it."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from attackprev.evidence.tables import load_evidence


@pytest.fixture(scope="module")
def evidence():
    return load_evidence()


@pytest.fixture(scope="module")
def pooled_fit(evidence):
    from attackprev.inference.catalogue import fit_catalogue

    return fit_catalogue(evidence, variants=["pooled"])


@pytest.mark.slow
def test_seeded_multi_technique_fit_is_healthy(pooled_fit):
    d = pooled_fit.diagnostics["pooled"]
    assert d.divergences == 0, d
    assert d.max_rhat <= 1.01, d
    assert d.min_ess_bulk >= 400, d
    mu = pooled_fit.tree["posterior"]["mu"]
    assert mu.sizes["technique"] == 53


@pytest.mark.slow
def test_catalogue_table_contents(pooled_fit, evidence, tmp_path):
    from attackprev.reporting.catalogue import write_catalogue_report

    folder = write_catalogue_report(pooled_fit, evidence, tmp_path)
    rows = list(csv.DictReader(io.StringIO((folder / "catalogue.csv").read_text())))
    assert len(rows) == len(evidence.techniques())
    t1102 = next(r for r in rows if r["technique_id"] == "T1102")
    mu = pooled_fit.mu_draws("T1102")
    assert float(t1102["mean"]) == pytest.approx(mu.mean(), rel=1e-5)
    assert 0 < float(t1102["mean_mcse"]) < mu.std() / 10  # Monte Carlo error of the mean, well below the sd
    assert float(t1102["published_p"]) == 0.0445
    assert t1102["mal_expression"] == f"Bernoulli({float(t1102['p']):g})"
    inside = float(t1102["hdi_94_low"]) <= 0.0445 <= float(t1102["hdi_94_high"])
    assert t1102["published_inside_hdi_94"] == str(inside)
    # time factors are kept as published; revoked IDs show their replacement
    rdp = next(r for r in rows if r["technique_id"] == "T1076")
    assert rdp["mal_expression"].startswith("Exponential(480)*") and rdp["current_id"] == "T1021.001"
    # sorted by |log(mean / published)|, largest first, techniques without a published p last
    ratios = [abs(np.log(float(r["mean"]) / float(r["published_p"]))) for r in rows if r["published_p"]]
    assert ratios == sorted(ratios, reverse=True)
    assert all(not r["published_p"] for r in rows[len(ratios) :])
    text = (folder / "catalogue.md").read_text()
    assert "## Which model: PSIS-LOO" not in text or "pooled" in text
    assert "## Figures left out of the model" in text and "| proxy |" in text
