"""Real-browser helpers for tests: headless Debian Chromium driven by Python playwright (not a test module).

We never download a browser: playwright launches the system's /usr/bin/chromium (``apt-get install -y
--no-install-recommends chromium``). Without it, ``open_page`` skips the test, unless ASSET_MAP_REQUIRE_BROWSER=1
(CI) is set, when it fails with the command to install it.

    with serve_directory(tmp_path) as base, open_page(base + "/map.html") as session:
        session.page.wait_for_selector("path.leaflet-interactive")
        assert session.console_errors == []
        session.screenshot("tests/artifacts/map.png")
"""

import contextlib
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("ASSET_MAP_CHROMIUM", "/usr/bin/chromium")
# From docs/ENVIRONMENT.md; playwright adds --headless and its own temporary --user-data-dir.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
ARTIFACTS = Path(__file__).parent / "artifacts"


class BrowserUnavailable(RuntimeError):
    pass


def chromium_available():
    """True when both the Chromium binary and the playwright Python package are usable here."""
    return _unavailable_reason() is None


def _unavailable_reason():
    path = shutil.which(CHROMIUM) if os.sep not in CHROMIUM else CHROMIUM
    if not path or not os.access(path, os.X_OK):
        return (f"Chromium not found at {CHROMIUM}: install it with "
                "`DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium` "
                "(or set ASSET_MAP_CHROMIUM to another Chromium binary)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing: pip install playwright (its browsers are not needed)"
    return None


def require_browser():
    """Skip the calling test when there is no browser; fail instead when ASSET_MAP_REQUIRE_BROWSER=1."""
    reason = _unavailable_reason()
    if reason is None:
        return
    if os.environ.get("ASSET_MAP_REQUIRE_BROWSER") == "1":
        raise BrowserUnavailable(f"ASSET_MAP_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


class PageSession:
    """An open page plus what it reported: console errors, uncaught exceptions and off-machine requests."""

    def __init__(self, page):
        self.page = page
        self.console_errors = []
        self.failed_requests = []
        self.external_requests = []

    def screenshot(self, path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return path

    def _on_console(self, message):
        if message.type == "error":
            location = message.location or {}
            where = location.get("url", "")
            self.console_errors.append(f"{message.text} ({where})" if where else message.text)

    def _on_page_error(self, error):
        self.console_errors.append(f"uncaught: {error}")

    def _on_request_failed(self, request):
        self.failed_requests.append(f"{request.url}: {request.failure}")

    def _route(self, route):
        url = route.request.url
        scheme = urlsplit(url).scheme
        if scheme in ("http", "https", "ws", "wss") and urlsplit(url).hostname not in LOCAL_HOSTS:
            self.external_requests.append(url)
            route.abort("internetdisconnected")
        else:
            route.continue_()


@contextlib.contextmanager
def open_page(url, *, width=1280, height=900, offline=True, timeout_ms=15000, javascript=True):
    """Open ``url`` in headless Chromium and yield a ``PageSession`` once the page's load event has fired.

    With ``offline`` (the default) any request to a host other than this machine is blocked and recorded in
    ``external_requests``, as it would fail for our users without internet. ``javascript=False``: as a browser
    with JavaScript off.
    """
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, java_script_enabled=javascript)
            page.set_default_timeout(timeout_ms)
            session = PageSession(page)
            page.on("console", session._on_console)
            page.on("pageerror", session._on_page_error)
            page.on("requestfailed", session._on_request_failed)
            if offline:
                page.route("**/*", session._route)
            page.goto(url, wait_until="load")
            yield session
        finally:
            browser.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve_directory(directory):
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port, in a thread); yield the base URL, no trailing /."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
