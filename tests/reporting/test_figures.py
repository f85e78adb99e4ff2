"""Report figures: every PNG is written, decodable and not blank, with and without a prior."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from attackprev.errors import InputError
from attackprev.reporting.figures import FILENAMES, _pct, example_tree, write_figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_real_png(path: Path) -> None:
    """A decodable PNG of a sensible size that actually shows something."""
    import matplotlib.image as mpimg

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    assert 5_000 < len(data) < 200_000, f"{path.name} is {len(data)} bytes"
    pixels = mpimg.imread(path)
    height, width = pixels.shape[:2]
    assert 250 <= height <= 1200 and 500 <= width <= 1400, f"{path.name} is {width}x{height}"
    rgb = pixels[..., :3]
    assert rgb.var() > 0, f"{path.name} is a single colour"
    ink = (rgb.min(axis=-1) < 0.9).mean()  # share of pixels that are not (near) white
    assert ink > 0.01, f"{path.name} is almost blank ({ink:.1%} ink)"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    out = tmp_path_factory.mktemp("figures")
    return out, write_figures(example_tree(), out, 0.0445, (0.015, 0.17), "T1102")


def test_every_figure_is_a_real_png(written: tuple[Path, dict[str, str]]) -> None:
    out, files = written
    assert files == FILENAMES
    assert set(files) == {"forest", "mu_posterior", "prior_posterior", "ppc", "rank", "trace"}
    for name in files.values():
        assert_real_png(out / name)


def test_figures_close_what_they_open(written: tuple[Path, dict[str, str]]) -> None:
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_without_prior_draws_posterior_alone(tmp_path: Path) -> None:
    tree = example_tree(with_prior=False)
    assert "prior" not in tree.children
    files = write_figures(tree, tmp_path / "new_dir", 0.0445, (0.015, 0.17), "T1102")
    for name in files.values():
        assert_real_png(tmp_path / "new_dir" / name)


def test_missing_group_is_one_clear_error(tmp_path: Path) -> None:
    tree = example_tree()
    del tree["posterior_predictive"]
    with pytest.raises(InputError, match="posterior_predictive"):
        write_figures(tree, tmp_path, 0.0445, (0.015, 0.17), "T1102")


def test_percent_labels() -> None:
    assert _pct(0.0445) == "4.45 %"
    assert _pct(0.175) == "17.5 %"
    assert _pct(1e-12) == "0.00 %"


def test_import_does_not_load_plotting_libraries() -> None:
    code = (
        "import sys, attackprev.reporting.figures\n"
        "loaded = [m for m in ('matplotlib', 'arviz', 'arviz_plots', 'scipy') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_multi_technique_headline_changes_the_mu_figure_and_adds_forest_rows(tmp_path: Path) -> None:
    from attackprev.inference.summaries import Headline

    tree = example_tree()
    post = tree["posterior"]
    headline = Headline(mu=post["mu"].values * 0.8, theta_new=post["theta_new"].values * 0.8)
    plain = write_figures(tree, tmp_path / "plain", 0.0445, (0.015, 0.17), "T1102", keys=("mu_posterior", "forest"))
    files = write_figures(
        tree, tmp_path / "headline", 0.0445, (0.012, 0.14), "T1102", headline=headline, keys=("mu_posterior", "forest")
    )
    assert files == plain == {"forest": "forest.png", "mu_posterior": "mu_posterior.png"}
    for name in files.values():
        assert_real_png(tmp_path / "headline" / name)
        assert (tmp_path / "headline" / name).read_bytes() != (tmp_path / "plain" / name).read_bytes()
    import matplotlib.image as mpimg

    taller = mpimg.imread(tmp_path / "headline" / "forest.png").shape[0]
    assert taller > mpimg.imread(tmp_path / "plain" / "forest.png").shape[0]  # two more rows


def test_unknown_figure_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown figure keys: nope"):
        write_figures(example_tree(), tmp_path, 0.0445, (0.015, 0.17), "T1102", keys=("nope",))
