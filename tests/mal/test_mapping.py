"""The technique -> enterpriseLang step table and the estimates read from reports."""

from __future__ import annotations

from attackprev.mal.mapping import load_steps


def test_step_table_covers_t1102():
    steps = load_steps()
    assert len(steps) == 53
    t1102 = steps["T1102"]
    assert (t1102.attack_step, t1102.assets, t1102.published_ttc) == (
        "webService",
        ("ExternalNetwork",),
        "Bernoulli(0.0445)",
    )
    assert steps["T1099"].assets == ("Windows", "Linux")
