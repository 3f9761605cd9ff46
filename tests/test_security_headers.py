"""Response hardening: CSP with nonces, security headers, the upload limit, safe file names; and the map page
working in a real browser with the CSP on."""

import re

import pytest

from asset_map.errors import InputError
from asset_map.filenames import inside, safe_filename
from asset_map.web.security import content_security_policy, tile_source
from tests.browser import open_page, require_browser
from tests.conftest import make_app


def test_every_response_carries_the_security_headers(app):
    client = app.test_client()
    for path in ("/sign-in", "/healthz", "/no-such-page", "/static/css/site.css"):
        res = client.get(path)
        csp = res.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert re.search(r"script-src 'self' 'nonce-[\w-]{20,}'(;|$)", csp), csp
        assert "unsafe-inline" not in csp.split("style-src-attr")[0] and "unsafe-eval" not in csp
        assert res.headers["X-Content-Type-Options"] == "nosniff"
        assert res.headers["X-Frame-Options"] == "DENY"
        assert res.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_nonce_is_fresh_per_request_and_on_every_inline_script(pack_client):
    first, second = pack_client.get("/"), pack_client.get("/")
    nonces = [re.search(r"'nonce-([\w-]+)'", r.headers["Content-Security-Policy"]).group(1) for r in (first, second)]
    assert nonces[0] != nonces[1]
    page = first.get_data(as_text=True)
    inline = re.findall(r"<(script|style)(?![^>]*\bsrc=)([^>]*)>", page)
    assert inline, "the map page has inline blocks (folium's)"
    assert all(f'nonce="{nonces[0]}"' in attrs for _, attrs in inline), inline


@pytest.mark.parametrize("tiles,source", [
    ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
    ("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png", "https://*.tile.openstreetmap.org"),
    ("none", None), ("", None), ("file:///etc/passwd", None),
])
def test_tiles_host_is_the_only_outside_image_source(tiles, source):
    assert tile_source(tiles) == source
    csp = content_security_policy("n", tiles)
    img = next(d for d in csp.split("; ") if d.startswith("img-src"))
    assert img == "img-src 'self' data:" + (f" {source}" if source else "")


def test_uploads_over_the_limit_get_a_clear_413(db_url, tmp_path):
    app = make_app(db_url, tmp_path, MAX_UPLOAD_MB=1)
    client = app.test_client()
    body = b"x" * (1024 * 1024 + 10)
    res = client.post("/sign-in", data=body, content_type="application/octet-stream")
    assert res.status_code == 413
    assert "larger than the 1 MB limit" in res.get_data(as_text=True)


@pytest.mark.parametrize("name,expected", [
    ("../../etc/passwd", "etc_passwd"), ("..\\..\\windows\\system.ini", "windows_system.ini"),
    ("/abs/path/register.csv", "abs_path_register.csv"), ("libraries 2025.xlsx", "libraries_2025.xlsx"),
    ("café register.csv", "cafe_register.csv"),
])
def test_user_file_names_never_become_paths(name, expected):
    assert safe_filename(name) == expected


def test_file_names_with_nothing_usable_are_refused(tmp_path):
    with pytest.raises(InputError, match="no usable characters"):
        safe_filename("../..")
    assert safe_filename("..", default="upload") == "upload"
    assert inside(tmp_path, "a.csv") == (tmp_path / "a.csv").resolve()
    for bad in ("../a.csv", "/etc/passwd", "x/../../a.csv"):
        with pytest.raises(InputError, match="outside its folder"):
            inside(tmp_path, bad)


@pytest.mark.browser
def test_map_page_runs_under_the_csp_without_console_errors(pack_db, tmp_path, live_server, artifacts):
    require_browser()
    app = make_app(pack_db, tmp_path, COOKIE_SECURE=0)
    url = live_server(app)
    with open_page(url + "/") as view:
        dialogs = []
        view.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        view.page.wait_for_selector("path.leaflet-interactive")
        drawn = view.page.eval_on_selector_all("path.leaflet-interactive", "els => els.length")
        # Legend swatches are style attributes (allowed by style-src-attr): they must still be coloured.
        swatches = view.page.eval_on_selector_all(
            ".leaflet-control [style*='background']", "els => els.map(e => getComputedStyle(e).backgroundColor)")
        view.screenshot(artifacts / "map_with_csp.png")
        csp = view.page.evaluate("() => fetch('/').then(r => r.headers.get('content-security-policy'))")
        assert view.console_errors == []
        assert view.external_requests == []
        assert dialogs == []
    assert "script-src 'self' 'nonce-" in csp
    assert drawn >= 697 + 9
    assert swatches and all(c not in ("rgba(0, 0, 0, 0)", "transparent") for c in swatches)
    with open_page(url + "/sign-in") as view:
        view.screenshot(artifacts / "sign_in.png")
        assert view.console_errors == []
