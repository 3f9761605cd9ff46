"""Loading the real Staffordshire pack into PostGIS: counts, idempotence and all-or-nothing loads."""

import pytest
from sqlalchemy import text

from asset_map.errors import InputError
from asset_map.reference.load import load_areas, load_districts, load_need, load_postcodes

DISTRICTS = {"E07000192", "E07000193", "E07000194", "E07000195", "E07000196", "E07000197", "E07000198",
             "E07000199", "E06000021"}


def _scalar(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_pack_loads_districts_areas_need_and_postcodes(pack_engine):
    with pack_engine.connect() as conn:
        codes = {r[0] for r in conn.execute(text("SELECT code FROM districts"))}
    assert codes == DISTRICTS
    assert _scalar(pack_engine, "SELECT count(*) FROM areas WHERE vintage = 2011") == 687
    assert _scalar(pack_engine, "SELECT count(*) FROM areas WHERE vintage = 2021") == 697
    # Every area of each vintage has its IMD decile; IMD 2025 came from the England file, filtered to the county.
    assert _scalar(pack_engine, "SELECT count(*) FROM need_indicators WHERE indicator='imd' AND vintage=2019 "
                                "AND decile BETWEEN 1 AND 10") == 687
    assert _scalar(pack_engine, "SELECT count(*) FROM need_indicators WHERE indicator='imd' AND vintage=2025 "
                                "AND decile BETWEEN 1 AND 10") == 697
    assert _scalar(pack_engine, "SELECT count(DISTINCT indicator) FROM need_indicators WHERE vintage=2019") == 8
    # Populations: 2021 from the boundary file (2022 estimates), 2011 filled from the IMD 2019 file (mid-2015).
    assert _scalar(pack_engine, "SELECT count(*) FROM areas WHERE population IS NULL") == 0
    assert _scalar(pack_engine, "SELECT count(*) FROM postcodes") >= 28_381


def test_geometries_are_valid_and_areas_fall_in_their_district(pack_engine):
    assert _scalar(pack_engine, "SELECT count(*) FROM areas WHERE NOT ST_IsValid(geom)") == 0
    misplaced = _scalar(pack_engine, """
        SELECT count(*) FROM areas a JOIN districts d ON d.code = a.district_code
        WHERE NOT ST_Intersects(d.geom, ST_PointOnSurface(a.geom))""")
    assert misplaced <= 3  # generalised boundaries: a sliver area may poke out


def test_postcodes_are_normalised_and_converted_from_bng(pack_engine):
    with pack_engine.connect() as conn:
        row = conn.execute(text("SELECT postcode, ST_X(geom), ST_Y(geom), district_code FROM postcodes "
                                "WHERE postcode = 'ST1 1AP'")).one()
    # Code-Point: ST1 1AP at E 388248, N 347480 (EPSG:27700) -> about 2.17 W, 53.03 N in Stoke-on-Trent.
    assert row[3] == "E06000021"
    assert row[1] == pytest.approx(-2.1748, abs=0.002) and row[2] == pytest.approx(53.0248, abs=0.002)


def test_reloading_is_idempotent(engine, pack):
    load_districts(engine, pack / "boundaries" / "districts.geojson")
    load_districts(engine, pack / "boundaries" / "districts.geojson")
    files = sorted((pack / "boundaries" / "lsoa2011").glob("*.geojson"))
    load_areas(engine, files, vintage=2011)
    load_areas(engine, files, vintage=2011)
    load_need(engine, pack / "deprivation" / "imd2019_lsoa11.csv", vintage=2019)
    load_need(engine, pack / "deprivation" / "imd2019_lsoa11.csv", vintage=2019)
    assert _scalar(engine, "SELECT count(*) FROM districts") == 9
    assert _scalar(engine, "SELECT count(*) FROM areas") == 687
    assert _scalar(engine, "SELECT count(*) FROM need_indicators WHERE indicator = 'imd'") == 687


def test_a_bad_file_leaves_the_database_as_it_was(engine, pack, tmp_path):
    load_postcodes(engine, pack / "postcodes" / "nspl_nov2021_TF.csv")
    before = _scalar(engine, "SELECT count(*) FROM postcodes")
    bad = tmp_path / "need.csv"
    bad.write_text("area_code,rank,decile\nE01029708,12,3\nE01029709,twelve,4\n")
    with pytest.raises(InputError) as err:
        load_need(engine, bad, indicator="loneliness", vintage=2024)
    message = err.value.user_message
    assert "need.csv" in message and "twelve" in message and "rank" in message
    assert _scalar(engine, "SELECT count(*) FROM need_indicators") == 0
    broken = tmp_path / "districts.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": '
                      '"E07000199", "name": "T"}, "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0]')
    with pytest.raises(InputError):
        load_districts(engine, broken)
    assert _scalar(engine, "SELECT count(*) FROM postcodes") == before
    assert _scalar(engine, "SELECT count(*) FROM districts") == 0
