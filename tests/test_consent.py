"""The consent lifecycle of the importer: a person whose consent is withdrawn, refused or missing in a new version of
a register (or who is absent from it) is erased in the import's transaction; quarantine and reports never keep an
individual's personal fields."""

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from asset_map.config import load_settings
from asset_map.privacy import PERSONAL_FIELDS
from asset_map.registers import importer
from asset_map.store.db import make_engine


DATA = Path(__file__).parent / "data"
SIX = DATA / "individuals_stafford.csv"
WITHDRAWN = DATA / "individuals_stafford_withdrawn.csv"
NAMES = ["Alice Ardent", "Bob Brightwater", "Carol Cartwright", "Dev Dhaliwal", "Erin Ellsworth", "Frank Fairweather"]


@pytest.fixture
def engine(ref_db):  # noqa: F811 - the fixture above
    eng = make_engine(ref_db, load_settings())
    yield eng
    eng.dispose()


def _people(engine):
    with engine.connect() as conn:
        return {i: dict(r) for i, r in enumerate(conn.execute(text(
            "SELECT id, source_row, name, email, phone, description, offers, properties, geom, postcode, consent, "
            "consent_at, consent_source, consent_wording, district_code, lsoa21_code, erased_at, erased_reason, "
            "withdrawn_at, tier, register FROM assets WHERE tier = 'individual' ORDER BY source_row")).mappings(), 1)}


def _write(tmp_path, name, text_):
    path = tmp_path / name
    path.write_text(text_, encoding="utf-8")
    return path


def test_six_consenting_people_are_stored_with_their_consent_record(engine):
    report = importer.import_register(engine, SIX, register="people")
    assert report.imported == 6 and report.quarantined == 0
    people = _people(engine)
    assert [p["name"] for p in people.values()] == NAMES
    assert {p["district_code"] for p in people.values()} == {"E07000197"}
    first = people[1]
    assert first["consent"] is True
    assert str(first["consent_at"]) == "2025-03-01"
    assert first["consent_source"] == "register people row 2"  # the file's line, after its header
    assert first["consent_wording"] == "v2"


def test_withdrawn_consent_erases_the_person_in_the_same_import(engine):
    importer.import_register(engine, SIX, register="people")
    before = _people(engine)
    report = importer.import_register(engine, WITHDRAWN, register="people")
    assert report.erased == 1
    after = _people(engine)
    frank = after[6]
    assert frank["id"] == before[6]["id"], "the asset keeps its id"
    assert frank["erased_at"] is not None and "withdrawn" in frank["erased_reason"]
    assert (frank["register"], frank["tier"], frank["district_code"]) == ("people", "individual", "E07000197")
    for field in ("email", "phone", "description", "geom", "postcode", "lsoa21_code"):
        assert frank[field] is None, field
    assert frank["name"] == "" and frank["offers"] == [] and frank["properties"] == {}
    assert frank["consent"] is False
    # The other five are untouched.
    assert [after[r]["name"] for r in range(1, 6)] == NAMES[:5]
    with engine.connect() as conn:
        quarantined = conn.execute(text("SELECT row, problems FROM quarantine WHERE register = 'people'")).all()
        saved = conn.execute(text("SELECT report::text FROM registers WHERE name = 'people'")).scalar()
        events = conn.execute(text("SELECT details::text FROM audit_log "
                                   "WHERE action = 'consent-erase'")).scalars().all()
    # The withdrawn row is quarantined with its reason, without its personal cells.
    assert len(quarantined) == 1
    row, problems = quarantined[0]
    assert "withdrew consent" in json.dumps(problems)
    for field in PERSONAL_FIELDS:
        assert row["fields"].get(field, "") in ("", None), field
    dumped = json.dumps(row) + saved + "".join(events)
    for secret in ("Frank", "frank@example.org", "01785 100006", "ST17 4DQ", "support groups"):
        assert secret not in dumped
    assert len(events) == 1 and str(frank["id"]) in events[0]


@pytest.mark.parametrize("spelling", ["N", "", "Consent withdrawn"])  # every spelling: tests/test_privacy.py
def test_every_no_spelling_erases(engine, tmp_path, spelling):
    importer.import_register(engine, SIX, register="people")
    text_ = SIX.read_text(encoding="utf-8").replace(",Yes,2025-03-06", f",{spelling},2025-03-06")
    report = importer.import_register(engine, _write(tmp_path, "v2.csv", text_), register="people")
    assert report.erased == 1
    assert _people(engine)[6]["erased_at"] is not None


def test_an_absent_person_is_erased(engine, tmp_path):
    importer.import_register(engine, SIX, register="people")
    lines = SIX.read_text(encoding="utf-8").splitlines()
    report = importer.import_register(engine, _write(tmp_path, "v2.csv", "\n".join(lines[:-1]) + "\n"),
                                      register="people")
    assert report.erased == 1
    frank = _people(engine)[6]
    assert frank["erased_at"] is not None and "absent" in frank["erased_reason"] and frank["email"] is None


def test_an_unknown_consent_value_is_quarantined_without_personal_fields(engine, tmp_path):
    text_ = SIX.read_text(encoding="utf-8").replace(",Yes,2025-03-06", ",ask my daughter,2025-03-06")
    report = importer.import_register(engine, _write(tmp_path, "v1.csv", text_), register="people")
    assert report.imported == 5 and report.quarantined == 1
    with engine.connect() as conn:
        row, problems = conn.execute(text("SELECT row, problems FROM quarantine")).one()
    assert "not a recognised answer" in json.dumps(problems)
    assert row["fields"]["name"] == "" and row["fields"]["email"] == "" and row["properties"] == {}
    assert row["fields"]["consent"] == "ask my daughter" and row["fields"]["tier"] == "individual"


def test_a_failed_import_erases_nobody(engine, monkeypatch):
    importer.import_register(engine, SIX, register="people")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer.duplicates, "cross_register_duplicates", boom)
    with pytest.raises(RuntimeError):
        importer.import_register(engine, WITHDRAWN, register="people")
    assert _people(engine)[6]["name"] == "Frank Fairweather"


def test_a_register_without_consent_dates_keeps_the_first_date_and_is_unchanged_on_reimport(engine, tmp_path):
    lines = SIX.read_text(encoding="utf-8").splitlines()
    undated = "\n".join([lines[0].replace(",consent_date,consent_wording", "")] +
                        [line.rsplit(",", 2)[0] for line in lines[1:]]) + "\n"
    path = _write(tmp_path, "undated.csv", undated)
    importer.import_register(engine, path, register="people")
    with engine.begin() as conn:
        conn.execute(text("UPDATE assets SET consent_at = DATE '2024-01-01'"))
    again = importer.import_register(engine, path, register="people")
    assert again.unchanged == 6 and again.updated == 0
    assert {str(p["consent_at"]) for p in _people(engine).values()} == {"2024-01-01"}
