"""The catalogue page: its HTML as text, then the page itself in headless Chromium.

The browser tests need Debian's Chromium and chromedriver (``apt install chromium chromium-driver``);
without them they are skipped, unless ``ATTACKPREV_REQUIRE_BROWSER=1`` (set by CI after it installs
them), which turns the skip into a failure. One browser serves the whole module.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from pathlib import Path

import pytest

from attackprev.reporting.browser import missing_browser, start_headless_chromium
from attackprev.reporting.catalogue_page import render_catalogue_page, script_json

ROOT = Path(__file__).resolve().parents[2]
REAL_PAGE = ROOT / "reports" / "techniques" / "index.html"
REAL_CSV = ROOT / "reports" / "techniques" / "catalogue.csv"
NO_BROWSER = (
    "Chromium/chromedriver not installed (apt install chromium chromium-driver): "
    "browser test of the catalogue page skipped"
)
WIDTH, HEIGHT = 1400, 900

TACTICS = ["initial-access", "execution", "persistence", "defense-evasion", "command-and-control"]
FAMILIES = ["mtrends", "attack_groups", "cisa", "dbir"]
# fold changes either side of the filters' thresholds, exactly representable either way round (1/0.2 == 5.0)
RATIOS = [0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 1.6, 2.0, 4.0, 5.0, 8.0, 10.0, 12.5, 40.0]


# ------------------------------------------------------------------------------ synthetic data
def synthetic_rows(n: int = 30) -> list[dict]:
    """``n`` techniques with known values, every float already at six significant digits or fewer."""
    rows = []
    for i in range(n):
        tid = f"T{1001 + i // 2}" + ("" if i % 2 == 0 else f".{i:03d}")
        mean = float(f"{10 ** (-4 + 3.9 * ((i * 7) % n) / (n - 1)):.6g}")  # spread over 1e-4 .. 0.8 in a shuffled order
        low = float(f"{mean * (0.05 if i % 5 == 0 else 0.4):.6g}")
        high = float(f"{min(0.99, mean * (1.6 + (i % 4))):.6g}")
        families = [f for j, f in enumerate(FAMILIES) if (i >> j) & 1] or ["attack_groups"]
        sources = [
            {"source": f"{f}{2020 + k}", "family": f, "k": (i * 3 + k) % 17, "n": 40 + 10 * k + i}
            for f in families
            for k in range(1 + (i % 2))
        ]
        ratio = RATIOS[i % len(RATIOS)]
        elang = None
        if i % 3 != 2:
            p = float(f"{mean / ratio:.6g}")
            elang = {
                "steps": f"Asset{i}.step Other.step{i}",
                "p": p,
                "ratio": ratio,
                "prob_above": float(f"{min(1.0, 0.5 * ratio / (1 + ratio)):.6g}"),
                "inside": low <= p <= high,
            }
        runner_up = None
        if i % 4 != 3:
            runner_up = {"model": "exchangeable", "mean": mean, "low": low, "high": high, "differs": i % 7 == 0}
        name = f"{'abcdefghij'[i % 10].upper()}{'xyz'[i % 3]} technique {i}"
        if i == 4:
            name = "Evil </script><script>window.pwned = 1</script> & <b>bold</b>"
        elif i == 5:
            name = "lower-case name"
        rows.append(
            {
                "id": tid,
                "name": name,
                "url": f"https://attack.mitre.org/techniques/{tid.replace('.', '/')}/",
                "tactics": [TACTICS[i % 5]] + ([TACTICS[(i + 2) % 5]] if i % 3 == 0 else []),
                "mean": mean,
                "low": low,
                "high": high,
                "target_data": "mtrends" in families,
                "mal": f"Bernoulli({mean:.4g})",
                "families": sorted(families),
                "sources": sources,
                "elang": elang,
                "runner_up": runner_up,
                "report": f"../{tid.lower()}/report.md" if i % 6 == 0 else None,
            }
        )
    return rows


def synthetic_meta(passed: bool = True) -> dict:
    return {
        "title": "attackprev catalogue: ATT&CK techniques on the mtrends scale",
        "target": "mtrends",
        "target_description": "the share of intrusions investigated by incident responders that show the technique",
        "families": [{"id": f, "label": f"{f} (things)"} for f in FAMILIES],
        "tactics": [{"id": t, "label": t.replace("-", " ").title()} for t in TACTICS],
        "diagnostics": {
            "passed": passed,
            "text": "0 divergences, max R-hat 1.009, min bulk ESS 441" if passed else "12 divergences, max R-hat 1.2",
        },
        "provenance": "data sha256 ab12cd34ef56, seed 20201102, 4 chains x 1500 draws; attackprev 0.1.0, pymc 6.0",
        "command": "python models/catalogue.py",
        "links": {"catalogue_md": "catalogue.md", "catalogue_csv": "catalogue.csv", "layers": "layers/"},
    }


def blob(page: str, element_id: str = "catalogue-data"):
    """The JSON embedded in the page's ``<script type="application/json" id=...>``."""
    m = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page, re.DOTALL)
    assert m, f"no {element_id} blob"
    return json.loads(m.group(1))


# ------------------------------------------------------------------------------ what the page should show
def fold(row: dict) -> float | None:
    e = row["elang"]
    if e is None:
        return None
    return math.inf if not e["ratio"] > 0 else max(e["ratio"], 1 / e["ratio"])


SORT_KEYS = {
    "id": lambda r: (r["id"],),
    "name": lambda r: (r["name"].lower(), r["id"]),
    "mean": lambda r: (r["mean"], r["id"]),
    "width": lambda r: (r["high"] - r["low"], r["id"]),
    "families": lambda r: (len(r["families"]), r["id"]),
    "elang": lambda r: (fold(r), r["id"]),
}


def expected_order(rows: list[dict], key: str, direction: str) -> list[str]:
    """The IDs in the order the page sorts them; techniques enterpriseLang does not map are last either way."""
    ranked = [r for r in rows if key != "elang" or r["elang"] is not None]
    ranked.sort(key=SORT_KEYS[key], reverse=direction == "descending")
    unranked = sorted(r["id"] for r in rows if key == "elang" and r["elang"] is None)
    return [r["id"] for r in ranked] + unranked


# ------------------------------------------------------------------------------ the HTML as text
def test_rendering_is_deterministic():
    rows, meta = synthetic_rows(), synthetic_meta()
    first = render_catalogue_page(rows, meta)
    assert render_catalogue_page(synthetic_rows(), synthetic_meta()) == first
    # the same rows with their keys in another order give the same bytes
    shuffled = [dict(reversed(list(r.items()))) for r in rows]
    assert render_catalogue_page(shuffled, meta) == first
    assert "{{" not in first and "}}" not in first


def test_the_json_blob_round_trips_to_the_rows():
    rows = synthetic_rows()
    page = render_catalogue_page(rows, synthetic_meta())
    assert blob(page) == rows
    labels = blob(page, "catalogue-meta")
    assert labels["tactics"]["command-and-control"] == "Command And Control"
    assert labels["families"]["mtrends"] == "mtrends (things)"


def test_floats_are_written_at_six_significant_digits():
    rows = synthetic_rows(3)
    rows[0]["mean"] = 0.026358412345678
    rows[0]["elang"]["ratio"] = 1 / 3
    page = render_catalogue_page(rows, synthetic_meta())
    back = blob(page)
    assert back[0]["mean"] == 0.0263584
    assert back[0]["elang"]["ratio"] == 0.333333
    assert '"mean":0.0263584,' in page


def test_non_finite_numbers_are_refused():
    rows = synthetic_rows(3)
    rows[1]["high"] = math.nan
    with pytest.raises(ValueError, match=r"rows\[1\]\['high'\]"):
        render_catalogue_page(rows, synthetic_meta())


def test_script_closing_tag_in_a_name_is_escaped():
    rows = synthetic_rows()
    assert "</script>" in rows[4]["name"]
    page = render_catalogue_page(rows, synthetic_meta())
    assert page.count("</script>") == page.count("<script") == 3  # two JSON blobs and the page's code
    assert "window.pwned" in page and "<script>window.pwned" not in page
    assert "\\u003c/script\\u003e" in page
    assert blob(page)[4]["name"] == rows[4]["name"]
    assert script_json(["</script>&"]) == '["\\u003c/script\\u003e\\u0026"]'


def test_the_header_is_escaped():
    meta = synthetic_meta()
    meta["title"] = "<i>catalogue</i> & co"
    page = render_catalogue_page(synthetic_rows(3), meta)
    assert "<title>&lt;i&gt;catalogue&lt;/i&gt; &amp; co</title>" in page
    assert "<i>catalogue</i>" not in page


def test_the_page_is_self_contained():
    page = render_catalogue_page(synthetic_rows(), synthetic_meta())
    assert not re.search(r"""\bsrc\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    for link in re.findall(r"<link\b[^>]*>", page, re.IGNORECASE):
        assert not re.search(r"""href\s*=\s*["']?\s*(https?:)?//""", link, re.IGNORECASE), link
    assert not re.search(r"@import|url\(\s*['\"]?\s*(https?:)?//", page, re.IGNORECASE)
    assert not re.search(r"<(script|img|iframe|audio|video|source|embed|object)\b[^>]*\bsrc=", page, re.IGNORECASE)
    # the only absolute URLs are hyperlinks to ATT&CK, written by the page's code from the data
    assert set(re.findall(r"https?://[^/\"']+", page)) == {"https://attack.mitre.org"}


def test_failed_diagnostics_are_shown_first():
    failed = render_catalogue_page(synthetic_rows(), synthetic_meta(passed=False))
    warning = failed.index('id="diagnostics-warning"')
    assert warning < failed.index("<h1>") < failed.index('<table id="catalogue"')
    assert "FAILED its sampler diagnostics" in failed and "12 divergences, max R-hat 1.2" in failed
    passed = render_catalogue_page(synthetic_rows(), synthetic_meta(passed=True))
    assert 'id="diagnostics-warning"' not in passed and "Sampler diagnostics passed" in passed


def test_the_filters_offer_every_tactic_and_family_with_its_count():
    rows = synthetic_rows()
    page = render_catalogue_page(rows, synthetic_meta())
    for t in TACTICS:
        n = sum(t in r["tactics"] for r in rows)
        assert f'<option value="{t}">{t.replace("-", " ").title()} ({n})</option>' in page
    for f in FAMILIES:
        n = sum(f in r["families"] for r in rows)
        assert f'<option value="{f}">{f} (things) ({n})</option>' in page


# ------------------------------------------------------------------------------ the page in a browser
@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """Headless Chromium, started once for the module; skipped (or failed, in CI) when it is not installed."""
    reason = missing_browser()
    if reason is not None:
        if os.environ.get("ATTACKPREV_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{NO_BROWSER} ({reason}; not skipped because ATTACKPREV_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(NO_BROWSER)
    drv = start_headless_chromium(tmp_path_factory.mktemp("chromium-profile"), width=WIDTH, height=HEIGHT)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def synthetic_page(tmp_path_factory):
    rows = synthetic_rows()
    path = tmp_path_factory.mktemp("catalogue-page") / "index.html"
    path.write_text(render_catalogue_page(rows, synthetic_meta()), encoding="utf-8")
    return path, blob(path.read_text(encoding="utf-8"))


def console_problems(drv) -> list[dict]:
    """The console's warnings and errors since the last call (reading the log empties it)."""
    return [e for e in drv.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def load(drv, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    drv.get(path.resolve().as_uri())
    WebDriverWait(drv, 10).until(lambda d: d.execute_script("return document.documentElement.dataset.ready"))


def shown_ids(drv) -> list[str]:
    """The ``data-id`` of every technique row shown, top to bottom."""
    return drv.execute_script(
        "return Array.from(document.querySelectorAll('#catalogue tbody tr.technique'))"
        ".filter(tr => !tr.hidden).map(tr => tr.dataset.id)"
    )


def shown_count(drv) -> str:
    return drv.find_element("id", "shown-count").text


def click_sort(drv, key: str) -> str:
    drv.find_element("css selector", f'th[data-sort="{key}"]').click()
    direction = drv.find_element("css selector", f'th[data-sort="{key}"]').get_attribute("aria-sort")
    others = drv.execute_script("return document.querySelectorAll('#catalogue th[aria-sort]').length")
    assert others == 1
    return direction


def choose(drv, select_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(drv.find_element("id", select_id)).select_by_value(value)


def reset(drv) -> None:
    drv.find_element("id", "reset").click()


def check_screenshot(drv) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(drv.get_screenshot_as_png())).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    assert image.size == tuple(drv.get_window_size().values())
    colours = image.getcolors(maxcolors=WIDTH * HEIGHT)
    assert len(colours) > 20, "the screenshot has hardly any colours: is the page blank?"
    white = sum(n for n, c in colours if min(c) >= 250)
    assert 1 - white / (WIDTH * HEIGHT) > 0.05, "the screenshot is almost all white"


def test_the_page_renders_every_row_without_console_problems(driver, synthetic_page):
    path, rows = synthetic_page
    load(driver, path)
    assert console_problems(driver) == []
    assert shown_ids(driver) == sorted(r["id"] for r in rows)
    assert shown_count(driver) == f"{len(rows)} of {len(rows)} techniques shown"
    assert driver.find_element("css selector", 'th[data-sort="id"]').get_attribute("aria-sort") == "ascending"
    assert driver.execute_script("return window.pwned === undefined")
    cell = {r["id"]: driver.find_element("css selector", f'tr.technique[data-id="{r["id"]}"] td.name') for r in rows}
    assert cell[rows[4]["id"]].text.startswith(rows[4]["name"])
    assert cell[rows[0]["id"]].text.endswith("no target-family data") is (not rows[0]["target_data"])
    assert console_problems(driver) == []


def test_the_mean_is_formatted_with_three_significant_digits(driver, tmp_path):
    rows = synthetic_rows(4)
    for r, m in zip(rows, [0.0263584, 0.5, 0.000123, 0.00101], strict=True):
        r["mean"] = m
    path = tmp_path / "index.html"
    path.write_text(render_catalogue_page(rows, synthetic_meta()), encoding="utf-8")
    load(driver, path)
    texts = {r["id"]: driver.find_element("css selector", f'tr[data-id="{r["id"]}"] td.mean').text for r in rows}
    assert [texts[r["id"]] for r in rows] == ["2.64 %", "50.0 %", "0.0123 %", "0.101 %"]  # .text shows nbsp as a space
    assert console_problems(driver) == []


@pytest.mark.parametrize("key", ["mean", "id", "name", "width", "families", "elang"])
def test_clicking_a_header_sorts_and_clicking_again_reverses(driver, synthetic_page, key):
    path, rows = synthetic_page
    load(driver, path)
    first = click_sort(driver, key)
    assert first in ("ascending", "descending")
    if key != "id":  # the page opens sorted by ID, so its first click reverses that
        assert first == ("ascending" if key == "name" else "descending")
    assert shown_ids(driver) == expected_order(rows, key, first)
    second = click_sort(driver, key)
    assert {first, second} == {"ascending", "descending"}
    assert shown_ids(driver) == expected_order(rows, key, second)
    if key != "elang":
        assert expected_order(rows, key, second) == expected_order(rows, key, first)[::-1]
    assert console_problems(driver) == []


def test_the_filters_show_exactly_the_matching_rows(driver, synthetic_page):
    path, rows = synthetic_page
    load(driver, path)
    total = len(rows)

    def check(expected: list[str]) -> None:
        assert sorted(shown_ids(driver)) == sorted(expected)
        assert shown_count(driver) == f"{len(expected)} of {total} techniques shown"

    for tactic in TACTICS:
        choose(driver, "filter-tactic", tactic)
        check([r["id"] for r in rows if tactic in r["tactics"]])
    reset(driver)
    for family in FAMILIES:
        choose(driver, "filter-family", family)
        check([r["id"] for r in rows if family in r["families"]])
    reset(driver)
    choose(driver, "filter-disagreement", "mapped")
    check([r["id"] for r in rows if r["elang"] is not None])
    for threshold in (2, 5, 10):
        choose(driver, "filter-disagreement", str(threshold))
        expected = [r["id"] for r in rows if r["elang"] is not None and fold(r) >= threshold]
        assert 0 < len(expected) < total
        check(expected)
    # filters combine
    choose(driver, "filter-disagreement", "5")
    choose(driver, "filter-tactic", "execution")
    check([r["id"] for r in rows if "execution" in r["tactics"] and r["elang"] is not None and fold(r) >= 5])
    reset(driver)
    check([r["id"] for r in rows])

    search = driver.find_element("id", "search")
    search.send_keys("t1003")
    check([r["id"] for r in rows if "t1003" in r["id"].lower()])
    reset(driver)
    search.send_keys("EVIL </SCRIPT>")
    check([rows[4]["id"]])
    reset(driver)
    search.send_keys("technique 1")
    check([r["id"] for r in rows if "technique 1" in r["name"]])
    reset(driver)
    assert console_problems(driver) == []


def test_a_row_expands_to_its_evidence(driver, synthetic_page):
    path, rows = synthetic_page
    load(driver, path)
    row = next(r for r in rows if r["report"] and r["elang"] and r["runner_up"] and len(r["sources"]) > 1)
    tr = driver.find_element("css selector", f'tr.technique[data-id="{row["id"]}"]')
    toggle = tr.find_element("css selector", "button.evidence-toggle")
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    detail = driver.find_element("css selector", f'tr.detail[data-for="{row["id"]}"]')
    assert detail.is_displayed()
    # the detail row sits right under its technique
    assert driver.execute_script("return arguments[0].nextElementSibling === arguments[1]", tr, detail)
    cells = [
        [td.text for td in src.find_elements("tag name", "td")]
        for src in detail.find_elements("css selector", "tr.source")
    ]
    assert cells == [
        [s["source"], f"{s['family']} (things)", f"{s['k']} of {s['n']}", cells[i][3]]
        for i, s in enumerate(row["sources"])
    ]
    assert all(re.fullmatch(r"\d+(\.\d+)? %", c[3]) for c in cells), cells
    text = detail.text
    assert row["runner_up"]["model"] in text
    assert ("differs materially" in text) is row["runner_up"]["differs"]
    assert row["elang"]["steps"] in text
    report = detail.find_element("css selector", "a.report")
    assert report.get_attribute("href") == (path.parent / row["report"]).resolve().as_uri()
    # sorting keeps the detail under its row; filtering it away hides both
    click_sort(driver, "mean")
    assert driver.execute_script("return arguments[0].nextElementSibling === arguments[1]", tr, detail)
    driver.find_element("id", "search").send_keys("no such technique")
    assert not detail.is_displayed() and shown_ids(driver) == []
    assert shown_count(driver) == f"0 of {len(rows)} techniques shown"
    reset(driver)
    assert detail.is_displayed()
    # clicking the row itself (not its link) closes it again
    tr.find_element("css selector", "td.tactics").click()
    assert not detail.is_displayed() and toggle.get_attribute("aria-expanded") == "false"
    # a technique without a report has no report link
    other = next(r for r in rows if r["report"] is None)
    driver.find_element("css selector", f'tr.technique[data-id="{other["id"]}"] td.name').click()
    other_detail = driver.find_element("css selector", f'tr.detail[data-for="{other["id"]}"]')
    assert other_detail.is_displayed() and other_detail.find_elements("css selector", "a.report") == []
    assert console_problems(driver) == []


def test_the_screenshot_is_the_window_and_not_blank(driver, synthetic_page):
    path, _ = synthetic_page
    load(driver, path)
    check_screenshot(driver)
    assert console_problems(driver) == []


def test_the_committed_page_shows_every_technique_of_the_catalogue(driver):
    if not REAL_PAGE.exists():
        pytest.skip(f"{REAL_PAGE.relative_to(ROOT)} has not been generated yet")
    rows = blob(REAL_PAGE.read_text(encoding="utf-8"))
    with REAL_CSV.open(encoding="utf-8", newline="") as f:
        expected = [r["technique_id"] for r in csv.DictReader(f)]
    assert sorted(r["id"] for r in rows) == sorted(expected)
    load(driver, REAL_PAGE)
    assert console_problems(driver) == []
    ids = shown_ids(driver)
    assert len(ids) == len(expected) and sorted(ids) == sorted(expected)
    assert shown_count(driver) == f"{len(expected)} of {len(expected)} techniques shown"
    direction = click_sort(driver, "mean")
    assert shown_ids(driver) == expected_order(rows, "mean", direction)
    tactic = next(t for r in rows for t in r["tactics"])
    choose(driver, "filter-tactic", tactic)
    assert sorted(shown_ids(driver)) == sorted(r["id"] for r in rows if tactic in r["tactics"])
    reset(driver)
    check_screenshot(driver)
    assert console_problems(driver) == []
