"""Templates under the CSP: inline blocks get the nonce, fragments with blocks are not passed through |safe, and
no inline event handlers (which no nonce can allow)."""

import re

from asset_map.config import PROJECT_DIR

TEMPLATES = PROJECT_DIR / "templates"
# Templates only ever rendered to files outside Flask (their own Jinja environment has no csp_nonce_tags filter and
# no policy applies to a file opened from disk).
OFFLINE_TEMPLATES = {"templates/gaps/standalone.html"}


def _lines(pattern):
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(pattern, line) and str(path.relative_to(PROJECT_DIR)) not in OFFLINE_TEMPLATES:
                found.append(f"{path.relative_to(PROJECT_DIR)}:{number}: {line.strip()[:120]}")
    return found


def test_folium_headers_go_through_csp_nonce_tags_not_safe():
    bad = _lines(r"\.header\s*\|\s*safe")
    assert not bad, ("folium headers hold <style>/<script> blocks: use '| csp_nonce_tags' instead of '| safe' "
                     "(or list a template rendered only to files, outside Flask, in OFFLINE_TEMPLATES):\n"
                     + "\n".join(bad))


def test_no_inline_event_handlers_or_javascript_urls():
    bad = _lines(r"\son[a-z]+\s*=\s*[\"']|href\s*=\s*[\"']javascript:")
    assert not bad, "inline handlers cannot run under the CSP; attach them from a static script:\n" + "\n".join(bad)


def test_template_source_blocks_get_the_nonce(app):
    with app.test_request_context("/"):
        from flask import render_template_string

        from asset_map.web.security import csp_nonce

        html = render_template_string("<style>p{}</style><script>var a = 1;</script>"
                                      "<script src='/static/x.js'></script>{{ value }}",
                                      value="<script>alert(1)</script>")
        nonce = csp_nonce()
    assert html.count(f'nonce="{nonce}"') == 2
    assert "<script src='/static/x.js'></script>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
