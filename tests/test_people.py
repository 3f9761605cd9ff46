"""The rights of the person (asset_map.people): find, subject access export and erasure, from the CLI and the admin
pages; audited without the personal data; all or nothing. And retention (asset_map.retention)."""

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from asset_map import people, retention
from asset_map.cli import cli
from asset_map.config import load_settings
from asset_map.errors import NotFound
from asset_map.registers import importer
from tests.accounts import csrf_token, signed_in_client
from tests.conftest import make_app
from tests.test_consent import SIX, engine  # noqa: F401 - fixture


SECRETS = ("Carol", "Cartwright", "carol@example.org", "01785 100003", "young carers")


@pytest.fixture
def six(engine):  # noqa: F811
    importer.import_register(engine, SIX, register="people")
    with engine.connect() as conn:
        carol = conn.execute(text("SELECT id FROM assets WHERE email = 'carol@example.org'")).scalar()
        # An earlier quarantined copy of her row and a saved report naming her (as before issue 12).
        conn.execute(text("INSERT INTO quarantine (register, source_row, row, problems) VALUES ('people', 4, "
                          "CAST(:r AS jsonb), '[]')"),
                     {"r": json.dumps({"fields": {"name": "Carol Cartwright", "email": "carol@example.org",
                                                  "postcode": "ST16 2JU"}, "properties": {}})})
        conn.execute(text("UPDATE registers SET report = jsonb_set(report, '{problems}', CAST(:p AS jsonb)) "
                          "WHERE name = 'people'"),
                     {"p": json.dumps([{"row": 4, "field": "email", "value": "carol@example.org",
                                        "reason": "x", "severity": "warning"}])})
        conn.commit()
    return carol


def _audit_text(engine):  # noqa: F811
    with engine.connect() as conn:
        return json.dumps([list(map(str, r)) for r in conn.execute(text(
            "SELECT actor, action, target, details, rows FROM audit_log WHERE action LIKE 'person-%'"))])


def test_find_export_and_erase_one_person(engine, six):  # noqa: F811
    assert [p["id"] for p in people.find(engine, email="CAROL@example.org ")] == [six]
    assert [p["id"] for p in people.find(engine, name="carol cartwright", postcode="ST162JU")] == [six]
    assert [p["id"] for p in people.find(engine, source_key="P-003")] == [six]
    doc = people.export(engine, [six])
    assert doc["assets"][0]["email"] == "carol@example.org" and doc["assets"][0]["consent_wording"] == "v2"
    assert len(doc["quarantine"]) == 1 and doc["import_reports"][0]["value"] == "carol@example.org"
    json.dumps(doc)  # JSON all the way
    done = people.erase(engine, [six], reason="erasure request", actor="admin@example.org")
    assert done["erased"] == [six] and done["quarantine_rows"] == 1 and done["report_rows"] == 1
    with engine.connect() as conn:
        held = json.dumps([list(map(str, r)) for r in conn.execute(text(
            "SELECT a.*, (SELECT json_agg(q) FROM quarantine q), (SELECT json_agg(report) FROM registers) "
            "FROM assets a WHERE a.id = :i"), {"i": six})])
    assert not [s for s in SECRETS if s in held]
    assert "erasure request" in held and "E07000197" in held
    # Audited: find, export and erase, with ids and counts but none of her data.
    logged = _audit_text(engine)
    assert all(a in logged for a in ("person-find", "person-export", "person-erase")) and str(six) in logged
    assert not [s for s in SECRETS if s in logged]
    # She no longer counts anywhere, and the others are untouched.
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM assets WHERE tier = 'individual' AND erased_at IS NULL")) \
            .scalar() == 5


def test_erasing_somebody_who_does_not_exist_says_so_and_changes_nothing(engine, six):  # noqa: F811
    with pytest.raises(NotFound, match="999999"):
        people.erase(engine, [six, 999999], reason="x", actor="t")
    assert people.export(engine, [six])["assets"][0]["name"] == "Carol Cartwright"
    with pytest.raises(NotFound):
        with engine.begin() as conn:
            people.erase_person(conn, 999999, "withdraw link", "form")


def test_a_half_done_erasure_is_rolled_back(engine, six, monkeypatch):  # noqa: F811
    def boom(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(people, "_erase_from_reports", boom)
    with pytest.raises(RuntimeError):
        people.erase(engine, [six], reason="x", actor="t")
    doc = people.export(engine, [six])
    assert doc["assets"][0]["email"] == "carol@example.org" and len(doc["quarantine"]) == 1


def test_the_cli(engine, six, ref_db, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", ref_db)
    runner = CliRunner()
    found = runner.invoke(cli, ["people", "find", "--email", "carol@example.org"])
    assert found.exit_code == 0 and f"{six}" in found.output and "people  row 4" in found.output
    out = tmp_path / "sar.json"
    assert runner.invoke(cli, ["people", "export", str(six), "-o", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["assets"][0]["phone"] == "01785 100003"
    missing = runner.invoke(cli, ["people", "erase", "424242", "--reason", "r", "--yes"])
    assert missing.exit_code != 0 and "No individual to erase with id 424242" in missing.output
    erased = runner.invoke(cli, ["people", "erase", str(six), "--reason", "request", "--yes"])
    assert erased.exit_code == 0 and "erased 1 individual(s): 1 quarantined row(s)" in erased.output
    again = runner.invoke(cli, ["people", "find", "--email", "carol@example.org"])
    assert "Nobody found." in again.output


def test_the_admin_pages(engine, six, ref_db, tmp_path):  # noqa: F811
    app = make_app(ref_db, tmp_path)
    assert signed_in_client(app, engine, "officer").get("/admin/people").status_code == 403
    admin = signed_in_client(app, engine, "admin")
    page = admin.post("/admin/people", data={"csrf_token": csrf_token(admin), "email": "carol@example.org"})
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and f'value="{six}"' in body and "Carol" not in body
    sar = admin.post("/admin/people/export", data={"csrf_token": csrf_token(admin), "asset_id": str(six)})
    assert sar.status_code == 200 and sar.get_json()["assets"][0]["name"] == "Carol Cartwright"
    refused = admin.post("/admin/people/erase", data={"csrf_token": csrf_token(admin), "asset_id": str(six),
                                                      "reason": "request"})
    assert refused.status_code == 400  # not confirmed
    done = admin.post("/admin/people/erase", data={"csrf_token": csrf_token(admin), "asset_id": str(six),
                                                   "reason": "request", "confirm": "yes"}, follow_redirects=True)
    assert "Erased 1 individual(s)" in done.get_data(as_text=True)
    assert people.export(engine, [six])["assets"][0]["name"] == ""
    assert admin.post("/admin/people/erase", data={"asset_id": str(six)}).status_code == 400  # no CSRF token


def test_retention_removes_what_is_older_than_the_settings(engine, six, tmp_path):  # noqa: F811
    settings = load_settings({"RETAIN_QUARANTINE_DAYS": 30, "RETAIN_REPORTS_DAYS": 30, "RETAIN_WITHDRAWN_DAYS": 30})
    with engine.begin() as conn:
        conn.execute(text("UPDATE quarantine SET created_at = now() - interval '40 days'"))
        conn.execute(text("UPDATE registers SET imported_at = now() - interval '40 days'"))
        conn.execute(text("UPDATE assets SET withdrawn_at = now() - interval '40 days' WHERE id = :i"), {"i": six})
    assert retention.apply(engine, settings, dry_run=True)["quarantine_rows"] == 1
    removed = retention.apply(engine, settings, actor="cron")
    assert removed == {"quarantine_rows": 1, "import_reports_trimmed": 1, "withdrawn_assets_deleted": 0,
                       "withdrawn_individuals_erased": 1, "access_counts": 0}
    assert retention.apply(engine, settings, actor="cron")["quarantine_rows"] == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM quarantine")).scalar() == 0
        assert conn.execute(text("SELECT report->'problems' FROM registers")).scalar() == []
        assert conn.execute(text("SELECT erased_reason FROM assets WHERE id = :i"), {"i": six}).scalar() \
            .startswith("retention")
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'retention'")).scalar() == 2
