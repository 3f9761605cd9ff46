"""The asset page and its forms: details, need decile, nearby assets, history; who sees what; add by a point,
edit with a stale version refused in the page, verify, withdraw; CSRF on every form."""

import re
import shutil

import pytest
from sqlalchemy import text

from asset_map.registers import edits, importer
from tests.accounts import csrf_token, signed_in_client
from tests.conftest import copied_pack, engine_over, make_app

FILE = "libraries_staffordshire.csv"


@pytest.fixture(scope="module")
def engine(pg_server, pack_db):
    """One copy of the pack database for the module, with the Staffordshire libraries imported; each test changes
    assets of its own."""
    with copied_pack(pg_server, pack_db) as url, engine_over(url) as eng:
        eng.url_text = url
        yield eng


@pytest.fixture
def app(engine, tmp_path):
    return make_app(engine.url_text, tmp_path)


@pytest.fixture(scope="module")
def imported(engine, pack, tmp_path_factory):
    path = tmp_path_factory.mktemp("libs") / FILE
    shutil.copy(pack / "registers" / FILE, path)
    importer.import_register(engine, path, register="libs")
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT name, id FROM assets WHERE register = 'libs'")).all())


def _individual(engine, name="Pat Example (gardening)"):
    """A consenting individual placed in Stafford (officers may see it; nobody below)."""
    asset_id, _ = edits.create_asset(engine, {"name": name, "tier": "individual",
                                              "category": "skills", "lon": "-2.117", "lat": "52.806",
                                              "consent": "yes"}, actor="officer@example.org")
    return asset_id


def test_asset_page_shows_details_area_need_nearby_and_history(app, imported):
    client = app.test_client()
    page = client.get(f"/assets/{imported['Audley Library']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Audley Library" in html and "Newcastle-under-Lyme" in html
    assert re.search(r"IMD 2025 decile \d+", html)
    assert 'id="nearby"' in html and "/assets/" in html
    assert "History" in html and "import" in html
    # The public sees neither who made a change nor e-mail addresses.
    assert "audley.library@staffordshire.gov.uk" not in html
    assert "Edit</a>" not in html


def test_individuals_are_404_below_officer_and_shown_to_officers(app, engine, imported):
    asset_id = _individual(engine)
    assert app.test_client().get(f"/assets/{asset_id}").status_code == 404
    assert signed_in_client(app, engine, "organiser").get(f"/assets/{asset_id}").status_code == 404
    officer = signed_in_client(app, engine, "officer")
    assert "Pat Example" in officer.get(f"/assets/{asset_id}").get_data(as_text=True)


def test_the_rule_is_what_hides_individuals(app, engine, imported, monkeypatch):
    """Without the visibility rule the page would show the individual: the test can fail."""
    from asset_map.maps import asset_page

    from asset_map.maps import page_cache

    asset_id = _individual(engine, "Sam Example (cooking)")
    monkeypatch.setattr(asset_page, "visibility_condition", lambda role, alias: ("TRUE", {}))
    monkeypatch.setattr(page_cache, "visibility_condition", lambda role, alias: ("TRUE", {}))
    assert app.test_client().get(f"/assets/{asset_id}").status_code == 200


def test_add_edit_verify_withdraw_through_the_forms(app, engine, imported):
    client = signed_in_client(app, engine, "officer")
    token = csrf_token(client, "/assets/new")
    made = client.post("/assets/new", data={"csrf_token": token, "name": "Rising Brook Community Centre",
                                            "category": "community_centre", "lon": "-2.1265", "lat": "52.7985",
                                            "status": "open", "visibility": "public"})
    assert made.status_code == 302
    asset_id = int(made.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/assets/{asset_id}").get_data(as_text=True)
    assert "manual-E07000197" in page and "create" in page

    audley = imported["Barton Under Needwood Library"]
    form = client.get(f"/assets/{audley}/edit").get_data(as_text=True)
    version = re.search(r'name="version" value="(\d+)"', form).group(1)
    saved = client.post(f"/assets/{audley}/edit", data={"csrf_token": token, "version": version,
                                                        "name": "Barton Community Library", "reason": "renamed"})
    assert saved.status_code == 302
    stale = client.post(f"/assets/{audley}/edit", data={"csrf_token": token, "version": version,
                                                        "name": "Another name"})
    assert stale.status_code == 409 and "changed after you opened it" in stale.get_data(as_text=True)
    bad = client.post(f"/assets/{audley}/edit", data={"csrf_token": token, "version": str(int(version) + 1),
                                                      "category": "libary"})
    assert bad.status_code == 422 and "did you mean" in bad.get_data(as_text=True)

    client.post(f"/assets/{audley}/verify", data={"csrf_token": token, "version": str(int(version) + 1)})
    client.post(f"/assets/{audley}/withdraw", data={"csrf_token": token, "version": str(int(version) + 2),
                                                    "reason": "moved"})
    page = client.get(f"/assets/{audley}").get_data(as_text=True)
    assert "Withdrawn on" in page and "verify" in page and "Barton Community Library" in page
    assert "Kept through re-imports" in page
    assert app.test_client().get(f"/assets/{audley}").status_code == 404
    with engine.connect() as conn:
        actions = [a for (a,) in conn.execute(text("SELECT action FROM audit_log WHERE target = :t ORDER BY id"),
                                              {"t": f"asset:{audley}"})]
    assert actions == ["asset-edit", "asset-verify", "asset-withdraw"]


def test_forms_need_csrf_and_a_role(app, engine, imported):
    audley = imported["Baswich Library"]
    officer = signed_in_client(app, engine, "officer")
    assert officer.post(f"/assets/{audley}/verify", data={"version": "1"}).status_code == 400
    public = app.test_client()
    assert public.post(f"/assets/{audley}/verify", data={"version": "1"}).status_code in (302, 400)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version FROM assets WHERE id = :i"), {"i": audley}).scalar() == 1


def _kept(engine, asset_id):
    with engine.connect() as conn:
        return conn.execute(text("SELECT role, html FROM asset_page_cache WHERE asset_id = :a"), {"a": asset_id}).all()


class Clock:
    """A process's clock for its kept pages, moved by hand: when the pages are checked again is a step of the test,
    not a wait."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(app):
    """The app's kept pages on a hand-moved clock, checked against the store at most once a second."""
    from asset_map.maps import page_cache

    clock = Clock()
    app.extensions["asset_map.asset_pages"] = page_cache.ProcessPages(2**20, recheck_s=1.0, clock=clock)
    return clock


def _statements(app):
    """A list that gets every statement the app's engine runs from now on."""
    from sqlalchemy import event

    from asset_map.web import extensions

    seen = []
    with app.app_context():
        event.listen(extensions.engine(), "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_public_pages_are_kept_for_every_process_with_this_responses_nonce(app, engine, imported):
    asset_id = imported["Baswich Library"]
    first = app.test_client().get(f"/assets/{asset_id}")
    kept = _kept(engine, asset_id)
    assert [role for role, _ in kept] == ["public"] and "@@asset-map-csp-nonce@@" in kept[0][1]
    with engine.begin() as conn:   # the kept page is what the next request gets (marked, to be sure it is)
        conn.execute(text("UPDATE asset_page_cache SET html = replace(html, 'Baswich Library', 'Baswich (kept)') "
                          "WHERE asset_id = :a"), {"a": asset_id})
    other = make_app(engine.url_text, app.config["ASSET_MAP"]["VAR_DIR"])   # another process
    second = other.test_client().get(f"/assets/{asset_id}")
    html = second.get_data(as_text=True)
    assert "Baswich (kept)" in html and "@@asset-map-csp-nonce@@" not in html
    nonce = re.search(r"'nonce-([^']+)'", second.headers["Content-Security-Policy"]).group(1)
    assert f'nonce="{nonce}"' in html and nonce not in first.get_data(as_text=True)
    # Signed-in pages (CSRF tokens, names) and pages asked with a query string are never kept nor served from it.
    officer = signed_in_client(other, engine, "officer")
    assert "Baswich (kept)" not in officer.get(f"/assets/{asset_id}").get_data(as_text=True)
    assert "Baswich (kept)" not in other.test_client().get(f"/assets/{asset_id}?x=1").get_data(as_text=True)
    assert [role for role, _ in _kept(engine, asset_id)] == ["public"]


def test_a_process_serves_the_pages_it_kept_without_a_query(app, engine, imported, clock):
    asset_id = imported["Cannock Library"]
    drawn = app.test_client().get(f"/assets/{asset_id}").get_data(as_text=True)
    seen = _statements(app)
    again = app.test_client().get(f"/assets/{asset_id}")
    assert again.status_code == 200 and seen == []
    nonce = re.search(r"'nonce-([^']+)'", again.headers["Content-Security-Policy"]).group(1)
    html = again.get_data(as_text=True)
    assert f'nonce="{nonce}"' in html and "@@asset-map-csp-nonce@@" not in html and "Cannock Library" in html
    assert html.count(nonce) == drawn.count(re.search(r'nonce="([^"]+)"', drawn).group(1))
    clock.now += 1.0   # a second on: one statement checks the stamps and the asset's visibility
    assert app.test_client().get(f"/assets/{asset_id}").status_code == 200 and len(seen) == 1


def test_a_kept_page_is_sent_compressed_with_this_responses_nonce(app, imported, clock):
    """The compressed body is the kept parts with the nonce spliced in: it must inflate to the page itself."""
    import gzip

    asset_id = imported["Cannock Library"]
    app.test_client().get(f"/assets/{asset_id}")
    plain = app.test_client().get(f"/assets/{asset_id}", headers={"Accept-Encoding": "identity"})
    packed = app.test_client().get(f"/assets/{asset_id}", headers={"Accept-Encoding": "br;q=0.5, gzip"})
    assert "Content-Encoding" not in plain.headers and packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"] and packed.mimetype == "text/html"
    nonces = [re.search(r"'nonce-([^']+)'", r.headers["Content-Security-Policy"]).group(1) for r in (plain, packed)]
    html = gzip.decompress(packed.get_data()).decode()
    assert html == plain.get_data(as_text=True).replace(nonces[0], nonces[1]) and nonces[0] != nonces[1]
    assert int(packed.headers["Content-Length"]) == len(packed.get_data())


def test_a_change_to_any_asset_makes_kept_pages_stale(app, engine, imported, clock):
    asset_id, other = imported["Biddulph Library"], imported["Brewood Library"]
    app.test_client().get(f"/assets/{asset_id}")
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version FROM assets WHERE id = :i"), {"i": other}).scalar()
    edits.update_asset(engine, other, {"name": "Brewood Library and Hub"}, version=version, actor="o@example.org")
    with engine.begin() as conn:
        conn.execute(text("UPDATE asset_page_cache SET html = 'stale' WHERE asset_id = :a"), {"a": asset_id})
    clock.now += 1.0   # this process's copy is checked again; the table's copy is stale too
    html = app.test_client().get(f"/assets/{asset_id}").get_data(as_text=True)
    assert "Biddulph Library" in html


def test_a_withdrawal_made_in_the_app_is_seen_at_once(app, engine, imported, clock):
    """A write through this process (any form) makes its next page check the store: no second of staleness."""
    asset_id = imported["Codsall Library"]
    public = app.test_client()
    assert public.get(f"/assets/{asset_id}").status_code == 200
    officer = signed_in_client(app, engine, "officer")
    token = csrf_token(officer, "/assets/new")
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version FROM assets WHERE id = :i"), {"i": asset_id}).scalar()
    done = officer.post(f"/assets/{asset_id}/withdraw", data={"csrf_token": token, "version": str(version),
                                                              "reason": "closed for good"})
    assert done.status_code == 302
    assert public.get(f"/assets/{asset_id}").status_code == 404


def test_another_process_change_is_served_stale_at_most_until_the_next_check(app, engine, imported, clock):
    """What the once-a-second check allows, and no more: the kept copy of an asset made restricted by another
    process is served until the next check, then never again."""
    asset_id = imported["Cheadle Library"]
    public = app.test_client()
    assert public.get(f"/assets/{asset_id}").status_code == 200
    with engine.begin() as conn:
        conn.execute(text("UPDATE assets SET visibility = 'restricted' WHERE id = :i"), {"i": asset_id})
    assert public.get(f"/assets/{asset_id}").status_code == 200   # within the second since the last check
    clock.now += 1.0
    assert public.get(f"/assets/{asset_id}").status_code == 404


def test_a_kept_page_is_never_served_to_a_role_that_may_not_see_the_asset(app, engine, imported, monkeypatch,
                                                                          clock):
    """Even when the change stamps miss a change (a write with triggers off, by hand), every hit of the table and
    every check of a process's copies asks the role's visibility rule: without it the kept page of an asset made
    restricted would still be served."""
    from asset_map.maps import page_cache

    asset_id = imported["Burton Library"]
    assert app.test_client().get(f"/assets/{asset_id}").status_code == 200
    assert _kept(engine, asset_id)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))   # no change stamp is written
        conn.execute(text("UPDATE assets SET visibility = 'restricted' WHERE id = :i"), {"i": asset_id})
    clock.now += 1.0
    assert app.test_client().get(f"/assets/{asset_id}").status_code == 404
    other = make_app(engine.url_text, app.config["ASSET_MAP"]["VAR_DIR"])   # another process: the table's copy
    assert other.test_client().get(f"/assets/{asset_id}").status_code == 404
    monkeypatch.setattr(page_cache, "visibility_condition", lambda role, alias: ("TRUE", {}))
    leaked = other.test_client().get(f"/assets/{asset_id}")
    assert leaked.status_code == 200 and "Burton Library" in leaked.get_data(as_text=True)
