"""Downloads (GeoJSON, GeoPackage, CSV) from the web and the CLI, on the Staffordshire pack with hand-made assets."""

import csv
import io
import json
import re

import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from flask import g
from shapely.geometry import shape
from sqlalchemy import text

from asset_map.api import geojson, layers, rows
from asset_map.api.csv_ import neutralise
from asset_map.cli import cli
from tests.conftest import make_app
from tests.export_data import EVIL_NAME, STAFFORD, export_db, export_engine  # noqa: F401

LIBRARIES = {"Baswich Library", "Gnosall Library", "Holmcroft Library", "Barlaston Library", "Eccleshall Library"}
STAFFORD_LIBRARIES = f"/export/associations.%s?district={STAFFORD}&category=community_run_library"


@pytest.fixture
def xclient(export_db, tmp_path):
    return make_app(export_db, tmp_path).test_client()


def _as(app, role):
    app.before_request(lambda: setattr(g, "asset_map_role", role) or setattr(g, "asset_map_actor", f"{role}@test"))
    return app.test_client()


def _numbers(value):
    if isinstance(value, (int, float)):
        yield value
    else:
        for v in value:
            yield from _numbers(v)


def _check_rfc7946(raw):
    doc = json.loads(raw)
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    assert doc["attribution"] and "Crown copyright" in " ".join(doc["attribution"]) and doc["licence"]
    for f in doc["features"]:
        assert f["type"] == "Feature" and "crs" not in f and "id" in f
        coords = list(_numbers(f["geometry"]["coordinates"]))
        # lon/lat order: Staffordshire lies at about 2 degrees west, 52.5-53.3 north.
        assert all(-3.2 < x < -1.4 for x in coords[0::2]) and all(52.3 < y < 53.4 for y in coords[1::2])
        geom = shape(f["geometry"])
        for poly in getattr(geom, "geoms", [geom]):
            if poly.geom_type == "Polygon":
                assert poly.exterior.is_ccw, f"feature {f['id']}: exterior ring not counter-clockwise"
                assert all(not ring.is_ccw for ring in poly.interiors)
    # At most 7 decimals, checked on the text itself (json.loads would hide trailing digits).
    assert not re.search(r"\d\.\d{8,}", raw.split('"features"', 1)[1].split('"properties"')[0])
    return doc


def test_stafford_libraries_as_geojson_follow_rfc7946(xclient, export_engine):
    resp = xclient.get(STAFFORD_LIBRARIES % "geojson")
    assert resp.status_code == 200 and resp.is_streamed
    assert resp.content_type == "application/geo+json"
    assert re.match(r'attachment; filename="asset-map-associations-\d{8}\.geojson"',
                    resp.headers["Content-Disposition"])
    doc = _check_rfc7946(resp.get_data(as_text=True))
    # The closed and the restricted library are not there; the five open ones are, with database ids.
    assert {f["properties"]["name"] for f in doc["features"]} == LIBRARIES
    with export_engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT name, id FROM assets")).all())
    assert all(f["id"] == ids[f["properties"]["name"]] for f in doc["features"])
    again = json.loads(xclient.get(STAFFORD_LIBRARIES % "geojson").get_data())
    assert [f["id"] for f in again["features"]] == [f["id"] for f in doc["features"]]
    assert doc["numberReturned"] == 5 and doc["filters"]["district"] == STAFFORD
    assert "email" not in doc["features"][0]["properties"]  # contact details are for organisers and up


def test_polygon_layers_are_wound_by_the_right_hand_rule(xclient, export_engine):
    for layer_id, expected in (("districts", 9), ("need-imd-2025", None), ("need-imd-2019", None)):
        resp = xclient.get(f"/export/{layer_id}.geojson")
        doc = _check_rfc7946(resp.get_data(as_text=True))
        if expected:
            assert len(doc["features"]) == expected
    with export_engine.connect() as conn:
        n2021 = conn.execute(text("SELECT count(*) FROM areas WHERE vintage = 2021")).scalar()
        # The pack's own polygons are not all counter-clockwise: the export must fix them, not pass them on.
        clockwise = conn.execute(text("SELECT count(*) FROM areas WHERE NOT ST_IsPolygonCCW(geom)")).scalar()
    assert len(doc["features"]) > 600
    assert len(json.loads(xclient.get("/export/need-imd-2025.geojson").get_data())["features"]) == n2021
    assert clockwise > 0


def test_geojson_streams_in_chunks(export_engine, monkeypatch):
    monkeypatch.setattr(geojson, "CHUNK", 2000)
    monkeypatch.setattr(rows, "BATCH", 2)
    layer = layers.get(export_engine, "districts")
    done = {}
    chunks = list(geojson.stream(export_engine, layer, None, role="public", attribution=["a"], licence="l",
                                 on_done=lambda n, ok: done.update(n=n, ok=ok)))
    assert len(chunks) > 3  # sent as it is read, not built whole
    assert len(json.loads(b"".join(chunks))["features"]) == 9 and done == {"n": 9, "ok": True}


def test_anonymous_downloads_never_hold_individuals_or_restricted_assets(xclient):
    body = xclient.get("/export/assets.geojson?status=all").get_data(as_text=True)
    doc = json.loads(body)
    assert doc["features"] and "Volunteer" not in body and "Restricted Library" not in body
    assert {f["properties"]["tier"] for f in doc["features"]} == {"association", "organisation"}
    assert "Old Closed Library" in body  # status=all asks for closed ones too
    counts = json.loads(xclient.get("/export/individuals.geojson").get_data())["features"]
    # Issue 12: every area is listed (nobody and a few both read "fewer than 5") and 8 is rounded to 10.
    shown = [(f["properties"]["individuals"], f["properties"]["label"]) for f in counts]
    assert [s for s in shown if s[0] is not None] == [(10, "10")]
    assert len(shown) > 2 and {s for s in shown if s[0] is None} == {(None, "fewer than 5")}
    csv_body = xclient.get("/export/assets.csv?status=all").get_data(as_text=True)
    assert "Volunteer" not in csv_body and "Restricted Library" not in csv_body
    assert xclient.get("/export/individual-points.geojson").status_code == 404


def test_officers_get_individual_points_and_contacts(export_db, tmp_path):
    officer = _as(make_app(export_db, tmp_path), "officer")
    doc = json.loads(officer.get("/export/assets.geojson").get_data())
    assert sum(f["properties"]["tier"] == "individual" for f in doc["features"]) == 10
    assert "email" in doc["features"][0]["properties"]
    assert "Restricted Library" in {f["properties"]["name"] for f in doc["features"]}
    assert len(json.loads(officer.get("/export/individual-points.geojson").get_data())["features"]) == 10


def test_csv_opens_in_excel_and_neutralises_formulas(xclient):
    resp = xclient.get(f"/export/associations.csv?district={STAFFORD}")
    assert resp.status_code == 200 and resp.content_type == "text/csv; charset=utf-8"
    raw = resp.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw.decode("utf-8-sig").splitlines()
    comments = [line for line in lines if line.startswith("#")]
    assert any("Crown copyright" in c for c in comments) and any(c.startswith("# Licence:") for c in comments)
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[len(comments):]))))
    evil = next(r for r in rows if "HYPERLINK" in r["name"])
    assert evil["name"] == "'" + EVIL_NAME
    assert evil["description"].startswith("'-2+3") and evil["address"] == "'@SUM(1+1)"
    assert evil["offers"] == "'+44 sport"
    for r in rows:
        assert -3.2 < float(r["lon"]) < -1.4 and 52.3 < float(r["lat"]) < 53.4  # numbers keep their sign
        assert len(r["lon"].split(".")[1]) <= 7
    assert {r["name"] for r in rows if r["category"] == "community_run_library"} == LIBRARIES
    plain = xclient.get(f"/export/associations.csv?district={STAFFORD}&comments=0").get_data().decode("utf-8-sig")
    assert plain.startswith("id,name,tier")


def test_neutralise_cells():
    assert [neutralise(v) for v in ("=1+1", "+1", "-1", "@a", "\tx", "\rx", "ok", None, -2.5, ["a", "=b"])] == \
        ["'=1+1", "'+1", "'-1", "'@a", "'\tx", "'\rx", "ok", "", "-2.5", "a;=b"]


def test_csv_polygons_carry_wkt(xclient, export_engine):
    text_ = xclient.get("/export/districts.csv?comments=0").get_data().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text_)))
    assert len(rows) == 9 and set(rows[0]) == {"id", "code", "name", "wkt"}
    stafford = next(r for r in rows if r["code"] == STAFFORD)
    with export_engine.connect() as conn:
        area = conn.execute(text("SELECT ST_Area(geom) FROM districts WHERE code = :c"), {"c": STAFFORD}).scalar()
    assert shapely.from_wkt(stafford["wkt"]).area == pytest.approx(area, rel=1e-6)


def test_geopackage_has_layers_counts_and_metadata(xclient, tmp_path):
    resp = xclient.get(STAFFORD_LIBRARIES % "gpkg")
    assert resp.status_code == 200 and resp.content_type == "application/geopackage+sqlite3"
    path = tmp_path / "out.gpkg"
    path.write_bytes(resp.get_data())
    names = [name for name, _ in pyogrio.list_layers(path)]
    assert names == ["associations", "districts"]
    libs = pyogrio.read_dataframe(path, layer="associations")
    assert set(libs["name"]) == LIBRARIES and str(libs.crs) == "EPSG:4326"
    info = pyogrio.read_info(path, layer="associations")
    assert "Crown copyright" in info["layer_metadata"]["ATTRIBUTION"] and info["layer_metadata"]["LICENCE"]
    assert "Crown copyright" in info["layer_metadata"]["DESCRIPTION"]
    assert "Open Government Licence" in info["dataset_metadata"]["LICENCE"]
    districts = pyogrio.read_dataframe(path, layer="districts")
    assert list(districts["code"]) == [STAFFORD]


def test_geopackage_of_everything(xclient, tmp_path):
    path = tmp_path / "all.gpkg"
    path.write_bytes(xclient.get("/export/all.gpkg").get_data())
    names = {name for name, _ in pyogrio.list_layers(path)}
    assert {"assets", "organisations", "associations", "individuals", "districts", "need_imd_2019",
            "need_imd_2025", f"assets_{STAFFORD}"} <= names
    assert "individual_points" not in names
    need = pyogrio.read_dataframe(path, layer="need_imd_2025", read_geometry=False)
    assert need["imd_decile"].between(1, 10).all() and len(need) > 600


@pytest.mark.parametrize(("url", "fragment"), [
    ("/export/assets.geojson?tier=people", "'people'"),
    ("/export/assets.csv?bbox=1,2,3", "bbox"),
    ("/export/assets.geojson?updated_since=yesterday", "'yesterday'"),
    ("/export/assets.csv?district=Stafford", "'Stafford'"),
    ("/export/all.csv", "GeoPackage"),
])
def test_bad_parameters_are_400_naming_the_value(xclient, url, fragment):
    resp = xclient.get(url)
    assert resp.status_code == 400 and fragment in resp.get_json()["description"]


def test_filters(xclient):
    def names(query):
        return {f["properties"]["name"] for f in json.loads(xclient.get(f"/export/assets.geojson?{query}")
                                                              .get_data())["features"]}

    everything = names("")
    assert names("tier=organisation") == {"Stafford Library", "Stone Library", "Rising Brook Library",
                                          "Tamworth asset 3", "Tamworth asset 4"}
    assert names("updated_since=2999-01-01") == set()
    assert names("updated_since=2000-01-01") == everything
    assert names("district=E07000199") == {f"Tamworth asset {i}" for i in range(5)}
    assert names("category=community_run_library&status=closed") == {"Old Closed Library"}
    box = names("bbox=-1.8,52.55,-1.6,52.7")  # around Tamworth
    assert box and all(n.startswith("Tamworth") for n in box)


def test_exports_are_audited(export_db, export_engine, tmp_path):
    from tests.accounts import bearer

    app = make_app(export_db, tmp_path)
    with export_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'export'")).scalar()
    app.test_client().get(STAFFORD_LIBRARIES % "csv", headers=bearer(export_engine, "officer", scope="export")) \
        .get_data()
    with export_engine.connect() as conn:
        row = conn.execute(text("SELECT actor, target, details, rows FROM audit_log WHERE action = 'export' "
                                "ORDER BY id DESC LIMIT 1")).one()
        after = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'export'")).scalar()
    assert after == before + 1
    # An officer also sees the restricted library: six rows.
    assert row.actor.startswith("officer@example.org") and row.target == "associations" and row.rows == 6
    assert row.details["filters"] == {"district": STAFFORD, "category": "community_run_library"}
    assert row.details["format"] == "csv" and row.details["complete"] is True


def test_anonymous_exports_are_counted_per_hour_not_logged_one_by_one(xclient, export_engine):
    # Issue 12: the anonymous public's downloads cannot flood the audit log.
    counted = ("SELECT count(*), COALESCE(sum(n), 0) FROM access_counts WHERE kind = 'download' "
               "AND target = 'associations'")
    with export_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM audit_log")).scalar()
        rows_before, n_before = conn.execute(text(counted)).one()
    for _ in range(5):
        xclient.get(STAFFORD_LIBRARIES % "csv").get_data()
    with export_engine.connect() as conn:
        after = conn.execute(text("SELECT count(*) FROM audit_log")).scalar()
        rows_after, n_after = conn.execute(text(counted)).one()
    assert after == before
    assert rows_after - rows_before <= 1 and n_after - n_before == 5  # one row per hour, however many requests


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "csv"])
def test_cli_exports_stafford_libraries(export_db, tmp_path, monkeypatch, fmt):
    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", export_db)
    out = tmp_path / f"libraries.{fmt}"
    result = CliRunner().invoke(cli, ["export", "associations", "--district", STAFFORD, "--category",
                                      "community_run_library", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "associations: 5 features" in result.output
    frame = pyogrio.read_dataframe(out, layer="associations") if fmt == "gpkg" else None
    if fmt == "geojson":
        frame = pyogrio.read_dataframe(out)
    elif fmt == "csv":
        lines = out.read_text(encoding="utf-8-sig").splitlines()
        frame = list(csv.DictReader(line for line in lines if not line.startswith("#")))
        frame = {"name": [r["name"] for r in frame]}
    assert set(frame["name"]) == LIBRARIES


def test_cli_csv_sidecar_and_errors(export_db, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", export_db)
    out = tmp_path / "d.csv"
    result = CliRunner().invoke(cli, ["export", "districts", "--csv-sidecar", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8-sig").startswith("id,code,name,wkt")
    assert "Crown copyright" in (tmp_path / "d.csv.txt").read_text()
    bad = CliRunner().invoke(cli, ["export", "nowhere", "-o", str(tmp_path / "x.geojson")])
    assert bad.exit_code == 1 and "no layer 'nowhere'" in bad.output


def test_exports_give_district_and_lsoa_names_beside_their_codes(xclient, export_engine):
    doc = json.loads(xclient.get(STAFFORD_LIBRARIES % "geojson").get_data())
    with export_engine.connect() as conn:
        lsoa = dict(conn.execute(text("SELECT code, name FROM areas WHERE vintage = 2021")).all())
    for f in doc["features"]:
        p = f["properties"]
        assert p["district_code"] == STAFFORD and p["district_name"] == "Stafford"
        assert p["lsoa21_name"] == lsoa[p["lsoa21_code"]] and p["lsoa21_name"].startswith("Stafford ")
    rows = list(csv.DictReader(io.StringIO(xclient.get(STAFFORD_LIBRARIES % "csv" + "&comments=0")
                                           .get_data(as_text=True).lstrip("\ufeff"))))
    assert {r["district_name"] for r in rows} == {"Stafford"} and all(r["lsoa21_name"] for r in rows)
