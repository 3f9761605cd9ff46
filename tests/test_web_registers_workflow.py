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
from tests.conftest import copied_pack, engine_over, make_app

FILE = "libraries_2023.csv"


@pytest.fixture(scope="module")
def packed(pg_server, pack_db):
    """One copy of the pack database for the module, without the 2021 NSPL extract: the 2014 gazetteer does not
    know TF9 4NX, so libraries_2023.csv has a quarantined row (Loggerheads Library). Tests use registers of their
    own."""
    with copied_pack(pg_server, pack_db) as url, engine_over(url) as eng:
        with eng.begin() as conn:
            conn.execute(text("DELETE FROM postcodes WHERE source = 'nspl'"))
        eng.url_text = url
        yield eng


@pytest.fixture
def engine(packed):
    return packed


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
        page = _upload(officer, name, data, register="libs_bad")
        assert page.status_code == 400, name
        assert expected in page.get_data(as_text=True), name
    too_big = _upload(officer, "big.csv", b"name\n" + b"x" * (3 * 1024 * 1024), register="libs_bad")
    assert too_big.status_code == 413 and "2 MB" in too_big.get_data(as_text=True)
    assert _count(engine, "SELECT count(*) FROM register_uploads WHERE register = 'libs_bad'") == 0
    assert not [p for p in (tmp_path / "uploads").iterdir()] if (tmp_path / "uploads").exists() else True


def test_upload_map_preview_import_in_the_background(officer, engine, app, pack):
    data = (pack / "registers" / FILE).read_bytes()
    page = _upload(officer, FILE, data)
    assert page.status_code == 302
    mapping_url = page.headers["Location"]
    upload_id = int(re.search(r"/uploads/(\d+)/", mapping_url).group(1))
    form = officer.get(mapping_url).get_data(as_text=True)
    assert "layers/mappings/libraries_2023.yaml" in form
    chosen = dict(re.findall(r'id="(col-\d+)"[^>]*>\s*<option value="">[^<]*</option>(?:(?!</select>).)*?'
                             r'<option value="(\w+)" selected', form, re.S))
    assert chosen, "the proposal pre-selects fields"
    post = {"csrf_token": officer.token, "defaults": "status: open\ncategory: library\ntier: organisation",
            "derive": "- column: operation_23\n  values:\n"
                      "    CR: {tier: association, category: community_run_library}\n"
                      "    LA: {tier: organisation, category: library}\n    Closed: {status: closed}\n"}
    # A mapping that gives 'name' nothing is refused in the page.
    nameless = officer.post(mapping_url, data={**post, **{k: v for k, v in chosen.items() if v != "name"}})
    assert nameless.status_code == 422 and "gives the field &#39;name&#39; nothing" in nameless.get_data(as_text=True)
    saved = officer.post(mapping_url, data={**post, **chosen})
    assert saved.status_code == 302

    before = _count(engine, "SELECT count(*) FROM audit_log")
    preview = officer.get(f"/registers/uploads/{upload_id}/preview").get_data(as_text=True)
    assert "New assets" in preview and "First problem rows" in preview
    assert _count(engine, "SELECT count(*) FROM assets WHERE register = 'libraries_2023'") == 0  # a dry run
    assert _count(engine, "SELECT count(*) FROM registers WHERE name = 'libraries_2023'") == 0
    assert _count(engine, "SELECT count(*) FROM audit_log") == before + 1     # the preview, itself audited
    assert _count(engine, "SELECT count(*) FROM audit_log WHERE action = 'preview'") == 1

    started = officer.post(f"/registers/uploads/{upload_id}/import", data={"csrf_token": officer.token})
    assert started.status_code == 302
    again = officer.post(f"/registers/uploads/{upload_id}/import", data={"csrf_token": officer.token},
                         follow_redirects=True)
    assert "already waiting" in again.get_data(as_text=True)
    from asset_map.api import kept

    assert not kept.current(engine, app.config["ASSET_MAP"])
    jobs.work(app.config["ASSET_MAP"], wait=False)
    page = officer.get("/registers/libraries_2023").get_data(as_text=True)
    assert "succeeded" in page and "rows read" in page
    # The import queued the public downloads' making for the new data, and the worker made them.
    assert kept.current(engine, app.config["ASSET_MAP"])
    assert _count(engine, "SELECT count(*) FROM assets WHERE register = 'libraries_2023'") > 60
    assert _count(engine, "SELECT count(*) FROM register_imports WHERE register = 'libraries_2023'") == 1
    with engine.connect() as conn:
        actor = conn.execute(text("SELECT actor FROM asset_versions WHERE register = 'libraries_2023'")).first()[0]
    assert actor == "officer@example.org"
    csv_body = officer.get("/registers/libraries_2023/assets.csv").get_data(as_text=True)
    assert csv_body.startswith("\ufeffid,") and "/assets/" in csv_body
    assert "columns:" in officer.get("/registers/libraries_2023/mapping.yaml").get_data(as_text=True)


def test_a_failed_job_leaves_the_database_as_it_was_and_shows_its_error(officer, engine, app, pack, tmp_path):
    data = (pack / "registers" / FILE).read_bytes()
    page = _upload(officer, FILE, data, register="libs_failed")
    upload_id = int(re.search(r"/uploads/(\d+)/", page.headers["Location"]).group(1))
    with engine.begin() as conn:
        conn.execute(text("UPDATE register_uploads SET mapping = CAST(:m AS jsonb) WHERE id = :i"),
                     {"m": '{"columns": {"name": ["name"], "category": ["no such column"]}}', "i": upload_id})
    officer.post(f"/registers/uploads/{upload_id}/import", data={"csrf_token": officer.token})
    jobs.work(app.config["ASSET_MAP"], wait=False)
    page = officer.get("/registers/libs_failed").get_data(as_text=True)
    assert "no such column" in page and "failed" in page
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM registers WHERE name = 'libs_failed'")).scalar() == 0
        job = conn.execute(text("SELECT status, error FROM import_jobs WHERE register = 'libs_failed'")).one()
        failed = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'import-failed'")).scalar()
    assert job.status == "failed" and "no such column" in job.error and failed == 1
    assert _count(engine, "SELECT count(*) FROM assets WHERE register = 'libs_failed'") == 0


def test_upload_needs_an_officer_and_csrf(app, engine):
    organiser = signed_in_client(app, engine, "organiser")
    assert organiser.get("/registers/upload").status_code == 403
    officer = signed_in_client(app, engine, "officer")
    assert _upload_without_csrf(officer).status_code == 400


def _upload_without_csrf(client):
    return client.post("/registers/upload", data={"new_register": "x", "file": (io.BytesIO(b"name\nA\n"), "a.csv")},
                       content_type="multipart/form-data")


@pytest.fixture
def imported_2023(engine, pack, request):
    from asset_map.registers import importer

    name = "libs_" + request.node.name.removeprefix("test_")[:20]
    importer.import_register(engine, pack / "registers" / FILE, register=name, actor="cli")
    return name


def test_quarantine_fix_places_the_row_and_survives_a_reimport(officer, engine, imported_2023, pack):
    from asset_map.registers import importer

    listing = officer.get(f"/registers/{imported_2023}/quarantine").get_data(as_text=True)
    qids = re.findall(rf"/registers/{imported_2023}/quarantine/(\d+)", listing)
    assert qids, "libraries_2023 has quarantined rows"
    quarantined = _count(engine, f"SELECT count(*) FROM quarantine WHERE register = '{imported_2023}'")
    form = officer.get(f"/registers/{imported_2023}/quarantine/{qids[0]}").get_data(as_text=True)
    assert "Why it was not placed" in form
    nothing = officer.post(f"/registers/{imported_2023}/quarantine/{qids[0]}", data={"csrf_token": officer.token})
    assert nothing.status_code == 400 and "Nothing was changed" in nothing.get_data(as_text=True)
    fixed = officer.post(f"/registers/{imported_2023}/quarantine/{qids[0]}",
                         data={"csrf_token": officer.token, "lon": "-2.1175", "lat": "52.8065",
                               "reason": "placed on the map"})
    assert fixed.status_code == 302 and "/assets/" in fixed.headers["Location"]
    asset_id = int(fixed.headers["Location"].rsplit("/", 1)[1])
    assert _count(engine, f"SELECT count(*) FROM quarantine WHERE register = '{imported_2023}'") == quarantined - 1
    importer.import_register(engine, pack / "registers" / FILE, register=imported_2023)
    assert _count(engine, f"SELECT count(*) FROM quarantine WHERE register = '{imported_2023}'") == quarantined - 1
    with engine.connect() as conn:
        row = conn.execute(text("SELECT withdrawn_at, geocode_method FROM assets WHERE id = :i"),
                           {"i": asset_id}).one()
    assert row.withdrawn_at is None and row.geocode_method == "coordinates"
    page = officer.get(f"/assets/{asset_id}").get_data(as_text=True)
    assert "quarantine-fix" in page and "Kept through re-imports" in page


def test_a_dismissed_row_stays_out_of_later_imports(officer, engine, tmp_path):
    from asset_map.registers import importer

    halls = tmp_path / "halls.csv"
    halls.write_text("name,category,postcode\nVillage Hall,community_centre,ST16 2LP\n"
                     "TOTALS (not an asset),community_centre,\n", encoding="utf-8")
    importer.import_register(engine, halls, register="halls")
    listing = officer.get("/registers/halls/quarantine").get_data(as_text=True)
    (qid,) = re.findall(r"/registers/halls/quarantine/(\d+)", listing)
    refused = officer.post(f"/registers/halls/quarantine/{qid}/dismiss", data={"csrf_token": officer.token},
                           follow_redirects=True)
    assert "Say why" in refused.get_data(as_text=True)
    officer.post(f"/registers/halls/quarantine/{qid}/dismiss", data={"csrf_token": officer.token,
                                                                     "reason": "a totals row"})
    assert _count(engine, "SELECT count(*) FROM quarantine WHERE register = 'halls'") == 0
    report = importer.import_register(engine, halls, register="halls")
    assert report.quarantined == 0 and report.imported == 1
    assert _count(engine, "SELECT count(*) FROM audit_log WHERE action = 'quarantine-dismiss'") == 1


def test_the_quarantine_pages_by_keyset_and_downloads_every_row(officer, engine, tmp_path):
    """130 rows no import can place: the pages walk forward and back through every one in source-row order, and
    the CSV download (sent as it is read) holds them all."""
    from html import unescape

    from asset_map.registers import importer
    from asset_map.web.registers import QUARANTINE_PAGE

    halls = tmp_path / "nowhere.csv"
    halls.write_text("name,category,postcode\n" + "".join(f"Hall {i},community_centre,\n" for i in range(130)),
                     encoding="utf-8")
    importer.import_register(engine, halls, register="nowhere")

    def rows(html):
        return [int(n) for n in re.findall(r'govuk-table__cell--numeric">(\d+)</td>', html)]

    def link(html, rel):
        found = re.search(rf'href="([^"]+)" rel="{rel}"', html)
        return unescape(found.group(1)) if found else None

    html = officer.get("/registers/nowhere/quarantine").get_data(as_text=True)
    assert "130 rows" in html and len(rows(html)) == QUARANTINE_PAGE
    seen = rows(html)
    while (nxt := link(html, "next")) is not None:
        html = officer.get(nxt).get_data(as_text=True)
        seen += rows(html)
    assert seen == list(range(2, 132))   # file rows 2..131 (the header is row 1)
    html = officer.get("/registers/nowhere/quarantine?last=1").get_data(as_text=True)
    back = rows(html)
    while (prev := link(html, "prev")) is not None:
        html = officer.get(prev).get_data(as_text=True)
        back = rows(html) + back
    assert back == seen
    res = officer.get("/registers/nowhere/quarantine.csv")
    assert res.is_streamed
    lines = res.get_data(as_text=True).splitlines()
    assert len(lines) == 131 and lines[1].split(",")[1] == "2" and lines[-1].split(",")[1] == "131"


def test_rollback_from_the_register_page(officer, engine, imported_2023, pack, tmp_path):
    import pandas as pd

    from asset_map.registers import importer

    frame = pd.read_csv(pack / "registers" / FILE, dtype=str, keep_default_na=False)
    frame.loc[frame["name"] == "Audley Library", "name"] = "Audley Library (renamed)"
    changed = tmp_path / FILE
    frame.iloc[:-5].to_csv(changed, index=False)
    importer.import_register(engine, changed, register=imported_2023)
    withdrawn = f"SELECT count(*) FROM assets WHERE register = '{imported_2023}' AND withdrawn_at IS NOT NULL"
    assert _count(engine, withdrawn) >= 5
    page = officer.get(f"/registers/{imported_2023}").get_data(as_text=True)
    first = re.search(rf'/registers/{imported_2023}/rollback/(\d+)', page).group(1)
    done = officer.post(f"/registers/{imported_2023}/rollback/{first}", data={"csrf_token": officer.token,
                                                                             "reason": "wrong file"},
                        follow_redirects=True)
    assert "Rolled back" in done.get_data(as_text=True)
    # Without a source key, the renamed row was a new asset (and the old one withdrawn): after the rollback the
    # new one is withdrawn (it did not exist after the first import) and the old one is back.
    with engine.connect() as conn:
        still = [n for (n,) in conn.execute(text(withdrawn.replace("count(*)", "name")))]
    assert still == ["Audley Library (renamed)"]
    audley = f"SELECT count(*) FROM assets WHERE register = '{imported_2023}' AND name = 'Audley Library'"
    assert _count(engine, audley) == 1
    assert _count(engine, "SELECT count(*) FROM audit_log WHERE action = 'rollback'") == 1


def test_an_import_whose_worker_died_is_shown_as_interrupted_and_can_be_started_again(officer, engine, app):
    """A worker killed half way: its transaction is gone with it (the database as it was); procrastinate still says
    'doing', but the worker's heartbeat stopped, so the page says what happened and a new import may start."""
    app_ = jobs.make_app(app.config["ASSET_MAP"])
    with app_.open():
        queued = app_.configure_task(jobs.TASK, queue=jobs.QUEUE).defer(import_job_id=0)
    with engine.begin() as conn:
        worker = conn.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) "
                                   "VALUES (now() - interval '5 minutes') RETURNING id")).scalar()
        conn.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w WHERE id = :j"),
                     {"w": worker, "j": queued})
        conn.execute(text("INSERT INTO import_jobs (register, job_id, actor, status, step, started_at) "
                          "VALUES ('libs_killed', :j, 'officer@example.org', 'running', 'geocode', now())"),
                     {"j": queued})
    page = officer.get("/registers/libs_killed").get_data(as_text=True)
    assert "interrupted" in page and "nothing was changed" in page
    assert 'http-equiv="refresh"' not in page
    with engine.begin() as conn:
        conn.execute(text("UPDATE procrastinate_workers SET last_heartbeat = now() WHERE id = :w"), {"w": worker})
    assert "interrupted" not in officer.get("/registers/libs_killed").get_data(as_text=True)


def test_xlsx_and_geojson_uploads_are_read_and_mapped(officer, engine, tmp_path):
    import json

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Name", "Post code", "Type"])
    sheet.append(["Village Hall", "ST16 2LP", "community centre"])
    book.save(tmp_path / "halls.xlsx")
    geojson = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "Park"},
                                                          "geometry": {"type": "Point", "coordinates": [-2.1, 52.8]}}]}
    for name, data in (("halls.xlsx", (tmp_path / "halls.xlsx").read_bytes()),
                       ("parks.geojson", json.dumps(geojson).encode())):
        page = _upload(officer, name, data, register="libs_formats")
        assert page.status_code == 302, name
        form = officer.get(page.headers["Location"]).get_data(as_text=True)
        assert 'data-column="name"' in form or 'data-column="Name"' in form
    with engine.connect() as conn:
        stored = [n for (n,) in conn.execute(text("SELECT stored_name FROM register_uploads "
                                                  "WHERE register = 'libs_formats'"))]
    assert all(re.fullmatch(r"\d{8}-[0-9a-f]{16}\.(xlsx|geojson)", n) for n in stored) and len(stored) == 2


def _import_lock_free(engine, register):
    """Whether no transaction holds the importer's lock of ``register`` (taken and let go at once)."""
    with engine.connect() as conn:
        free = conn.execute(text("SELECT pg_try_advisory_xact_lock(hashtext(:r))"),
                            {"r": "import:" + register}).scalar()
        conn.rollback()
    return free


def test_a_worker_process_killed_half_way_leaves_the_database_as_it_was(officer, engine, app, pack, tmp_path):
    """A real `asset-map worker`, SIGKILLed while its import's transaction holds every asset it wrote: PostgreSQL
    rolls the transaction back, and procrastinate's stalled-job recovery (run when a worker starts) marks the job
    failed, shown on the register page with what to do; the import can then be started again."""
    import os
    import signal
    import subprocess
    import sys
    import time

    register = "libs_sigkill"
    page = _upload(officer, FILE, (pack / "registers" / FILE).read_bytes(), register=register)
    upload_id = int(re.search(r"/uploads/(\d+)/", page.headers["Location"]).group(1))
    officer.post(f"/registers/uploads/{upload_id}/import", data={"csrf_token": officer.token})
    env = {**os.environ, "ASSET_MAP_DATABASE_URL": engine.url_text, "ASSET_MAP_VAR_DIR": str(tmp_path),
           "ASSET_MAP_SECRET_KEY": "test"}
    # The import's last write (the quarantine's snapshot, after every asset) waits on a lock this test holds: the
    # worker is then certainly half way, inside its transaction, when it is killed.
    with engine.connect() as holder:
        holder.begin()
        holder.execute(text("LOCK TABLE quarantine_snapshots IN ACCESS EXCLUSIVE MODE"))
        worker = subprocess.Popen([sys.executable, "-c", "from asset_map.cli import cli; cli()", "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 180
            while _count(engine, "SELECT count(*) FROM pg_locks WHERE NOT granted "
                                 "AND relation = 'quarantine_snapshots'::regclass") == 0:
                assert worker.poll() is None and time.monotonic() < deadline, "the worker never reached the save"
                time.sleep(0.2)
            assert _count(engine, f"SELECT count(*) FROM import_jobs WHERE register = '{register}' "
                                  "AND status = 'running'") == 1
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
        finally:
            if worker.poll() is None:
                worker.kill()
        holder.rollback()
    # The killed worker's server process finds its client gone at its next read and rolls the transaction back.
    deadline = time.monotonic() + 60
    while not _import_lock_free(engine, register):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    for table, column in (("assets", "register"), ("registers", "name"), ("register_imports", "register")):
        assert _count(engine, f"SELECT count(*) FROM {table} WHERE {column} = '{register}'") == 0, table

    assert jobs.recover_stalled(app.config["ASSET_MAP"], seconds_since_heartbeat=0) != []
    with engine.connect() as conn:
        job = conn.execute(text("SELECT j.status, j.error, p.status AS queued FROM import_jobs j JOIN "
                                "procrastinate_jobs p ON p.id = j.job_id WHERE j.register = :r"),
                           {"r": register}).one()
    assert job.status == "failed" and job.queued == "failed" and "nothing was changed" in job.error
    shown = officer.get(f"/registers/{register}").get_data(as_text=True)
    assert "failed" in shown and "nothing was changed" in shown and "Start it again" in shown
    again = officer.post(f"/registers/uploads/{upload_id}/import", data={"csrf_token": officer.token})
    assert again.status_code == 302
    jobs.work(app.config["ASSET_MAP"], wait=False)
    assert _count(engine, f"SELECT count(*) FROM assets WHERE register = '{register}'") > 60
