"""Assets one at a time (create, edit, verify, close, withdraw) with history, optimistic locking, overrides that
survive re-imports (and show conflicts), and rollback of a register to the state after an earlier import: on the
pack's real library register, in a fresh copy of the pack database."""

import shutil
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from asset_map.config import load_settings
from asset_map.errors import Forbidden
from asset_map.registers import edits, importer
from asset_map.store import history
from tests.conftest import copied_pack, engine_over

FILE = "libraries_staffordshire.csv"


@pytest.fixture(scope="module")
def engine(pg_server, pack_db):
    """One copy of the pack database for the module: each test imports its own register (named after the test)."""
    with copied_pack(pg_server, pack_db) as url, engine_over(url) as eng:
        yield eng


@pytest.fixture
def register_file(pack, tmp_path):
    path = tmp_path / FILE
    shutil.copy(pack / "registers" / FILE, path)
    return path


@pytest.fixture
def libs(request):
    """This test's register name."""
    return "libs_" + request.node.name.removeprefix("test_")[:40]


def _asset(engine, name, register=None):
    with engine.connect() as conn:
        return conn.execute(text("SELECT id, version, name, last_verified, status, withdrawn_at, register "
                                 "FROM assets WHERE name = :n AND register LIKE :r"),
                            {"n": name, "r": register or "%"}).mappings().one()


def _versions(engine, asset_id):
    with engine.connect() as conn:
        return history.versions(conn, asset_id)


def test_import_writes_one_version_per_asset_and_edits_add_versions(engine, register_file, libs):
    report = importer.import_register(engine, register_file, register=libs, actor="officer@example.org")
    with engine.connect() as conn:
        n_assets = conn.execute(text("SELECT count(*) FROM assets WHERE register = :libs"), {"libs": libs}).scalar()
        created = conn.execute(text("SELECT count(*) FROM asset_versions WHERE register = :libs AND version = 1 "
                                    "AND action = 'import' AND actor = 'officer@example.org'"),
                               {"libs": libs}).scalar()
        imports = history.imports(conn, libs)
    assert n_assets == report.imported == created
    assert imports[0]["counts"]["inserted"] == n_assets

    audley = _asset(engine, "Audley Library", libs)
    version, _ = edits.update_asset(engine, audley["id"], {"name": "Audley Community Library"},
                                    version=audley["version"], actor="a@example.org", reason="renamed in 2024")
    assert version == audley["version"] + 1
    latest = _versions(engine, audley["id"])[0]
    assert latest["action"] == "edit" and latest["actor"] == "a@example.org" and latest["reason"] == "renamed in 2024"
    assert latest["changes"]["name"] == ["Audley Library", "Audley Community Library"]
    with engine.connect() as conn:
        event = conn.execute(text("SELECT actor, details FROM audit_log WHERE action = 'asset-edit' "
                                  "AND target = :t"), {"t": f"asset:{audley['id']}"}).one()
    assert event.actor == "a@example.org" and event.details["fields"] == ["name"]


def test_a_stale_save_is_refused_with_what_changed(engine, register_file, libs):
    importer.import_register(engine, register_file, register=libs)
    a = _asset(engine, "Audley Library", libs)
    edits.update_asset(engine, a["id"], {"phone": "01782 720411"}, version=a["version"], actor="first@example.org")
    with pytest.raises(edits.StaleEdit) as err:
        edits.update_asset(engine, a["id"], {"name": "Somebody else's name"}, version=a["version"],
                           actor="second@example.org")
    assert err.value.status == 409
    assert "phone" in err.value.user_message and "first@example.org" in err.value.user_message
    assert _asset(engine, "Audley Library", libs)["name"] == "Audley Library"


def test_bad_edits_are_refused_with_the_reason_and_change_nothing(engine, register_file, libs):
    importer.import_register(engine, register_file, register=libs)
    a = _asset(engine, "Audley Library", libs)
    with pytest.raises(edits.EditRefused, match="did you mean"):
        edits.update_asset(engine, a["id"], {"category": "libary"}, version=a["version"], actor="x")
    with pytest.raises(edits.EditRefused, match="out of area"):
        edits.update_asset(engine, a["id"], {"lon": "-0.1276", "lat": "51.5072"}, version=a["version"], actor="x")
    with pytest.raises(edits.EditRefused, match="name is missing"):
        edits.update_asset(engine, a["id"], {"name": " "}, version=a["version"], actor="x")
    assert _asset(engine, "Audley Library", libs)["version"] == a["version"]
    assert len(_versions(engine, a["id"])) == 1


def test_organisers_change_associations_and_organisations_only(engine):
    with pytest.raises(Forbidden):
        edits.create_asset(engine, {"name": "Jo's knitting", "tier": "individual", "category": "skills",
                                    "postcode": "ST16 2LP"}, actor="o@example.org", role="organiser")
    with pytest.raises(Forbidden):
        edits.create_asset(engine, {"name": "Hall", "category": "community_centre", "postcode": "ST16 2LP"},
                           actor="anon", role="public")


def test_a_hand_made_asset_lives_in_its_districts_manual_register(engine):
    asset_id, _ = edits.create_asset(engine, {"name": "Rising Brook Community Centre", "category": "community_centre",
                                              "lon": "-2.1265", "lat": "52.7985"}, actor="o@example.org",
                                     role="organiser", reason="new")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT a.register, a.district_code, a.tier, r.kind FROM assets a "
                                "JOIN registers r ON r.name = a.register WHERE a.id = :i"), {"i": asset_id}).one()
    assert row.district_code == "E07000197" and row.register == "manual-E07000197" and row.kind == "manual"
    assert row.tier == "organisation"
    assert [v["action"] for v in _versions(engine, asset_id)] == ["create"]
    with pytest.raises(importer.InputError, match="made by hand"):
        importer.import_register(engine, edits.__file__, register="manual-E07000197")


def test_edits_survive_a_reimport_and_a_changed_register_value_is_a_conflict(engine, register_file, libs):
    importer.import_register(engine, register_file, register=libs)
    a = _asset(engine, "Audley Library", libs)
    edits.update_asset(engine, a["id"], {"name": "Audley Community Library"}, version=a["version"], actor="x")
    b = _asset(engine, "Barton Under Needwood Library", libs)
    edits.verify_asset(engine, b["id"], version=b["version"], actor="x")
    report = importer.import_register(engine, register_file, register=libs)
    assert report.withdrawn == 0
    assert _asset(engine, "Audley Community Library", libs)["version"] == a["version"] + 1
    assert _asset(engine, "Barton Under Needwood Library", libs)["last_verified"] == date.today()

    frame = pd.read_csv(register_file, dtype=str, keep_default_na=False)
    frame.loc[frame["Library name"] == "Audley Library", "Library name"] = "Audley Library and Hub"
    frame.to_csv(register_file, index=False)
    importer.import_register(engine, register_file, register=libs)
    assert _asset(engine, "Audley Community Library", libs)["id"] == a["id"]
    with engine.connect() as conn:
        conflict = conn.execute(text("SELECT conflict FROM asset_overrides WHERE asset_id = :i AND field = 'name' "
                                     "AND revoked_at IS NULL"), {"i": a["id"]}).scalar()
    assert conflict == "Audley Library and Hub"


def test_withdrawn_by_hand_stays_withdrawn_and_rollback_restores_an_earlier_import(engine, register_file, libs):
    importer.import_register(engine, register_file, register=libs)
    with engine.connect() as conn:
        first = history.imports(conn, libs)[0]["id"]
    a = _asset(engine, "Audley Library", libs)
    edits.update_asset(engine, a["id"], {"name": "Audley Community Library"}, version=a["version"], actor="x")
    b = _asset(engine, "Barton Under Needwood Library", libs)
    edits.withdraw_asset(engine, b["id"], version=b["version"], actor="x", reason="closed for good")
    importer.import_register(engine, register_file, register=libs)
    assert _asset(engine, "Barton Under Needwood Library", libs)["withdrawn_at"] is not None

    with engine.begin() as conn:
        counts = history.rollback(conn, libs, first, history.Stamp(actor="x", action="rollback"))
    assert counts["restored"] == 2
    restored = _asset(engine, "Audley Library", libs)
    assert restored["id"] == a["id"] and restored["version"] == a["version"] + 2
    assert _asset(engine, "Barton Under Needwood Library", libs)["withdrawn_at"] is None
    assert [v["action"] for v in _versions(engine, a["id"])] == ["rollback", "edit", "import"]
    # The rolled-back edit is no longer an override: the next import keeps the register's name.
    importer.import_register(engine, register_file, register=libs)
    assert _asset(engine, "Audley Library", libs)["version"] == a["version"] + 2


def test_erasure_removes_personal_values_from_the_history(engine, libs):
    asset_id, _ = edits.create_asset(engine, {"name": "Jo Bloggs (gardening)", "tier": "individual",
                                              "category": "skills", "lon": "-2.117", "lat": "52.806",
                                              "consent": "yes", "email": "jo@example.org"}, actor="o")
    version = edits.read(engine.connect(), asset_id)["version"]
    edits.update_asset(engine, asset_id, {"email": "jo.bloggs@example.org"}, version=version, actor="o")
    with engine.begin() as conn:
        history.erase(conn, asset_id, history.Stamp(actor="dpo@example.org", action="erase", reason="request"))
    with engine.connect() as conn:
        text_of_history = str(history.versions(conn, asset_id))
        actions = [v["action"] for v in history.versions(conn, asset_id)]
    assert "jo.bloggs@example.org" not in text_of_history and "jo@example.org" not in text_of_history
    assert actions == ["erase", "edit", "create"]


def test_rollback_restores_the_quarantine_that_import_left(engine, register_file, libs, tmp_path):
    from asset_map.registers import manage

    frame = pd.read_csv(register_file, dtype=str, keep_default_na=False)
    broken = tmp_path / "broken" / FILE   # the same name: the mapping in layers/mappings is found by it
    broken.parent.mkdir()
    bad = frame["Library name"] == "Audley Library"
    frame.loc[bad, "Postcode"], frame.loc[bad, "Unique property reference number"] = "not a postcode", ""
    frame.to_csv(broken, index=False)

    def quarantined():
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT row -> 'fields' ->> 'name' FROM quarantine WHERE register = :r"),
                                       {"r": libs}).scalars())

    first = importer.import_register(engine, broken, register=libs)
    left = quarantined()
    assert "Audley Library" in left and len(left) == first.quarantined
    with engine.connect() as conn:
        first_id = history.imports(conn, libs)[0]["id"]
    importer.import_register(engine, register_file, register=libs)
    assert "Audley Library" not in quarantined()

    counts = manage.rollback(engine, libs, first_id, actor="officer@example.org", reason="wrong file")
    assert quarantined() == left and counts["quarantine_restored"] == len(left)
    with engine.connect() as conn:
        audited = conn.execute(text("SELECT details FROM audit_log WHERE action = 'rollback' AND target = :r "
                                    "ORDER BY id DESC LIMIT 1"), {"r": libs}).scalar()
        kinds = [i["kind"] for i in history.imports(conn, libs)]
    assert audited["quarantine_restored"] == len(left)
    # A new state on top of the imports, which are all kept.
    assert kinds == ["rollback", "import", "import"]


def test_an_address_alone_is_placed_by_its_postcode_offline_and_refused_without_one(engine):
    from asset_map.registers.edits import EditRefused

    offline = load_settings() | {"GEOCODER": ""}
    asset_id, warnings = edits.create_asset(
        engine, {"name": "Rowley Hall Community Room", "category": "community_centre",
                 "address": "Rowley Avenue, Stafford st162lp"}, actor="o@example.org", settings=offline)
    assert "postcode ST16 2LP found in the address" in warnings[0]
    with engine.connect() as conn:
        row = conn.execute(text("SELECT postcode, geocode_method, district_code FROM assets WHERE id = :i"),
                           {"i": asset_id}).one()
    assert row.postcode == "ST16 2LP" and row.geocode_method.startswith("postcode") and row.district_code == \
        "E07000197"
    with pytest.raises(EditRefused, match="does not look up addresses.*Add the postcode, or place the point"):
        edits.create_asset(engine, {"name": "Somewhere Hall", "category": "community_centre",
                                    "address": "1 High Street, Stafford"}, actor="o@example.org",
                           settings=offline)
