"""The import command, quarantine and layer listings, the GeoJSON export and the register pages, as a user runs them."""

import json

import pytest
from click.testing import CliRunner

from asset_map.cli import cli
from asset_map.config import load_settings
from asset_map.store.db import make_engine
from tests.accounts import signed_in_client
from tests.conftest import make_app


@pytest.fixture
def runner(ref_db, monkeypatch):
    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", ref_db)
    return CliRunner()


def test_import_command_report_layers_export_and_pages(runner, pack, tmp_path, ref_db):
    result = runner.invoke(cli, ["import", str(pack / "registers" / "libraries_stoke.csv"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "libraries_stoke: 22 rows read, 22 imported" in result.output
    halls = tmp_path / "halls.csv"
    halls.write_text("Hall,Kind,PC\nHall One,<script>alert(1)</script>,ST4 4SZ\nStoke Hall,village hall,ST4 4SZ\n")
    result = runner.invoke(cli, ["import", str(halls), "--register", "halls", "--map", "name=Hall",
                                 "--map", "category=Kind", "--map", "postcode=PC"])
    assert result.exit_code == 0, result.output
    assert "1 imported" in result.output and "1 quarantined" in result.output
    assert "row 2: error: category '<script>alert(1)</script>': unknown category" in result.output
    result = runner.invoke(cli, ["quarantine", "list", "halls"])
    assert "halls row 2 'Hall One': category '<script>alert(1)</script>'" in result.output
    assert "1 quarantined rows" in result.output
    result = runner.invoke(cli, ["layers", "list", "--by-category"])
    assert "organisation/E06000021/library" in result.output and "organisation/E06000021/community_centre" \
        in result.output
    out = tmp_path / "assets.geojson"
    result = runner.invoke(cli, ["export", "assets", "--format", "geojson", "-o", str(out)])
    assert result.exit_code == 0, result.output
    features = json.loads(out.read_text())["features"]
    # Closed libraries are not in the default layer; the open ones and the hall are, with their area codes.
    assert len(features) == 9
    assert all(f["properties"]["district_code"] == "E06000021" and f["properties"]["lsoa21_code"]
               for f in features)

    app = make_app(ref_db, tmp_path)
    assert app.test_client().get("/registers").status_code == 302  # officers only: anonymous users sign in first
    engine = make_engine(ref_db, load_settings())
    client = signed_in_client(app, engine, "officer")
    engine.dispose()
    page = client.get("/registers")
    assert page.status_code == 200 and b"libraries_stoke" in page.data and b"halls" in page.data
    page = client.get("/registers/halls")
    assert page.status_code == 200
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page.data
    assert b"<script>alert(1)</script>" not in page.data
    assert b"unknown category" in page.data
    assert client.get("/registers/nope").status_code == 404


def test_failed_import_exits_non_zero_with_one_line(runner, tmp_path):
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x00\x01\x02" * 1000)
    result = runner.invoke(cli, ["import", str(junk), "--register", "junk"])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and result.output.startswith("error: junk.csv: this is not a text CSV")
    result = runner.invoke(cli, ["import", "--retry", "never-imported"])
    assert result.exit_code == 1 and "No register named 'never-imported'" in result.output


def test_register_pages_with_personal_data_are_for_officers_only(ref_db, tmp_path):
    from asset_map.registers import importer

    people = tmp_path / "people.csv"
    people.write_text("name,category,postcode,consent,email\nAlex Smith,volunteer,ST4 4SZ,yes,alex at home\n"
                      "Sam Jones,volunteer,ST4 4SZ,,\n")
    engine = make_engine(ref_db, load_settings())
    report = importer.import_register(engine, people, register="people")
    assert report.personal and report.quarantined == 1
    app = make_app(ref_db, tmp_path)
    anonymous = app.test_client().get("/registers/people")
    assert anonymous.status_code == 302 and b"alex at home" not in anonymous.data
    page = signed_in_client(app, engine, "officer").get("/registers/people")
    engine.dispose()
    assert page.status_code == 200 and b"consent" in page.data and b"not an email address" in page.data


def test_duplicates_are_counted_in_the_report_and_listed_in_full_as_csv(runner, pack, tmp_path, ref_db, monkeypatch):
    from asset_map.registers import import_report as report_module

    monkeypatch.setattr(report_module, "DUPLICATES_KEPT", 5)
    stoke = pack / "registers" / "libraries_stoke.csv"
    assert runner.invoke(cli, ["import", str(stoke), "--quiet"]).exit_code == 0
    result = runner.invoke(cli, ["import", str(stoke), "--register", "stoke_again"])
    assert result.exit_code == 0, result.output
    # Every library of the second copy is one of the first: all counted, the first five listed.
    assert "possible duplicates in other registers (22: " in result.output
    assert result.output.count(" ~ libraries_stoke row ") == 5
    assert "... and 17 more (asset-map duplicates stoke_again)" in result.output

    result = runner.invoke(cli, ["duplicates", "stoke_again"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "source_row,name,other_register,other_row,other_name,reason"
    assert len(lines) == 23 and all(",libraries_stoke," in line for line in lines[1:])
    out = tmp_path / "dups.csv"
    result = runner.invoke(cli, ["duplicates", "stoke_again", "-o", str(out)])
    assert result.exit_code == 0 and "22 possible duplicates" in result.output
    assert out.read_text(encoding="utf-8-sig").splitlines() == lines
    result = runner.invoke(cli, ["duplicates", "never-imported"])
    assert result.exit_code == 1 and "No register named 'never-imported'" in result.output

    app = make_app(ref_db, tmp_path)
    engine = make_engine(ref_db, load_settings())
    client = signed_in_client(app, engine, "officer")
    engine.dispose()
    page = client.get("/registers/stoke_again")
    assert page.status_code == 200
    assert b"Possible duplicates in other registers (22)" in page.data and b"The first 5 found" in page.data
    assert b"/registers/stoke_again/duplicates.csv" in page.data
    csv = client.get("/registers/stoke_again/duplicates.csv")
    assert csv.status_code == 200 and csv.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert csv.data.decode("utf-8-sig").splitlines() == lines
    assert client.get("/registers/nope/duplicates.csv").status_code == 404
