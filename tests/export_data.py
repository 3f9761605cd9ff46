"""A copy of the Staffordshire pack database with a few hand-made assets: Stafford's community-run libraries (one
closed, one restricted), council libraries, individuals (one LSOA above the suppression threshold, one below), a
row written to attack spreadsheets, and some assets in Tamworth. For the export and OGC API tests.

The assets sit on real Code-Point postcodes of their district, so districts and LSOAs are assigned by the pack's
own polygons.
"""

import json

import geopandas as gpd
import pytest
from shapely import wkb
from sqlalchemy import text

from asset_map.store import assets
from tests.conftest import engine_over, make_app

STAFFORD, TAMWORTH = "E07000197", "E07000199"
EVIL_NAME = '=HYPERLINK("http://evil.example/","click")'


def _row(i, tier, category, name, point, postcode, **extra):
    row = {c: None for c in assets.WRITE_COLUMNS}
    row.update(register="export-test", source_row=i + 2, source_key=f"k{i}", match_key=f"k{i}", tier=tier,
               category=category, name=name, description=f"{name}: test asset", offers="time;buildings/space",
               address=f"{i} High Street", postcode=postcode, status="open", last_verified=f"2025-0{1 + i % 9}-15",
               visibility="public", consent=True, geocode_method="postcode", geocode_quality=0.9, properties="{}",
               phone="01785 000000", email=f"asset{i}@example.org", geometry=point)
    row.update(extra)
    return row


def _points(conn, district, n):
    sql = ("SELECT postcode, ST_AsBinary(geom) FROM postcodes WHERE district_code = :d "
           "ORDER BY postcode LIMIT :n")
    return [(pc, wkb.loads(bytes(g))) for pc, g in conn.execute(text(sql), {"d": district, "n": n})]


def add_assets(engine):
    with engine.connect() as conn:
        stafford = _points(conn, STAFFORD, 400)[::20]  # 20 spread-out postcodes
        tamworth = _points(conn, TAMWORTH, 100)[::20]
        # Eight individuals in one LSOA (shown as a count) and two in another (suppressed).
        lsoa_rows = conn.execute(text(
            "SELECT a.code, ST_AsBinary(ST_PointOnSurface(a.geom)) FROM areas a WHERE a.vintage = 2021 "
            "AND a.district_code = :d ORDER BY a.code LIMIT 2"), {"d": STAFFORD}).all()
    rows = []
    libraries = ["Baswich Library", "Gnosall Library", "Holmcroft Library", "Barlaston Library", "Eccleshall Library"]
    for i, name in enumerate(libraries):
        rows.append(_row(i, "association", "community_run_library", name, stafford[i][1], stafford[i][0]))
    rows.append(_row(5, "association", "community_run_library", "Old Closed Library", stafford[5][1],
                     stafford[5][0], status="closed"))
    rows.append(_row(6, "association", "community_run_library", "Restricted Library", stafford[6][1],
                     stafford[6][0], visibility="restricted"))
    rows.append(_row(7, "association", "sports_club", EVIL_NAME, stafford[7][1], stafford[7][0],
                     description="-2+3 cmd|' /C calc'!A0", address="@SUM(1+1)", offers="+44 sport"))
    for i, name in enumerate(["Stafford Library", "Stone Library", "Rising Brook Library"], start=8):
        rows.append(_row(i, "organisation", "library", name, stafford[i][1], stafford[i][0]))
    for j in range(10):
        code_point = lsoa_rows[0 if j < 8 else 1][1]
        rows.append(_row(20 + j, "individual", "volunteer", f"Volunteer {j}", wkb.loads(bytes(code_point)), None,
                         consent=True))
    for i, (pc, point) in enumerate(tamworth):
        tier = "association" if i < 3 else "organisation"
        rows.append(_row(40 + i, tier, "community_run_library" if i == 0 else "youth_club" if tier == "association"
                         else "school", f"Tamworth asset {i}", point, pc))
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)
    with engine.begin() as conn:
        assets.ensure_register(conn, "export-test", mapping={"test": True})
        assets.upsert(conn, frame)
        conn.execute(text(
            "UPDATE assets s SET lsoa21_code = a.code, district_code = a.district_code FROM areas a "
            "WHERE a.vintage = 2021 AND ST_Intersects(a.geom, s.geom)"))
        conn.execute(text("UPDATE assets s SET lsoa11_code = a.code FROM areas a "
                          "WHERE a.vintage = 2011 AND ST_Intersects(a.geom, s.geom)"))
    return json.dumps({"assets": len(rows)})


@pytest.fixture(scope="module")
def export_db(pg_server, pack_db):
    """The pack database copied (never the shared one written to), plus the hand-made assets."""
    from asset_map.config import load_settings
    from asset_map.store.db import dispose_engines, make_engine

    dispose_engines()  # a template database must have no open connections
    name = f"am_exports_{id(pg_server) % 10000}"
    url = pg_server.create(name, template=pack_db.rsplit("/", 1)[1])
    eng = make_engine(url, load_settings())
    add_assets(eng)
    eng.dispose()
    yield url
    dispose_engines()
    pg_server.drop(name)


@pytest.fixture
def export_engine(export_db):
    with engine_over(export_db) as eng:
        yield eng


# The OGC and ORUK tests' app and client over the export database.
@pytest.fixture
def oapp(export_db, tmp_path):
    return make_app(export_db, tmp_path)


@pytest.fixture
def oclient(oapp):
    return oapp.test_client()
