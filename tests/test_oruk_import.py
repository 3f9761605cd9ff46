"""ORUK import: a feed served by asset-map itself (over HTTP) and a file, into another database; re-imports change
nothing; broken and hostile feeds stop with a clear message and write nothing."""

import json
import re
import threading
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from asset_map.cli import cli
from asset_map.oruk import feed
from asset_map.oruk.feed import FeedError, Limits, import_feed
from tests.conftest import engine_over, make_app
from tests.export_data import export_db, export_engine  # noqa: F401


@pytest.fixture
def target_url(pg_server, pack_db):
    """A fresh copy of the pack database (reference data, no assets) to import into."""
    from asset_map.store.db import dispose_engines

    dispose_engines()
    name = f"am_oruk_{uuid.uuid4().hex[:8]}"
    url = pg_server.create(name, template=pack_db.rsplit("/", 1)[1])
    yield url
    dispose_engines()
    pg_server.drop(name)


@pytest.fixture
def target(target_url):
    with engine_over(target_url) as eng:
        yield eng


def _state(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT (SELECT count(*) FROM assets), (SELECT count(*) FROM registers), "
                                 "(SELECT count(*) FROM quarantine)")).one()


def _public_assets(engine):
    with engine.connect() as conn:
        return {r.name: r for r in conn.execute(text(
            "SELECT name, category, tier, offers, district_code, lsoa21_code, postcode FROM assets "
            "WHERE tier <> 'individual' AND visibility = 'public' AND status IN ('open', 'temporarily closed')"))}


@pytest.mark.slow
def test_import_a_feed_served_by_asset_map_twice(export_db, export_engine, target, live_server, tmp_path):
    base = live_server(make_app(export_db, tmp_path)) + "/oruk"
    first = import_feed(target, base, limits=Limits(max_pages=50))
    source = _public_assets(export_engine)
    assert first.inserted == len(source) and first.quarantined == 0
    got = _public_assets(target)
    # Services grouped back into their assets, with category, tier, offers, postcode, district and LSOA.
    for name, row in source.items():
        assert (got[name].category, got[name].tier, sorted(got[name].offers), got[name].postcode,
                got[name].district_code, got[name].lsoa21_code) == \
            (row.category, row.tier, sorted(row.offers), row.postcode, row.district_code, row.lsoa21_code), name
    with target.connect() as conn:
        ids_before = dict(conn.execute(text("SELECT source_key, id FROM assets")).all())
        register = conn.execute(text("SELECT name, source_file FROM registers")).one()
    assert register.name == "oruk-127.0.0.1" and register.source_file == base
    again = import_feed(target, base)
    assert (again.inserted, again.updated, again.unchanged, again.withdrawn) == (0, 0, len(source), 0)
    with target.connect() as conn:
        assert dict(conn.execute(text("SELECT source_key, id FROM assets")).all()) == ids_before


def test_import_a_file_from_the_command_line(export_db, target_url, tmp_path, monkeypatch):
    client = make_app(export_db, tmp_path).test_client()
    listed = client.get("/oruk/services?per_page=1000").get_json()["contents"]
    full = [client.get(f"/oruk/services/{s['id']}").get_json() for s in listed]
    path = tmp_path / "partner-feed.json"
    path.write_text(json.dumps({"contents": full}), encoding="utf-8")
    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", target_url)
    monkeypatch.setenv("ASSET_MAP_VAR_DIR", str(tmp_path))
    out = CliRunner().invoke(cli, ["import-oruk", str(path), "--quiet"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("oruk-partner-feed:") and "0 quarantined" in out.output
    again = CliRunner().invoke(cli, ["import-oruk", str(path), "--quiet"])
    assert "0 new, 0 updated" in again.output


def test_foreign_words_go_through_the_taxonomy_aliases():
    services = [{"id": "s1", "name": "Tuesday club", "status": "active", "organization_id": "o1",
                 "organization": {"id": "o1", "name": "St Mary's Church", "description": "A church"},
                 "attributes": [{"id": "a1", "taxonomy_term": {"id": "t1", "name": "Place of worship",
                                                               "description": "x"}},
                                {"id": "a2", "taxonomy_term": {"id": "t2", "name": "Room hire", "description": "x"}}],
                 "service_at_locations": [{"id": "l1", "location": {"id": "L", "location_type": "physical",
                                                                     "external_identifier": "100031640000",
                                                                     "external_identifier_type": "UPRN",
                                                                     "addresses": [{"address_1": "1 Church St",
                                                                                    "city": "Stone",
                                                                                    "postal_code": "ST15 8AB"}]}}]},
                {"id": "s2", "name": "Food bank", "status": "defunct", "organization_id": "o1"}]
    rows = feed.to_rows(services, "test")
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row["category"], row["offers"], row["uprn"], row["postcode"], row["status"]) == \
        ("faith_group", "buildings/space", "100031640000", "ST15 8AB", "open")


class _Forever:
    """A WSGI feed that pages forever (every page new ids, never the last), or loops (the same ids again)."""

    def __init__(self, loop=False):
        self.loop, self.calls, self.lock = loop, 0, threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            self.calls += 1
            n = self.calls
        from urllib.parse import parse_qs
        page = int(parse_qs(environ.get("QUERY_STRING", "")).get("page", ["1"])[0])
        ids = [f"x{1 if self.loop else page}-{i}" for i in range(3)]
        body = {"total_items": 10**9, "total_pages": 10**7, "page_number": page, "size": 3, "first_page": page == 1,
                "last_page": False, "empty": False,
                "contents": [{"id": i, "name": f"S {i}", "status": "active", "service_at_locations": []}
                             for i in ids]}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode() if n else b""]


@pytest.mark.parametrize("case", ["forever", "loop", "no-id", "cycle", "big", "latin1", "not-json", "deep", "empty"])
def test_bad_feeds_stop_clearly_and_write_nothing(case, target, tmp_path, live_server):
    before = _state(target)
    limits = Limits(max_pages=5, max_bytes=1024 * 1024)
    path = tmp_path / f"{case}.json"
    if case in ("forever", "loop"):
        source = live_server(_Forever(loop=case == "loop")) + "/oruk"
        expect = "more than 5 pages" if case == "forever" else "the feed loops"
    else:
        source = str(path)
        if case == "no-id":
            path.write_text(json.dumps({"contents": [{"id": "a", "name": "A"}, {"name": "no id"}]}))
            expect = "service 2: has no id"
        elif case == "cycle":
            orgs = [("o1", "o2"), ("o2", "o3"), ("o3", "o1")]
            path.write_text(json.dumps([{"id": f"s{i}", "name": "x", "status": "active", "organization_id": o,
                                         "organization": {"id": o, "name": o, "parent_organization_id": p}}
                                        for i, (o, p) in enumerate(orgs)]))
            expect = "its own ancestor"
        elif case == "big":
            # 50 MB of JSON against a 1 MB limit: refused from its size, before it is read.
            with open(path, "wb") as fh:
                fh.write(b'{"contents": [' + b'{"id": "x", "name": "' + b"a" * (50 * 1024 * 1024) + b'"}]}')
            expect = "larger than 1 MB"
        elif case == "latin1":
            path.write_bytes(json.dumps([{"id": "s", "name": "Caf\u00e9"}], ensure_ascii=False).encode("latin-1"))
            expect = "not UTF-8"
        elif case == "not-json":
            path.write_text('{"contents": [')
            expect = "not valid JSON"
        elif case == "deep":
            path.write_text("[" * 200_000 + "]" * 200_000)
            expect = "nested too deeply"
        else:
            path.write_text('{"contents": []}')
            expect = "lists no services"
    with pytest.raises(FeedError) as err:
        import_feed(target, source, limits=limits)
    assert expect in err.value.user_message and "nothing was imported" in err.value.user_message.lower()
    assert _state(target) == before


@pytest.mark.slow
def test_upload_an_oruk_file_in_the_browser_workflow(export_db, target_url, target, tmp_path):
    """The registers upload takes an ORUK JSON file like any register: mapped, previewed, imported in the
    background."""
    import io

    from asset_map import jobs
    from tests.accounts import csrf_token, signed_in_client

    source = make_app(export_db, tmp_path / "source").test_client()
    listed = source.get("/oruk/services?per_page=1000").get_json()["contents"]
    feed_json = json.dumps({"contents": [source.get(f"/oruk/services/{s['id']}").get_json() for s in listed]})
    app = make_app(target_url, tmp_path / "target")
    officer = signed_in_client(app, target, "officer")
    token = csrf_token(officer, "/registers/upload")
    page = officer.post("/registers/upload", data={"csrf_token": token, "new_register": "partner-directory",
                                                   "file": (io.BytesIO(feed_json.encode()), "directory.json")},
                        content_type="multipart/form-data")
    assert page.status_code == 302, page.get_data(as_text=True)[:500]
    upload_id = int(page.headers["Location"].split("/uploads/")[1].split("/")[0])
    form = officer.get(page.headers["Location"]).get_data(as_text=True)
    assert 'data-column="category"' in form and 'data-column="oruk_services"' in form
    # The proposal maps the columns named like fields; saved as proposed.
    chosen = dict(re.findall(r'id="(col-\d+)"[^>]*>\s*<option value="">[^<]*</option>(?:(?!</select>).)*?'
                             r'<option value="(\w+)" selected', form, re.S))
    assert {"name", "category", "lon", "lat"} <= set(chosen.values())
    assert officer.post(page.headers["Location"], data={"csrf_token": token, **chosen}).status_code == 302
    preview = officer.get(f"/registers/uploads/{upload_id}/preview")
    assert preview.status_code == 200 and _state(target)[0] == 0
    assert officer.post(f"/registers/uploads/{upload_id}/import", data={"csrf_token": token}).status_code == 302
    jobs.work(app.config["ASSET_MAP"], wait=False)
    with target.connect() as conn:
        got = conn.execute(text("SELECT count(*) FROM assets WHERE register = 'partner-directory'")).scalar()
    assert got == len({s["organization_id"] for s in listed})
