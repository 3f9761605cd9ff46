"""The register workflow in the browser, without a browser: upload (and the files refused), column mapping,
preview (a dry run that writes nothing), import as a background job worked by procrastinate, quarantine fix and
dismissal, rollback, downloads; CSRF and roles."""

import io
import re
import zipfile

import pytest
from sqlalchemy import text

from asset_map import jobs
from tests.accounts import csrf_token, signed_in_client
from tests.conftest import copied_database, engine_over, make_app

FILE = "libraries_2023.csv"


@pytest.fixture
def engine(pg_server, pack_db):
    with copied_database(pg_server, pack_db.rsplit("/", 1)[1]) as url, engine_over(url) as eng:
        eng.url_text = url
        yield eng


@pytest.fixture
def app(engine, tmp_path):
    return make_app(engine.url_text, tmp_path, MAX_UPLOAD_MB=2)


@pytest.fixture
def officer(app, engine):
    client = signed_in_client(app, engine, "officer")
    client.token = csrf_token(client, "/registers/upload")
    return client


def _upload(client, name, data, register="libraries_2023"):
    return client.post("/registers/upload", data={"csrf_token": client.token, "new_register": register,
                                                  "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _count(engine, sql):
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def test_bad_files_are_refused_with_a_message_and_nothing_kept(officer, engine, app, tmp_path):
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"0" * (50 * 1024 * 1024))
    cases = [("libs.exe", b"MZ\x90\x00", "wrong kind"), ("libs.xlsx", b"name,postcode\n", "wrong kind"),
             ("bomb.xlsx", bomb.getvalue(), "zip bomb"), ("libs.csv", b"", "empty"),
             ("libs.csv", b"\x00\x01\x02binary", "not a text CSV")]
    for name, data, expected in cases:
        page = _upload(officer, name, data)
        assert page.status_code == 400, name
        assert expected in page.get_data(as_text=True), name
    too_big = _upload(officer, "big.csv", b"name\n" + b"x" * (3 * 1024 * 1024))
    assert too_big.status_code == 413 and "2 MB" in too_big.get_data(as_text=True)
    assert _count(engine, "SELECT count(*) FROM register_uploads") == 0
    assert not [p for p in (tmp_path / "uploads").iterdir()] if (tmp_path / "uploads").exists() else True


def test_upload_map_preview_import_in_the_background(officer, engine, app, pack):
    data = (pack / "registers" / FILE).read_bytes()
    page = _upload(officer, FILE, data)
    assert page.status_code == 302
    mapping_url = page.headers["Location"]
    upload_id = int(re.search(r"/uploads/(\d+)/", mapping_url).group(1))
    form = officer.get(mapping_url).get_data(as_text=True)
    assert "layers/mappings/libraries_2023.yaml" in form
    columns = re.findall(r'<select class="govuk-select" id="(col-\d+)" name="col-\d+" data-column="([^"]+)"', form)
    chosen = dict(re.findall(r'id="(col-\d+)"[^>]*>\s*<option value="">[^<]*</option>(?:(?!</select>).)*?'
                             r'<option value="(\w+)" selected', form, re.S))
    assert chosen, "the proposal pre-selects fields"
    post = {"csrf_token": officer.token, "defaults": "status: open\ncategory: library\ntier: organisation",
            "derive": "- column: operation_23\n  values:\n    CR: {tier: association, category: community_run_library}\n"
                      "    LA: {tier: organisation, category: library}\n    Closed: {status: closed}\n"}
    # A mapping that gives 'name' nothing is refused in the page.
    nameless = officer.post(mapping_url, data={**post, **{k: v for k, v in chosen.items() if v != "name"}})
    assert nameless.status_code == 422 and "gives the field &#39;name&#39; nothing" in nameless.get_data(as_text=True)
    saved = officer.post(mapping_url, data={**post, **chosen})
    assert saved.status_code == 302

    before = _count(engine, "SELECT count(*) FROM audit_log")
    preview = officer.get(f"/registers/uploads/{upload_id}/preview").get_data(as_text=True)
    assert "New assets" in preview and "First problem rows" in preview
    assert _count(engine, "SELECT count(*) FROM assets") == 0          # a dry run: nothing written
    assert _count(engine, "SELECT count(*) FROM registers") == 0
    assert _count(engine, "SELECT count(*) FROM audit_log") == before

    started = officer.post(f"/registers/uploads/{upload_id}/import", data={"csrf_token": officer.token})
    assert started.status_code == 302
    again = officer.post(f"/registers/uploads/{upload_id}/import", data={"csrf_token": officer.token},
                         follow_redirects=True)
    assert "already waiting" in again.get_data(as_text=True)
    jobs.work(app.config["ASSET_MAP"], wait=False)
    page = officer.get("/registers/libraries_2023").get_data(as_text=True)
    assert "succeeded" in page and "rows read" in page
    assert _count(engine, "SELECT count(*) FROM assets WHERE register = 'libraries_2023'") > 60
    assert _count(engine, "SELECT count(*) FROM register_imports WHERE register = 'libraries_2023'") == 1
    with engine.connect() as conn:
        actor = conn.execute(text("SELECT actor FROM asset_versions LIMIT 1")).scalar()
    assert actor == "officer@example.org"
    csv_body = officer.get("/registers/libraries_2023/assets.csv").get_data(as_text=True)
    assert csv_body.startswith("\ufeffid,") and "/assets/" in csv_body
    assert "columns:" in officer.get("/registers/libraries_2023/mapping.yaml").get_data(as_text=True)


def test_a_failed_job_leaves_the_database_as_it_was_and_shows_its_error(officer, engine, app, pack, tmp_path):
    data = (pack / "registers" / FILE).read_bytes()
    page = _upload(officer, FILE, data)
    upload_id = int(re.search(r"/uploads/(\d+)/", page.headers["Location"]).group(1))
    with engine.begin() as conn:
        conn.execute(text("UPDATE register_uploads SET mapping = CAST(:m AS jsonb) WHERE id = :i"),
                     {"m": '{"columns": {"name": ["name"], "category": ["no such column"]}}', "i": upload_id})
    officer.post(f"/registers/uploads/{upload_id}/import", data={"csrf_token": officer.token})
    jobs.work(app.config["ASSET_MAP"], wait=False)
    page = officer.get("/registers/libraries_2023").get_data(as_text=True)
    assert "no such column" in page and "failed" in page
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM registers")).scalar() == 0  # nothing written
        job = conn.execute(text("SELECT status, error FROM import_jobs")).one()
        failed = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'import-failed'")).scalar()
    assert job.status == "failed" and "no such column" in job.error and failed == 1
    assert _count(engine, "SELECT count(*) FROM assets") == 0


def test_upload_needs_an_officer_and_csrf(app, engine):
    organiser = signed_in_client(app, engine, "organiser")
    assert organiser.get("/registers/upload").status_code == 403
    officer = signed_in_client(app, engine, "officer")
    assert _upload_without_csrf(officer).status_code == 400


def _upload_without_csrf(client):
    return client.post("/registers/upload", data={"new_register": "x", "file": (io.BytesIO(b"name\nA\n"), "a.csv")},
                       content_type="multipart/form-data")
