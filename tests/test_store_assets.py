"""The shared asset filter, the privacy rule per role, and the idempotent bulk write."""

import geopandas as gpd
import pytest
from shapely.geometry import Point
from sqlalchemy import text
from werkzeug.datastructures import MultiDict

from asset_map.errors import InputError
from asset_map.store import assets
from asset_map.store.assets import AssetFilter


def frame(rows):
    base = {c: None for c in assets.WRITE_COLUMNS}
    base.update(register="test", status="open", visibility="public", consent=True, offers="", properties="{}")
    records = [{**base, **r} for r in rows]
    for r in records:
        r["match_key"] = r.get("match_key") or r["name"].lower()
    geoms = [Point(r.pop("lon"), r.pop("lat")) for r in records]
    return gpd.GeoDataFrame(records, geometry=geoms, crs=4326)


ROWS = [
    dict(name="Tamworth Library", tier="organisation", category="library", offers="buildings/space;knowledge",
         email="lib@example.org", district_code="E07000199", lsoa21_code="E01029820", lon=-1.69, lat=52.63,
         last_verified="2026-06-01"),
    dict(name="Glascote Youth Club", tier="association", category="youth_club", offers="time",
         district_code="E07000199", lon=-1.67, lat=52.62, last_verified="2023-01-01"),
    dict(name="Closed Hall", tier="association", category="community_centre", status="closed",
         district_code="E07000199", lon=-1.68, lat=52.62),
    dict(name="Secret Shelter", tier="organisation", category="voluntary_organisation", visibility="restricted",
         district_code="E07000199", lon=-1.70, lat=52.64),
    *[dict(name=f"Volunteer {i}", tier="individual", category="volunteer", email=f"v{i}@example.org",
           district_code="E07000199", lsoa21_code="E01029820" if i < 6 else "E01029821", lon=-1.69, lat=52.63)
      for i in range(8)],
]


@pytest.fixture
def loaded(engine):
    with engine.begin() as conn:
        assets.ensure_register(conn, "test")
        assert assets.upsert(conn, frame(ROWS)) == len(ROWS)
    return engine


def names(gdf):
    return sorted(gdf["name"])


def test_public_sees_no_individuals_restricted_or_closed_and_no_email(loaded):
    public = assets.select(loaded, AssetFilter())
    assert names(public) == ["Glascote Youth Club", "Tamworth Library"]
    assert "email" not in public.columns
    officer = assets.select(loaded, AssetFilter(), role="officer")
    assert len(officer) == 11 and "email" in officer.columns


def test_individuals_are_counted_with_small_numbers_suppressed(loaded):
    """The protected table of asset_map.disclosure (issue 12): every area listed, 6 rounded to 5, 1 suppressed, and
    an area with nobody looks like one with a few."""
    with loaded.begin() as conn:
        for code in ("E01029820", "E01029821", "E01029822"):
            conn.execute(text("INSERT INTO areas (code, name, vintage, district_code, geom) VALUES (:c, :n, 2021, "
                              "'E07000199', ST_Multi(ST_MakeEnvelope(-1.8, 52.5, -1.6, 52.7, 4326)))"),
                         {"c": code, "n": f"Tamworth {code}"})
    counts = dict((code, label) for code, _, label in assets.individual_counts(loaded))
    assert counts == {"E01029820": "5", "E01029821": "fewer than 5", "E01029822": "fewer than 5"}


def test_filters(loaded):
    def run(**args):
        return names(assets.select(loaded, AssetFilter.from_args(MultiDict(args)), role="officer"))

    assert run(tier="association", status="all") == ["Closed Hall", "Glascote Youth Club"]
    assert run(offer="knowledge") == ["Tamworth Library"]
    assert run(q="youth") == ["Glascote Youth Club"]
    assert run(verified_within="12", tier="organisation,association") == ["Tamworth Library"]
    assert run(bbox="-1.675,52.61,-1.66,52.625") == ["Glascote Youth Club"]
    assert run(district="E07000198") == []


@pytest.mark.parametrize("args, message", [
    ({"tier": "people"}, "Parameter 'tier' has value 'people'"),
    ({"district": "Tamworth'; DROP TABLE assets;--"}, "expected an ONS code"),
    ({"bbox": "1,2,3"}, "four numbers"),
    ({"verified_within": "soon"}, "whole number of months"),
    ({"updated_since": "yesterday"}, "ISO 8601"),
])
def test_bad_parameters_are_clear_errors(args, message):
    with pytest.raises(InputError, match=message):
        AssetFilter.from_args(MultiDict(args))


def test_rewriting_changes_nothing_and_keeps_updated_at(loaded):
    with loaded.connect() as conn:
        before = conn.execute(text("SELECT id, updated_at FROM assets ORDER BY id")).all()
    with loaded.begin() as conn:
        assets.upsert(conn, frame(ROWS))
    with loaded.connect() as conn:
        after = conn.execute(text("SELECT id, updated_at FROM assets ORDER BY id")).all()
        props = conn.execute(text("SELECT offers FROM assets WHERE name = 'Tamworth Library'")).scalar()
    assert after == before
    assert props == ["buildings/space", "knowledge"]
    assert AssetFilter.from_args(MultiDict({"tier": "individual", "q": "a,b"})).as_args() == {
        "tier": "individual", "q": "a,b"}


def test_offers_are_trimmed_and_blank_text_is_stored_as_null(engine):
    rows = [dict(name="Hall", tier="association", category="community_centre", offers=" time ;  skills; ",
                 description="", address=None, district_code="E07000199", lon=-1.69, lat=52.63)]
    with engine.begin() as conn:
        assets.ensure_register(conn, "test")
        assets.upsert(conn, frame(rows))
    with engine.connect() as conn:
        offers, description, address = conn.execute(text(
            "SELECT offers, description, address FROM assets WHERE name = 'Hall'")).one()
    assert offers == ["time", "skills"]
    assert description is None and address is None
