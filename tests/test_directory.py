"""The printable local directory: near a library (an asset) or a postcode, or inside an area; large type on at most
two A4 pages; associations and organisations only; contact details as the printing role may see them."""

import subprocess

import pytest
from sqlalchemy import text

from asset_map.briefing import directory
from asset_map.config import load_settings
from asset_map.errors import InputError
from tests.conftest import make_app

INDIVIDUALS = ("Alex Volunteer", "Sam Skills", "Jo Mentor")


def _library(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM assets WHERE name = 'Tamworth Library'")).scalar()


def test_within_a_mile_of_a_library(geo_engine, artifacts):
    where = directory.Where.parse(asset=_library(geo_engine), miles=1)
    doc = directory.document(geo_engine, load_settings(), where, role="organiser")
    assert doc.place == "Tamworth Library" and doc.listed == doc.total >= 8
    assert "What&#39;s on within 1 mile of Tamworth Library" in doc.html
    assert "Castle Youth Club" in doc.html and "youth@example.org" in doc.html
    assert not any(name in doc.html for name in INDIVIDUALS)
    path = artifacts / "directory-tamworth-library.pdf"
    path.write_bytes(doc.pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert 1 <= pages <= 2
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(path), str(artifacts / "directory-tamworth-library")],
                   check=True)


def test_public_print_has_no_phone_or_email(geo_engine):
    # The store's contact rule: phone and e-mail for organisers and above. The same directory printed by the
    # public (e.g. a noticeboard volunteer not signed in) keeps addresses and websites only.
    doc = directory.document(geo_engine, load_settings(), directory.Where.parse(postcode="B79 7DN", miles=1))
    assert "Castle Youth Club" in doc.html and "https://example.org/castle-youth" in doc.html
    assert "youth@example.org" not in doc.html and "01827 000001" not in doc.html


def test_in_an_area_and_bad_requests(geo_db, geo_engine, tmp_path):
    doc = directory.document(geo_engine, load_settings(),
                             directory.Where.parse(area="pilot-neighbourhoods:PN-01"))
    assert doc.place == "Tamworth town centre (Pilot neighbourhoods)" and doc.total == 8
    with pytest.raises(InputError, match="exactly one"):
        directory.Where.parse(postcode="B79 7DN", asset=1)
    with pytest.raises(InputError, match="between 0.1 and 10"):
        directory.Where.parse(postcode="B79 7DN", miles=50)
    client = make_app(geo_db[0], tmp_path).test_client()
    response = client.get("/directory/pdf?postcode=B79+7DN&miles=0.5")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert client.get("/directory/pdf?postcode=B79+7DN&asset=3").status_code == 400
