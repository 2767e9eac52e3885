"""Headless Chromium for the console's browser tests (selenium + Debian's chromium).

The tests skip, saying why, when chromium, chromedriver or selenium is missing, except
when the environment variable CI is set: then they fail, so CI never passes without them.
With VOICEPRINT_SCREENSHOTS=<folder> they save PNG screenshots of the main pages there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SHARED_AUDIO

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # The machines have no network: nothing in the background may try to reach it.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--password-store=basic",
    # A fake microphone (a beep) that needs no permission prompt.
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--window-size=1440,900",
    "--lang=en-US",
)
WAIT_SECONDS = 30


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser tests must run)", pytrace=False)
    pytest.skip(reason)


def _find(names: tuple[str, ...], fallback: str) -> str | None:
    for name in names:
        if found := shutil.which(name):
            return found
    return fallback if Path(fallback).exists() else None


@pytest.fixture(scope="session")
def chrome_driver() -> Iterator:
    """One headless Chromium for the whole session, with a fresh profile."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing('selenium is not installed (pip install -e ".[dev]")')
    chromium = _find(("chromium", "chromium-browser"), "/usr/bin/chromium")
    chromedriver = _find(("chromedriver",), "/usr/bin/chromedriver")
    if chromium is None or chromedriver is None:
        _missing("chromium or chromedriver not found (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="voiceprint-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # Both paths are given, so selenium never looks for (or downloads) a browser itself.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(autouse=True)
def _console_settings(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def shared_zh(shared_audio) -> Path:
    return SHARED_AUDIO / "zh"


class Browser:
    """The driver, the live server's address and a few steps every test takes."""

    def __init__(self, driver, base_url: str, screenshot_dir: Path | None):
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.base_url = base_url
        self.screenshot_dir = screenshot_dir
        self.wait = WebDriverWait(driver, WAIT_SECONDS)

    def get(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def find(self, css: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def find_all(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def select(self, css: str, text: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.find(css)).select_by_visible_text(text)

    def submit(self, css: str) -> None:
        """Click a submit button and wait for the next page."""
        old_page = self.find("html")
        self.find(css).click()
        self.wait.until(lambda driver: _is_gone(old_page))

    def log_in(self, username: str, password: str) -> None:
        self.get("/admin/login/")
        self.find("#id_username").send_keys(username)
        self.find("#id_password").send_keys(password)
        self.submit("input[type=submit]")
        assert "Voiceprint console" in self.driver.title, self.driver.title

    def screenshot(self, name: str, width: int = 1440) -> None:
        """Save the whole page as <VOICEPRINT_SCREENSHOTS>/<name>.png (when that is set)."""
        if self.screenshot_dir is None:
            return
        metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        try:
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            metrics["height"] = min(max(900, height), 3000)
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            self.driver.save_screenshot(str(self.screenshot_dir / f"{name}.png"))
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.fixture
def browser(chrome_driver, live_server) -> Iterator[Browser]:
    folder = os.environ.get("VOICEPRINT_SCREENSHOTS")
    screenshot_dir = None
    if folder:
        screenshot_dir = Path(folder).resolve()
        screenshot_dir.mkdir(parents=True, exist_ok=True)
    chrome_driver.delete_all_cookies()
    yield Browser(chrome_driver, live_server.url, screenshot_dir)
    chrome_driver.delete_all_cookies()


#: What Chrome sometimes answers, mid-navigation, about an element of the page being left,
#: instead of "stale element reference".
_LEFT_PAGE = "does not belong to the document"


def _is_gone(element) -> bool:
    """Whether `element`'s page has been replaced (selenium's staleness_of, which knows
    only the "stale element reference" answer)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if _LEFT_PAGE in str(exc):
            return True
        raise
    return False
