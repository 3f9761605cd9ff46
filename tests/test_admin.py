"""Admin pages: the audit log (filter, page, CSV) and users."""

import csv
import io
import re
from html import unescape

import pytest
from sqlalchemy import text

from asset_map import audit
from tests.accounts import PASSWORD, email_for, make_user, signed_in_client
from tests.browser import open_page, require_browser
from tests.conftest import make_app


def _seed(engine):
    with engine.begin() as conn:
        audit.record(conn, actor="officer@example.org", action="export", target="assets",
                     details={"format": "gpkg", "filters": {"tier": ["association"]}}, rows=412)
        audit.record(conn, actor="officer@example.org", action="import", target="libraries",
                     details={"file": "libraries.csv"}, rows=57)
        audit.record(conn, actor="anonymous", action="sign-in-failed", target="<b>x</b>@example.org",
                     details={"ip": "10.1.1.1"})


def test_audit_page_lists_and_filters_events(app, engine):
    admin = signed_in_client(app, engine, "admin")
    _seed(engine)
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert "412" in page and "libraries" in page and "sign-in" in page
    assert "&lt;b&gt;x&lt;/b&gt;@example.org" in page and "<b>x</b>" not in page
    page = admin.get("/admin/audit?action=export").get_data(as_text=True)
    assert "1 entry match" in page and "gpkg" in page and "libraries.csv" not in page
    page = admin.get("/admin/audit?actor=officer&since=2000-01-01").get_data(as_text=True)
    assert "2 entries match" in page
    res = admin.get("/admin/audit?action=nonsense")
    assert res.status_code == 400 and "Parameter &#39;action&#39;" in res.get_data(as_text=True)


def _targets(html):
    return re.findall(r"<td>(walk-\d+)</td>", html)


def _link(html, rel=None, label=None):
    pattern = (rf'href="([^"]+)" rel="{rel}"' if rel else
               rf'href="([^"]+)"><span class="govuk-pagination__link-title">{label}<')
    found = re.search(pattern, html)
    return unescape(found.group(1)) if found else None


def test_the_log_is_paged_by_keyset_both_ways(app, engine, monkeypatch):
    """250 entries, many at the same instant (ties broken by id), 100 a page: walking "Older" from the newest and
    "Newer" back from the oldest each visit every entry once, in (at, id) order; beyond the exact-count threshold
    the total says it is an estimate; a position the log never gave out is a 400."""
    from asset_map.store import keyset

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (at, actor, action, target) SELECT now() - (g % 40) * "
                          "interval '1 minute', 'bulk', 'export', 'walk-' || g FROM generate_series(1, 250) g"))
        expected = [r[0] for r in conn.execute(text(
            "SELECT target FROM audit_log WHERE target LIKE 'walk-%' ORDER BY at DESC, id DESC"))]
    admin = signed_in_client(app, engine, "admin")
    html = admin.get("/admin/audit?target=walk-").get_data(as_text=True)
    assert "250 entries match" in html and _link(html, rel="prev") is None
    seen = _targets(html)
    while (nxt := _link(html, rel="next")) is not None:
        html = admin.get(nxt).get_data(as_text=True)
        seen += _targets(html)
    assert seen == expected
    html = admin.get(_link(admin.get("/admin/audit?target=walk-").get_data(as_text=True), label="Oldest")
                     ).get_data(as_text=True)
    back = _targets(html)
    assert back == expected[-len(back):] and _link(html, rel="next") is None
    while (prev := _link(html, rel="prev")) is not None:
        html = admin.get(prev).get_data(as_text=True)
        back = _targets(html) + back
    assert back == expected
    monkeypatch.setattr(keyset, "EXACT_COUNT_UP_TO", 100)
    html = admin.get("/admin/audit?target=walk-").get_data(as_text=True)
    assert re.search(r"about [\d,]+ entries match <span[^>]*>estimated</span>", html)
    assert admin.get("/admin/audit?after=not-a-cursor").status_code == 400


def test_audit_csv_download_is_itself_audited(app, engine):
    admin = signed_in_client(app, engine, "admin")
    _seed(engine)
    res = admin.get("/admin/audit.csv?action=export")
    assert res.status_code == 200 and res.mimetype == "text/csv"
    assert "attachment" in res.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))
    assert [r["rows"] for r in rows] == ["412"]
    with engine.connect() as conn:
        last = conn.execute(text("SELECT actor, action, target, rows, details FROM audit_log "
                                 "ORDER BY id DESC LIMIT 1")).mappings().one()
    assert last["actor"] == "admin@example.org" and last["action"] == "export" and last["target"] == "audit_log"
    assert last["rows"] == 1 and last["details"]["filters"] == {"action": "export"}


def test_users_page_lists_roles_and_forms_carry_csrf(app, engine):
    admin = signed_in_client(app, engine, "admin")
    make_user(engine, "organiser")
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "organiser@example.org" in page and "admin@example.org" in page
    assert page.count('name="csrf_token"') >= 5  # role + remove per user, and sign-out


@pytest.mark.browser
def test_admin_signs_in_in_a_browser_with_secure_cookies_on_localhost(db_url, tmp_path, live_server, artifacts,
                                                                     engine):
    """The default Secure cookie works on http://127.0.0.1 (browsers treat it as a secure context)."""
    require_browser()
    make_user(engine, "admin")
    _seed(engine)
    app = make_app(db_url, tmp_path)
    url = live_server(app)
    with open_page(url + "/admin/audit") as view:
        assert "/sign-in" in view.page.url
        view.page.fill("#email", email_for("admin"))
        view.page.fill("#password", PASSWORD)
        view.page.click("button[type=submit]")
        view.page.wait_for_selector("table.data")
        assert view.page.url.endswith("/admin/audit")
        text_ = view.page.inner_text("main")
        view.screenshot(artifacts / "admin_audit.png")
        assert view.console_errors == []
    assert "412" in text_ and "sign-in" in text_ and "admin@example.org" in text_
