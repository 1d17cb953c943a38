"""A headless Chromium for the browser tests (Selenium driving Debian's chromium).

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``.ci/run`` installs them): a test
skips without them, and fails under ``CI=true``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@contextmanager
def headless_chrome(*, implicit_wait: float | None = None) -> Iterator[Any]:
    """A laptop-sized headless Chromium that keeps the console's messages; quit on exit."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        reason = (
            f"no headless Chromium: {', '.join(missing)} missing; install it with "
            "`apt-get install -y chromium chromium-driver` (.ci/run does)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1366,900")  # a laptop
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    if implicit_wait is not None:
        driver.implicitly_wait(implicit_wait)
    try:
        yield driver
    finally:
        driver.quit()
