"""Fixtures of the page tests: a headless Chromium with the network off."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1600, 1000)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "browser: drives the page in headless Chromium (skipped without chromium and "
        "chromedriver unless FEATSCOPE_REQUIRE_BROWSER=1)",
    )


def _browser_paths() -> tuple[str, str] | None:
    chromium = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    driver = CHROMEDRIVER if os.path.exists(CHROMEDRIVER) else shutil.which("chromedriver")
    if not chromium or not driver:
        return None
    return chromium, driver


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium that cannot reach any network (proxy to a closed port + offline)."""
    required = os.environ.get("FEATSCOPE_REQUIRE_BROWSER") == "1"
    paths = _browser_paths()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        if required:
            pytest.fail("selenium is not installed but FEATSCOPE_REQUIRE_BROWSER=1")
        pytest.skip("selenium is not installed")
    if paths is None:
        if required:
            pytest.fail("chromium/chromedriver not found but FEATSCOPE_REQUIRE_BROWSER=1")
        pytest.skip("chromium and chromedriver are not installed (apt install chromium-driver)")
    chromium, driver_path = paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--force-device-scale-factor=1",
        # every request that escaped would go to a closed local port and fail
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--enable-unsafe-swiftshader",
        "--use-angle=swiftshader",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # Service(executable_path=...) and binary_location: selenium-manager downloads nothing
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
        )
        yield driver
    finally:
        driver.quit()
