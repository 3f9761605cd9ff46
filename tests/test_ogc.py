"""OGC API - Features under /ogc: the protocol, privacy, and GDAL's own OAPIF client reading every collection."""

import json
import subprocess
import sys

import pytest
from sqlalchemy import text

from asset_map.api import layers, rows
from tests.export_data import STAFFORD, export_db, export_engine, oapp, oclient  # noqa: F401

GDAL_READ = """
import json, sys
import pyogrio
base, ids = sys.argv[1], sys.argv[2].split(",")
out = {}
for lid in ids:
    df = pyogrio.read_dataframe("OAPIF:" + base, layer=lid, fid_as_index=True)
    cols = [c for c in df.columns if c != "geometry"]
    out[lid] = {"n": len(df), "columns": cols, "crs": str(df.crs), "fids": [str(i) for i in df.index],
                "rows": json.loads(df[cols].astype(str).to_json(orient="records")),
                "bounds": [float(v) for v in df.total_bounds]}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_gdal_reads_every_collection_like_the_database(oapp, export_engine, live_server):
    base = live_server(oapp) + "/ogc"
    every = [layer for layer in layers.available(export_engine, "public")]
    ids = [layer.id for layer in every]
    assert {"assets", "organisations", "associations", "individuals", "districts", "need-imd-2019",
            "need-imd-2025", f"assets-{STAFFORD}"} <= set(ids)
    # GDAL runs in its own process: in this one it would hold the interpreter while our live server waits for it.
    done = subprocess.run([sys.executable, "-c", GDAL_READ, base, ",".join(ids)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    read = json.loads(done.stdout)
    for layer in every:
        got = read[layer.id]
        assert got["n"] == rows.count(export_engine, layer), layer.id
        assert got["crs"] in ("EPSG:4326", "OGC:CRS84")
        names = {c.name for c in layer.columns}
        # Fields come from the collection's JSON Schema, so an empty collection (Stoke's assets) has them too.
        assert names <= set(got["columns"]) | {"id"}, layer.id
    # Attributes, not just counts: the associations as GDAL read them are the database's rows.
    with export_engine.connect() as conn:
        db = {str(r.id): r for r in conn.execute(text(
            "SELECT id, name, category, postcode, district_code FROM assets WHERE tier = 'association' "
            "AND status IN ('open', 'temporarily closed') AND visibility = 'public'"))}
        need = dict(conn.execute(text("SELECT area_code, decile FROM need_indicators WHERE indicator = 'imd' "
                                      "AND vintage = 2025")).all())
    assoc = read["associations"]
    assert sorted(assoc["fids"]) == sorted(db)
    for fid, row in zip(assoc["fids"], assoc["rows"]):
        assert (row["name"], row["category"], row["postcode"], row["district_code"]) == \
            (db[fid].name, db[fid].category, db[fid].postcode, db[fid].district_code)
    areas = read["need-imd-2025"]
    assert all(int(float(r["imd_decile"])) == need[r["code"]] for r in areas["rows"])
    counts = {r["code"]: r["individuals"] for r in read["individuals"]["rows"]}
    # Two areas hold individuals: one shows its count (8, rounded to the nearest 5: issue 12), the other (below 5)
    # shows none, and so does every area with nobody: "none" and "a few" look the same.
    with export_engine.connect() as conn:
        n_areas = conn.execute(text("SELECT count(*) FROM areas WHERE vintage = 2021")).scalar()
    assert len(counts) == n_areas and [float(v) for v in counts.values()
                                       if v not in (None, "None", "<NA>", "nan", "")] == [10]
    assert all("Volunteer" not in json.dumps(v["rows"]) for v in read.values())
    lon0, lat0, lon1, lat1 = read["districts"]["bounds"]
    assert -2.6 < lon0 < lon1 < -1.5 and 52.4 < lat0 < lat1 < 53.3  # lon/lat, not swapped


def test_landing_conformance_and_api(oclient):
    landing = oclient.get("/ogc/")
    assert landing.status_code == 200 and landing.content_type == "application/json"
    rels = {link["rel"]: link for link in landing.get_json()["links"]}
    assert {"self", "alternate", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    conf = oclient.get("/ogc/conformance").get_json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    api = oclient.get("/ogc/api")
    assert api.content_type == "application/vnd.oai.openapi+json;version=3.0"
    doc = json.loads(api.get_data())
    assert doc["openapi"].startswith("3.0")
    assert doc["components"]["parameters"]["limit"]["schema"]["maximum"] == 10_000
    params = {p.get("name") for p in doc["paths"]["/collections/associations/items"]["get"]["parameters"]}
    assert {"category", "status", "district_code"} <= params


def test_collections_list_need_vintages_tiers_and_districts(oclient):
    doc = oclient.get("/ogc/collections").get_json()
    by_id = {c["id"]: c for c in doc["collections"]}
    assert {"need-imd-2019", "need-imd-2025", "organisations", "associations", "individuals", "districts",
            f"assets-{STAFFORD}"} <= set(by_id)
    assert "individual-points" not in by_id
    assert "LSOA 2011" in by_id["need-imd-2019"]["title"] and "LSOA 2021" in by_id["need-imd-2025"]["title"]
    minx, miny, maxx, maxy = by_id["districts"]["extent"]["spatial"]["bbox"][0]
    assert -2.6 < minx < maxx < -1.5 and 52.4 < miny < maxy < 53.3
    assert by_id["associations"]["extent"]["temporal"]["interval"][0][0].startswith("2025-01-15")
    schema = oclient.get("/ogc/collections/need-imd-2019/schema")
    assert schema.content_type == "application/schema+json"
    fields = schema.get_json()["properties"]["properties"]["properties"]
    assert fields["imd_decile"]["type"] == "integer" and fields["imd_score"]["type"] == "number"
    queryable = oclient.get("/ogc/collections/associations/queryables").get_json()["properties"]
    assert {"category", "status", "district_code", "datetime"} <= set(queryable) and "description" not in queryable
    one = oclient.get(f"/ogc/collections/assets-{STAFFORD}")
    assert one.status_code == 200 and one.get_json()["title"] == "Assets in Stafford"
    assert oclient.get("/ogc/collections/assets-E07999999").status_code == 404
    assert oclient.get("/ogc/collections/nothing").status_code == 404


def test_items_paging_counts_and_links(oclient):
    first = oclient.get("/ogc/collections/need-imd-2025/items?limit=100")
    assert first.status_code == 200 and first.content_type == "application/geo+json"
    doc = first.get_json()
    assert doc["numberReturned"] == 100 and doc["numberMatched"] > 600
    links = {link["rel"]: link["href"] for link in doc["links"]}
    assert "prev" not in links and "offset=100" in links["next"]
    seen = {f["id"] for f in doc["features"]}
    page = oclient.get(links["next"].split("localhost", 1)[1]).get_json()
    assert {f["id"] for f in page["features"]}.isdisjoint(seen)
    assert "offset=0" in {link["rel"]: link["href"] for link in page["links"]}["prev"]
    last = oclient.get(f"/ogc/collections/need-imd-2025/items?limit=100&offset={doc['numberMatched'] - 5}")
    last = last.get_json()
    assert last["numberReturned"] == 5 and last["numberMatched"] == doc["numberMatched"]
    assert "next" not in {link["rel"] for link in last["links"]}
    capped = oclient.get("/ogc/collections/need-imd-2025/items?limit=100001")
    assert capped.status_code == 200 and capped.get_json()["numberReturned"] == doc["numberMatched"]
    beyond = oclient.get("/ogc/collections/need-imd-2025/items?offset=100000").get_json()
    assert beyond["numberReturned"] == 0 and beyond["numberMatched"] == doc["numberMatched"]


def test_next_links_seek_past_the_last_feature_through_the_whole_layer(oclient):
    """A client following next links (QGIS, GDAL) gets every feature once, in id order, and each page after the
    first starts after the previous page's last id (the index, not OFFSET); an id never given out is a 400."""
    whole = oclient.get("/ogc/collections/need-imd-2025/items?limit=10000").get_json()
    expected = sorted(f["id"] for f in whole["features"])
    seen, path = [], "/ogc/collections/need-imd-2025/items?limit=150"
    while path:
        doc = oclient.get(path).get_json()
        assert doc["numberMatched"] == len(expected)
        seen += [f["id"] for f in doc["features"]]
        nxt = {link["rel"]: link["href"] for link in doc["links"]}.get("next")
        if nxt:
            assert f"after={seen[-1]}" in nxt and f"offset={len(seen)}" in nxt
        path = nxt.split("localhost", 1)[1] if nxt else None
    assert seen == expected
    assert oclient.get("/ogc/collections/need-imd-2025/items?after=x%27%3B--").status_code == 400
    assert oclient.get("/ogc/collections/organisations/items?after=E01").status_code == 400


def test_items_filters(oclient):
    def names(query):
        doc = oclient.get(f"/ogc/collections/associations/items?{query}").get_json()
        return {f["properties"]["name"] for f in doc["features"]}, doc["numberMatched"]

    libs, n = names(f"category=community_run_library&district_code={STAFFORD}")
    assert n == 5 and "Gnosall Library" in libs
    assert names("category=community_run_library&status=closed")[0] == {"Old Closed Library"}
    assert names("bbox=-1.8,52.55,-1.6,52.7")[0] == {"Tamworth asset 0", "Tamworth asset 1", "Tamworth asset 2"}
    # last_verified dates are 2025-0(1 + i % 9)-15 for asset i.
    dated, _ = names("datetime=2025-01-15/2025-02-28&category=community_run_library")
    assert dated == {"Baswich Library", "Gnosall Library"}
    assert names("datetime=2025-01-15")[0] == {"Baswich Library"}
    assert names("datetime=../2025-01-31")[0] == names("datetime=2025-01-15")[0]
    assert names("name=Gnosall Library")[0] == {"Gnosall Library"}
    deciles = oclient.get("/ogc/collections/need-imd-2025/items?imd_decile=1&limit=1000").get_json()
    assert deciles["features"] and all(f["properties"]["imd_decile"] == 1 for f in deciles["features"])


@pytest.mark.parametrize(("query", "fragment"), [
    ("limit=0", "'limit'"), ("limit=-5", "'limit'"), ("limit=ten", "'ten'"), ("offset=-1", "'offset'"),
    ("bbox=1,2,3", "bbox"), ("bbox=a,b,c,d", "bbox"), ("datetime=yesterday", "'yesterday'"),
    ("datetime=2025-02-01/2025-01-01", "start is after the end"), ("colour=red", "'colour'"),
    ("status=gone", "'gone'"), ("f=xml", "'xml'"), ("bbox-crs=EPSG:27700", "bbox-crs"),
])
def test_bad_item_parameters_are_400_json(oclient, query, fragment):
    resp = oclient.get(f"/ogc/collections/associations/items?{query}")
    assert resp.status_code == 400 and resp.content_type == "application/json"
    assert fragment in resp.get_json()["description"]


def test_single_features_and_privacy(oclient, export_engine):
    with export_engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT name, id FROM assets")).all())
    lib = oclient.get(f"/ogc/collections/associations/items/{ids['Gnosall Library']}")
    assert lib.status_code == 200 and lib.content_type == "application/geo+json"
    feature = lib.get_json()
    assert feature["id"] == ids["Gnosall Library"] and feature["properties"]["name"] == "Gnosall Library"
    assert {link["rel"] for link in feature["links"]} >= {"self", "collection"}
    # Individuals and restricted assets do not exist for the public, even by id.
    for name in ("Volunteer 0", "Restricted Library"):
        assert oclient.get(f"/ogc/collections/assets/items/{ids[name]}").status_code == 404
    assert oclient.get(f"/ogc/collections/organisations/items/{ids['Gnosall Library']}").status_code == 404
    assert oclient.get("/ogc/collections/assets/items/abc").status_code == 404
    district = oclient.get(f"/ogc/collections/districts/items/{STAFFORD}").get_json()
    assert district["properties"]["name"] == "Stafford"
    body = oclient.get("/ogc/collections/assets/items?limit=1000").get_data(as_text=True)
    assert "Volunteer" not in body and "Restricted Library" not in body


def test_html_pages(oclient):
    for url in ("/ogc/", "/ogc/conformance", "/ogc/collections", "/ogc/collections/associations",
                "/ogc/collections/associations/items?limit=5", "/ogc/api", f"/ogc/collections/districts/items/{STAFFORD}"):
        resp = oclient.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        assert resp.status_code == 200 and resp.content_type.startswith("text/html"), url
        assert b"Crown copyright" in resp.data
    page = oclient.get("/ogc/collections/associations/items?f=html&category=community_run_library").get_data(
        as_text=True)
    assert "Gnosall Library" in page and "numberMatched" not in page
    assert oclient.get("/ogc/collections?f=json").content_type == "application/json"


def test_the_read_engine_plans_every_statement_with_its_values(oapp, export_engine):
    """psycopg prepares statements it sees often; PostgreSQL's generic plan of a bounding-box page guesses a few
    rows and sorts every match (50 ms for a district instead of 3 ms). The API's connections plan with the values;
    the app's own engine is left as PostgreSQL has it."""
    from asset_map.web import extensions

    with oapp.app_context():
        with extensions.read_engine().connect() as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
        with extensions.engine().connect() as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"
    with export_engine.connect() as conn:
        public = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname IN "
                                   "('ix_assets_public_id', 'ix_assets_public_geom')")).scalars().all()
    assert len(public) == 2 and all("WHERE" in d and "individual" in d for d in public)
