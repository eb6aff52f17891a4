"""A headless Chromium for end-to-end tests: Debian's `chromium` and `chromium-driver`
(installed by `make test` where apt is available), driven by Selenium. Nothing is
downloaded by the tool itself: the driver path is given, so Selenium Manager stays idle."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from segpair_assets_tests.conftest import REPO_ROOT

IMPLICIT_WAIT_S = 15
ARTIFACTS = Path(os.environ.get("SEGPAIR_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def require_browser() -> tuple[str, str]:
    paths = chromium_paths()
    if paths is None:
        pytest.skip(
            "no chromium + chromedriver on PATH: `make test` installs Debian's chromium and "
            "chromium-driver where apt-get runs as root; install them to run the browser tests"
        )
    return paths


def start_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = require_browser()
    options = webdriver.ChromeOptions()
    # No background fetches: on a closed network (CI) Chromium otherwise keeps retrying
    # lookups of Google's hosts, which slows page loads on a busy runner.
    profile = tempfile.mkdtemp(prefix="chromium_")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1600,1000", "--no-first-run", "--disable-quic",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(arg)
    options.binary_location = browser
    drv = webdriver.Chrome(service=Service(driver), options=options)
    drv.implicitly_wait(IMPLICIT_WAIT_S)
    return drv


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def wait_until(driver, condition, what: str, timeout: float = 60):
    """Wait for `condition(driver)` to be truthy, with no implicit wait inside the polls
    (an empty find_elements would otherwise block for the implicit wait each time)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.implicitly_wait(0)
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(
            condition, message=f"{what} after {timeout}s on {driver.current_url}"
        )
    finally:
        driver.implicitly_wait(IMPLICIT_WAIT_S)


def wait_for_text(driver, text: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in driver.find_element("tag name", "body").text:
            return
        time.sleep(1)
    raise TimeoutError(f"{text!r} not on {driver.current_url} after {timeout}s")
