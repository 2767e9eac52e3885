"""Headless Chromium for the console's browser tests (selenium + Debian's chromium).

The tests skip, saying why, when chromium, chromedriver or selenium is missing, except
when the environment variable CI is set: then they fail, so CI never passes without them.
With VOICEPRINT_SCREENSHOTS=<folder> they save PNG screenshots of the main pages there.

`chrome_driver`'s fake microphone plays a beep; `speech_browser` is a second Chromium whose
microphone plays a recording (looped). `websocket_live_server` makes the live server also
take WebSocket upgrades, as `make run` does (config.websocket_bridge).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SHARED_AUDIO, require_shared

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
    yield from _chromium()


#: What the speech browser's microphone plays, over and over (Chrome loops the file).
SPEECH_RECORDING = SHARED_AUDIO / "zh" / "test" / "fangjun-test-sr-1.wav"


@pytest.fixture(scope="session")
def speech_driver() -> Iterator:
    """A second headless Chromium whose fake microphone plays SPEECH_RECORDING (a 16-bit
    WAV) instead of the beep; a separate browser, since the flag is fixed at its start."""
    require_shared(SHARED_AUDIO / "zh")
    yield from _chromium(f"--use-file-for-fake-audio-capture={SPEECH_RECORDING}")


def _chromium(*extra_flags: str) -> Iterator:
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
    for flag in (*CHROMIUM_FLAGS, *extra_flags):
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
    yield from _browser(chrome_driver, live_server.url)


@pytest.fixture
def speech_browser(speech_driver, websocket_live_server) -> Iterator[Browser]:
    yield from _browser(speech_driver, websocket_live_server.url)


def _browser(driver, url: str) -> Iterator[Browser]:
    folder = os.environ.get("VOICEPRINT_SCREENSHOTS")
    screenshot_dir = None
    if folder:
        screenshot_dir = Path(folder).resolve()
        screenshot_dir.mkdir(parents=True, exist_ok=True)
    driver.delete_all_cookies()
    yield Browser(driver, url, screenshot_dir)
    driver.delete_all_cookies()


@pytest.fixture(scope="session")
def websocket_live_server(live_server) -> Iterator:
    """The session's live server, taking WebSocket upgrades too: they go to a
    config.websocket_bridge.WebSocketBridge serving config.asgi.application, as gunicorn's
    worker hands them over under `make run`. Other requests are served as before."""
    from django.db import connections

    from config.asgi import application
    from config.websocket_bridge import WebSocketBridge

    # The streams' pool threads close their database connections after each call only when
    # they may not be kept (CONN_MAX_AGE 0); kept ones would stop the test database's drop.
    kept = {alias: connections.settings[alias].get("CONN_MAX_AGE", 0) for alias in connections}
    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = 0
    httpd = live_server.thread.httpd
    httpd.websocket_bridge = WebSocketBridge(application)
    default_handler = httpd.RequestHandlerClass
    httpd.RequestHandlerClass = _upgrading_handler(default_handler)
    try:
        yield live_server
    finally:
        httpd.RequestHandlerClass = default_handler
        httpd.websocket_bridge.shutdown(code=1001, reason="server shutting down", timeout=5)
        for alias, max_age in kept.items():
            connections.settings[alias]["CONN_MAX_AGE"] = max_age


def _upgrading_handler(base: type) -> type:
    """`base` (the live server's WSGI request handler), handing a WebSocket upgrade's socket
    to the server's bridge once the request head is parsed."""
    import socket

    from config.gunicorn_worker import is_websocket_upgrade

    class UpgradingHandler(base):
        def parse_request(self) -> bool:
            if not super().parse_request():
                return False
            request = _ParsedRequest(self.command, list(self.headers.items()))
            if not is_websocket_upgrade(request):
                return True
            path, _, query = self.path.partition("?")
            sock = self.connection
            self.server.websocket_bridge.serve(
                socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach()),
                path=path,
                query_string=query.encode("latin-1"),
                headers=request.headers,
                client=self.client_address,
                server=self.server.server_address,
            )
            self.close_connection = True  # the bridge owns the socket; this handler is done
            return False

    return UpgradingHandler


class _ParsedRequest:
    """What config.gunicorn_worker.is_websocket_upgrade reads of gunicorn's request."""

    def __init__(self, method: str, headers: list[tuple[str, str]]):
        self.method = method
        self.headers = [(name.upper(), value) for name, value in headers]


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
