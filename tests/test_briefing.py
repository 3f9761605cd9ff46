"""Briefings for any area: what they hold (individuals only as a protected count, never named), the A4 HTML and
PDF (reproducible, looked at as PNG), the web pages and the batch command."""

import subprocess
from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from asset_map.briefing import batch, data, render
from asset_map.cli import cli
from asset_map.config import load_settings
from asset_map.store import assets as store_assets
from tests.accounts import signed_in_client
from tests.conftest import make_app

TODAY = date(2026, 11, 30)
INDIVIDUALS = ("Alex Volunteer", "Sam Skills", "Jo Mentor")


def _settings(**extra):
    return load_settings({"SUPPRESS_BELOW": 5, **extra})


@pytest.fixture(scope="module")
def shared_public(geo_db):
    from tests.conftest import engine_over

    with engine_over(geo_db[0]) as eng:
        yield data.county(eng, _settings(), role="public", today=TODAY, since=date(2026, 1, 1))


def test_briefing_holds_the_area_and_no_individual(geo_engine, shared_public):
    b = data.build(geo_engine, shared_public, "pilot-neighbourhoods", "PN-01")
    assert b["name"] == "Tamworth town centre" and b["districts"] == [("E07000199", "Tamworth")]
    assert dict((t, n) for t, _, n in b["tiers"]) == {"association": 4, "organisation": 4}
    assert ("organisation", "Library", 1) in b["categories"]
    # Three consenting individuals live in the area: shown only as the protected count.
    assert b["individuals"] == "fewer than 5"
    # The attack: the names are in the store and an officer's own query of the area returns them...
    officer_view = store_assets.select(geo_engine, store_assets.AssetFilter(area=("pilot-neighbourhoods:PN-01",)),
                                       role="officer")
    assert set(INDIVIDUALS) <= set(officer_view["name"])
    # ...but no briefing lists them, whoever reads it.
    officer = data.build(geo_engine, data.County(**{**shared_public.__dict__, "role": "officer"}),
                         "pilot-neighbourhoods", "PN-01")
    html = render.briefing_html(officer, b"png")
    assert not any(name in html for name in INDIVIDUALS)
    assert "fewer than 5" in html
    # Need against the county: shares of residents by decile sum to one on both sides.
    assert abs(sum(r["area"] for r in b["need_rows"]) - 1) < 1e-9
    assert abs(sum(r["county"] for r in b["need_rows"]) - 1) < 1e-9
    assert b["need"]["weighted_by"] == "residents" and "areal weighting" in b["need"]["method"]
    # Freshness: the fixture register's dates (T06 2023, T03 2024 are stale; the library never verified).
    assert b["freshness"]["assets"] == 8 and b["freshness"]["never"] == 1
    assert b["freshness"]["stale_count"] == 3
    assert b["stale"] == []  # the public sees the share, not which records
    councillor = data.build(geo_engine, data.County(**{**shared_public.__dict__, "role": "councillor"}),
                            "pilot-neighbourhoods", "PN-01")
    assert [s["name"] for s in councillor["stale"]] == ["Tamworth Library", "Tamworth Food Bank",
                                                      "Tamworth Walking Football"]
    # From the assets' history: every asset was imported (version 1) after 1 January 2026.
    assert b["changes"]["counts"] == {"new": 8, "changed": 0, "closed": 0}
    assert b["suggestions"]["total"] == 0
    assert any(r["kind"] == "need" for r in b["vintages"]["reference_loads"])


def test_suggestions_inside_the_area_are_counted(geo_engine, shared_public):
    with geo_engine.begin() as conn:
        conn.execute(text("INSERT INTO suggestions (kind, name, status, geom) VALUES "
                          "('new', 'Knitting circle', 'waiting', ST_SetSRID(ST_MakePoint(-1.6946, 52.6335), 4326)), "
                          "('new', 'Far away', 'waiting', ST_SetSRID(ST_MakePoint(-2.1, 52.8), 4326))"))
    try:
        b = data.build(geo_engine, shared_public, "pilot-neighbourhoods", "PN-01")
        assert b["suggestions"]["total"] == 1 and b["suggestions"]["waiting"] == 1
        html = render.briefing_html(b, b"png")
        assert "Community suggestions made here: 1 (1 waiting" in html and "Knitting circle" not in html
    finally:
        with geo_engine.begin() as conn:
            conn.execute(text("DELETE FROM suggestions WHERE name IN ('Knitting circle', 'Far away')"))


def test_pdf_is_reproducible_and_looks_right(geo_engine, shared_public, artifacts, tmp_path):
    first = batch.document(geo_engine, shared_public, "pilot-neighbourhoods", "PN-01")
    again = batch.document(geo_engine, shared_public, "pilot-neighbourhoods", "PN-01")
    assert first.pdf.startswith(b"%PDF") and first.pdf == again.pdf and first.png == again.png
    path = artifacts / "briefing-PN-01.pdf"
    path.write_bytes(first.pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Tamworth town centre: briefing" in text and "Page 2" in text
    assert "Priority gaps" in text and "Contains OS data" in text
    assert not any(name in text for name in INDIVIDUALS)
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    assert "DejaVu-Sans" in fonts and all(" yes yes " in line for line in fonts.splitlines()[2:])  # embedded
    subprocess.run(["pdftoppm", "-r", "70", "-png", str(path), str(artifacts / "briefing-PN-01")], check=True)
    assert (artifacts / "briefing-PN-01-1.png").stat().st_size > 20_000


def test_batch_command_writes_every_area_with_an_index(geo_db, tmp_path):
    env = {"ASSET_MAP_DATABASE_URL": geo_db[0], "ASSET_MAP_VAR_DIR": str(tmp_path)}
    out = tmp_path / "out"
    args = ["briefing", "--geography", "pilot-neighbourhoods", "--all", "-o", str(out), "--as-of", "2026-11-30",
            "--format", "pdf", "--format", "html", "--quiet"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "1 briefings written" in result.output
    assert (out / "pilot-neighbourhoods-PN-01.pdf").read_bytes().startswith(b"%PDF")
    assert "Tamworth town centre: briefing" in (out / "pilot-neighbourhoods-PN-01.html").read_text()
    assert (out / "index.csv").read_text().splitlines()[1].startswith("pilot-neighbourhoods,PN-01,Tamworth town")
    bad = CliRunner().invoke(cli, ["briefing", "--geography", "divisions", "--area", "NOPE", "-o", str(out)], env=env)
    assert bad.exit_code == 1 and "has no area NOPE" in bad.output


def test_web_pages(geo_db, geo_engine, tmp_path):
    app = make_app(geo_db[0], tmp_path)
    client = app.test_client()
    page = client.get("/briefings/pilot-neighbourhoods/PN-01?since=2026-01-01")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Tamworth town centre: briefing" in html
    assert "Signed-in councillors and officers see which records are stale" in html
    assert not any(name in html for name in INDIVIDUALS)
    pdf = client.get("/briefings/divisions/D057/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    printable = client.get("/briefings/pilot-neighbourhoods/PN-01/print")
    nonce = printable.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<style nonce="{nonce}">' in printable.get_data(as_text=True)
    assert client.get("/briefings/pilot-neighbourhoods/PN-01?since=soon").status_code == 400
    assert client.get("/briefings/divisions/NOPE").status_code == 404
    councillor = signed_in_client(app, geo_engine, "councillor")
    html = councillor.get("/briefings/pilot-neighbourhoods/PN-01").get_data(as_text=True)
    assert "Tamworth Food Bank" in html and "Not verified for over 12 months" in html
    listing = client.get("/geographies/divisions").get_data(as_text=True)
    assert "D057" in listing and "area=divisions:D057" in listing
    # Area lists count what the reader may see: 8 for the public, 11 with the 3 individuals for an officer, so
    # the public count cannot reveal how many individuals live in a small drawn area.
    from asset_map.store import geographies

    assert [a["assets"] for a in geographies.areas(geo_engine, "pilot-neighbourhoods", role="officer")
            if a["code"] == "PN-01"] == [11]
    public = client.get("/geographies/pilot-neighbourhoods").get_data(as_text=True)
    row = public.split(">PN-01<")[1].split("</tr>")[0]
    assert ">8<" in row and ">11<" not in row


def test_the_county_part_is_kept_per_role_until_the_data_changes(geo_db, geo_engine, tmp_path, monkeypatch):
    """Every briefing shares the county's gap analysis: the web reads it once per role and day while the data
    stands, and again after a write; a councillor never gets the public's (the stale list differs by role)."""
    app = make_app(geo_db[0], tmp_path)
    made = []
    real = data.county
    monkeypatch.setattr(data, "county", lambda *a, **k: made.append(k["role"]) or real(*a, **k))
    client = app.test_client()
    for path in ("/briefings/pilot-neighbourhoods/PN-01", "/briefings/pilot-neighbourhoods/PN-01/print"):
        assert client.get(path).status_code == 200
    councillor = signed_in_client(app, geo_engine, "councillor")
    html = councillor.get("/briefings/pilot-neighbourhoods/PN-01").get_data(as_text=True)
    assert "Not verified for over 12 months" in html and made == ["public", "councillor"]
    with geo_engine.begin() as conn:
        conn.execute(text("UPDATE assets SET last_verified = CURRENT_DATE WHERE name = 'Tamworth Food Bank'"))
    assert client.get("/briefings/pilot-neighbourhoods/PN-01").status_code == 200
    assert made == ["public", "councillor", "public"]
