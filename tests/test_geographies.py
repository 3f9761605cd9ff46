"""Any set of areas: loading boundary files (any CRS, bad features reported, nothing half-loaded), assigning every
asset to its areas (in the import and in bulk), drawing an area, and the shared filter's ``area`` parameter."""

import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text

from asset_map.errors import InputError
from asset_map.registers import importer
from asset_map.store import assets as store_assets
from asset_map.store import geographies
from tests.geography_data import PILOT, TAMWORTH

COMMUNITY = Path(__file__).parent / "data" / "tamworth_community.csv"


def test_divisions_load_reprojected_and_every_asset_is_in_one(geo_db, geo_engine):
    _, done, _ = geo_db
    assert done["areas"] == 59 and done["crs"] == "EPSG:27700"
    with geo_engine.connect() as conn:
        srid = conn.execute(text("SELECT DISTINCT ST_SRID(geom) FROM geography_areas")).scalar()
        # Every asset with a point lies in exactly one division (they tile the county, like the LSOAs they are
        # made of), and the division's district is the asset's district.
        rows = conn.execute(text(
            "SELECT a.id, a.district_code, count(x.area_code) AS n, min(x.area_code) AS code FROM assets a "
            "LEFT JOIN asset_areas x ON x.asset_id = a.id AND x.geography = 'divisions' "
            "GROUP BY a.id, a.district_code")).all()
        audit = conn.execute(text("SELECT rows FROM audit_log WHERE action = 'geography-load'")).scalar()
    assert srid == 4326 and audit == 59
    assert len(rows) > 60
    located = [r for r in rows if r.n]
    assert len(located) >= len(rows) - 3  # generalised borders: a point snapped into a district may miss them
    assert all(r.n == 1 for r in located)
    div = gpd.read_file(geo_db[2]).set_index("code")["district"]
    assert sum(div[r.code] == r.district_code for r in located) >= len(located) - 3


def test_import_after_load_links_new_assets(geo_engine):
    with geo_engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM asset_areas x JOIN assets a ON a.id = x.asset_id "
                              "WHERE a.register = 'tamworth_community' AND x.geography = 'divisions'")).scalar()
    # The community register was imported BEFORE the divisions were loaded: the bulk assignment linked it.
    assert n == 11
    importer.import_register(geo_engine, COMMUNITY, register="tamworth_again")
    with geo_engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM asset_areas x JOIN assets a ON a.id = x.asset_id "
                              "WHERE a.register = 'tamworth_again' AND x.geography = 'divisions'")).scalar()
    assert n == 11  # imported AFTER: linked by the import itself
    with geo_engine.begin() as conn:  # the database is shared: leave it as found
        conn.execute(text("DELETE FROM asset_areas x USING assets a WHERE a.id = x.asset_id "
                          "AND a.register = 'tamworth_again'"))
        conn.execute(text("DELETE FROM assets WHERE register = 'tamworth_again'"))
        conn.execute(text("DELETE FROM registers WHERE name = 'tamworth_again'"))


def test_area_filter_selects_the_assets_inside(geo_engine):
    with geo_engine.connect() as conn:
        code = conn.execute(text("SELECT x.area_code FROM asset_areas x JOIN assets a ON a.id = x.asset_id "
                                 "WHERE a.source_key = 'T01' LIMIT 1")).scalar()
    flt = store_assets.AssetFilter.from_args({"area": f"divisions:{code}"})
    inside = store_assets.select(geo_engine, flt, role="officer")
    assert "Castle Youth Club" in set(inside["name"])
    assert set(inside["district_code"]) == {TAMWORTH}
    assert flt.as_args() == {"area": f"divisions:{code}"}
    with pytest.raises(InputError, match="area"):
        store_assets.AssetFilter.from_args({"area": "divisions;DROP TABLE assets"})


def test_drawn_pilot_neighbourhood(geo_engine):
    # Redrawn (the fixture drew it first): same code, replaced outline and links.
    done = geographies.save_drawn(geo_engine, "pilot-neighbourhoods", "PN-01", "Tamworth town centre", PILOT,
                                  actor="officer@example.org")
    assert done["assets_linked"] >= 8  # the community register's town-centre assets and Tamworth Library
    area = geographies.area(geo_engine, "pilot-neighbourhoods", "PN-01")
    assert area["drawn_by"] == "officer@example.org" and area["geometry"].geom_type == "MultiPolygon"
    with pytest.raises(InputError, match="2 distinct points"):
        geographies.save_drawn(geo_engine, "pilot-neighbourhoods", "PN-02", "Line",
                               {"type": "Polygon", "coordinates": [[[-1.7, 52.6], [-1.6, 52.6], [-1.7, 52.6]]]},
                               actor="x")
    with pytest.raises(InputError, match="must be a polygon"):
        geographies.save_drawn(geo_engine, "pilot-neighbourhoods", "PN-02", "Point",
                               {"type": "Point", "coordinates": [-1.7, 52.6]}, actor="x")
    assert [a["code"] for a in geographies.areas(geo_engine, "pilot-neighbourhoods")] == ["PN-01"]


def _features(tmp_path, rows, name="bad.geojson", crs="EPSG:4326"):
    gdf = gpd.GeoDataFrame([{"code": c, "name": n} for c, n, _ in rows], geometry=[g for _, _, g in rows], crs=crs)
    path = tmp_path / name
    gdf.to_file(path, driver="GeoJSON" if name.endswith("json") else None)
    return path


SQUARE = shapely.box(-1.70, 52.60, -1.69, 52.61)
BOWTIE = shapely.Polygon([(-1.70, 52.62), (-1.69, 52.63), (-1.69, 52.62), (-1.70, 52.63), (-1.70, 52.62)])


def test_bad_files_name_the_feature_and_load_nothing(engine, tmp_path):
    path = _features(tmp_path, [("A", "One", SQUARE), ("A", "Two", SQUARE.buffer(0.01)), (None, "Three", SQUARE),
                                ("C", "Four", shapely.LineString([(-1.7, 52.6), (-1.6, 52.6)]))])
    with pytest.raises(InputError) as err:
        geographies.load(engine, "wards", path)
    message = err.value.user_message
    assert "bad.geojson: 3 features cannot be loaded, nothing was" in message
    assert "feature 2, field 'code': code 'A' repeats feature 1" in message
    assert "feature 3, field 'code'" in message
    assert "feature 4 (C): is a LineString, not a polygon" in message
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM geographies")).scalar() == 0


def test_self_intersecting_repaired_and_overlaps_reported(engine, tmp_path):
    path = _features(tmp_path, [("A", "Square", SQUARE), ("B", "Bowtie", BOWTIE),
                                ("C", "Overlapping", SQUARE.buffer(0.002))])
    done = geographies.load(engine, "parishes", path)
    notes = "\n".join(done["notes"])
    assert "feature 2 (B): invalid polygon repaired (Self-intersection" in notes
    assert "areas A and C overlap" in notes
    with engine.connect() as conn:
        assert conn.execute(text("SELECT bool_and(ST_IsValid(geom)) FROM geography_areas")).scalar()


def test_crs_missing_is_an_error_unless_given(engine, tmp_path):
    bng = gpd.GeoDataFrame({"code": ["A"], "name": ["One"]}, geometry=[shapely.box(420000, 303000, 421000, 304000)],
                           crs=27700)
    shp = tmp_path / "noprj.shp"
    bng.to_file(shp)
    shp.with_suffix(".prj").unlink()
    with pytest.raises(InputError, match="noprj.shp: the file does not say its coordinate reference system"):
        geographies.load(engine, "wards", shp)
    done = geographies.load(engine, "wards", shp, crs="EPSG:27700")
    area = geographies.area(engine, "wards", "A")
    assert done["areas"] == 1 and -1.72 < area["geometry"].centroid.x < -1.68  # reprojected to lon/lat
    # GeoJSON written in grid numbers with no crs member: readers would take them as degrees.
    raw = tmp_path / "grid.geojson"
    raw.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
        "code": "A"}, "geometry": shapely.geometry.mapping(shapely.box(420000, 303000, 421000, 304000))}]}))
    with pytest.raises(InputError, match="--crs EPSG:27700"):
        geographies.load(engine, "wards", raw)


def test_reload_removes_missing_areas(engine, tmp_path):
    geographies.load(engine, "wards", _features(tmp_path, [("A", "One", SQUARE), ("B", "Two", BOWTIE)]))
    done = geographies.load(engine, "wards", _features(tmp_path, [("A", "One again", SQUARE)], name="v2.geojson"))
    assert done["removed"] == 1
    assert [(a["code"], a["name"]) for a in geographies.areas(engine, "wards")] == [("A", "One again")]


def test_gap_report_for_a_drawn_neighbourhood(geo_engine):
    from asset_map import gaps
    from asset_map.config import load_settings

    req = gaps.GapRequest.from_args({"area": "pilot-neighbourhoods:PN-01", "need": "imd:2025"})
    result = gaps.run(geo_engine, req)
    area = result.inputs["area"]
    # Only LSOAs the neighbourhood overlaps are reported, all in Tamworth, with shares between 0 and 1.
    assert set(result.frame["district_code"]) == {TAMWORTH}
    assert len(result.frame) == area["lsoas"] >= 3
    shares = [r["share"] for r in area["lsoa_shares"]]
    assert all(0 < s <= 1 for s in shares) and min(shares) < 1
    # Residents inside are the LSOAs' populations weighted by their shares (2021 LSOAs carry population_2022).
    expected = sum(r["population_inside"] for r in area["lsoa_shares"])
    assert area["weighted_by"] == "residents" and abs(area["population_inside"] - expected) < 1e-6
    assert 1 <= min(area["deciles"]) and abs(sum(area["deciles"].values()) - 1) < 1e-9
    assert "areal weighting" in area["method"]
    html = gaps.standalone_html(result, load_settings())
    assert "Tamworth town centre (Pilot neighbourhoods)" in html and "areal weighting" in html
    with pytest.raises(InputError, match="overlaps no LSOA"):
        geographies.save_drawn(geo_engine, "pilot-neighbourhoods", "FAR", "Far away",
                               {"type": "Polygon", "coordinates": [[[0, 51], [0.1, 51], [0.1, 51.1], [0, 51]]]},
                               actor="x")
        gaps.run(geo_engine, gaps.GapRequest.from_args({"area": "pilot-neighbourhoods:FAR", "need": "imd:2025"}))
    with geo_engine.begin() as conn:
        conn.execute(text("DELETE FROM geography_areas WHERE geography = 'pilot-neighbourhoods' AND code = 'FAR'"))


def _links(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT geography, area_code, a.name FROM asset_areas x JOIN assets a "
                                 "ON a.id = x.asset_id ORDER BY 1, 2, 3")).all()


def _points(engine):
    from asset_map.store import partitions

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO registers (name, version, imported_at) VALUES ('pts', 1, now())"))
        partitions.ensure(conn, "pts")
        conn.execute(text(
            "INSERT INTO assets (register, match_key, tier, category, name, geom) VALUES "
            "('pts', 'a', 'association', 'park', 'in A', ST_SetSRID(ST_MakePoint(-1.695, 52.605), 4326)), "
            "('pts', 'b', 'association', 'park', 'on the edge of A', ST_SetSRID(ST_MakePoint(-1.69, 52.605), 4326)), "
            "('pts', 'c', 'association', 'park', 'outside', ST_SetSRID(ST_MakePoint(-1.5, 52.5), 4326))"))


def test_a_reload_swaps_the_geographys_links_and_leaves_the_others(engine, tmp_path):
    """Each geography's links are a partition of their own, replaced whole by a reload; a point on a border is in
    the area (as ST_Intersects says)."""
    _points(engine)
    geographies.load(engine, "wards", _features(tmp_path, [("A", "One", SQUARE)]))
    geographies.load(engine, "parishes", _features(tmp_path, [("P", "Parish", SQUARE)], name="p.geojson"))
    assert _links(engine) == [("parishes", "P", "in A"), ("parishes", "P", "on the edge of A"),
                              ("wards", "A", "in A"), ("wards", "A", "on the edge of A")]
    moved = shapely.box(-1.5005, 52.4995, -1.4995, 52.5005)
    geographies.load(engine, "wards", _features(tmp_path, [("B", "Two", moved)], name="v2.geojson"))
    assert _links(engine) == [("parishes", "P", "in A"), ("parishes", "P", "on the edge of A"),
                              ("wards", "B", "outside")]
    with engine.connect() as conn:
        parts = conn.execute(text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'asset_areas'::regclass")).scalar()
    assert parts == 2


def test_migration_0023_moves_the_links_into_partitions_and_back(engine, tmp_path):
    from tests.test_store_bulk import _migrate

    _points(engine)
    geographies.load(engine, "wards", _features(tmp_path, [("A", "One", SQUARE)]))
    before = _links(engine)
    _migrate(engine, "downgrade", "0023-1")  # the revision before 0023
    assert _links(engine) == before
    _migrate(engine, "upgrade", "head")
    assert _links(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'asset_areas'")).scalar() == "p"
    geographies.load(engine, "wards", _features(tmp_path, [("A", "One", SQUARE)], name="again.geojson"))
    assert _links(engine) == before


def test_a_geography_loaded_is_offered_by_a_kept_table_page(db_url, engine, tmp_path):
    """The filter form of a kept /assets page lists the areas of every geography: loading one moves the reference
    change stamp (migration 0026's triggers), so the page is drawn again with it. Without them the old page stays."""
    from tests.conftest import make_app

    web = make_app(db_url, tmp_path).test_client()
    assert "Ward One" not in web.get("/assets").get_data(as_text=True)
    geographies.load(engine, "wards", _features(tmp_path, [("A", "Ward One", SQUARE)]))
    assert "Ward One" in web.get("/assets").get_data(as_text=True)
    with engine.begin() as conn:
        for table in ("geographies", "geography_areas"):
            conn.execute(text(f"DROP TRIGGER tr_{table}_tile_change ON {table}"))
    geographies.load(engine, "parishes", _features(tmp_path, [("P", "Parish Two", BOWTIE)], name="p.geojson"))
    assert "Parish Two" not in web.get("/assets").get_data(as_text=True)
