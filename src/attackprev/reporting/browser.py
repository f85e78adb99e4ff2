"""Starting headless Chromium through Selenium, for the catalogue page's browser test and its screenshot.

Selenium is a test and development dependency, not a runtime one: it is imported inside
:func:`start_headless_chromium` only. The browser and its driver are Debian's
(``apt install chromium chromium-driver``), at fixed paths, so Selenium Manager is never asked
to find, or download, either.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Debian's Chromium and its matching driver (``apt install chromium chromium-driver``).
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt install chromium chromium-driver"

#: Chromium's command-line flags: headless, no sandbox (containers), and no network of its own.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--force-device-scale-factor=1",
    "--hide-scrollbars",
)


def missing_browser() -> str | None:
    """Why headless Chromium cannot be started here, or ``None`` when it can.

    Returns
    -------
    str or None
        A sentence naming what is missing (the browser, its driver or Selenium) and how to install
        it; ``None`` when all three are present.
    """
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        return f"{' and '.join(missing)} not found: install them with `{INSTALL_HINT}`"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "Selenium is not installed: `pip install selenium` (a test dependency)"
    return None


def start_headless_chromium(user_data_dir: str | Path, width: int = 1400, height: int = 900, console_log: bool = True):
    """Start headless Chromium with a viewport of exactly ``width`` x ``height`` CSS pixels.

    Parameters
    ----------
    user_data_dir
        A fresh folder for the browser's profile (created if missing); the caller removes it.
    width, height
        The viewport, in pixels at a device scale factor of 1 (so a screenshot is ``width`` x ``height``).
    console_log
        Record the page's console (``driver.get_log("browser")`` then returns its entries).

    Returns
    -------
    selenium.webdriver.Chrome
        The driver; call its ``quit()`` when done.

    Raises
    ------
    RuntimeError
        When the browser, its driver or Selenium is missing (the message says what to install).
    """
    if (reason := missing_browser()) is not None:
        raise RuntimeError(f"headless Chromium is not available: {reason}")
    # belt and braces: with the driver's path given Selenium Manager is skipped, and offline it could not download
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(user_data_dir)
    profile.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={profile}")
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        # the window's size need not be the page's: fix the viewport itself, at one device pixel per CSS pixel
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
    except Exception:
        driver.quit()
        raise
    return driver
