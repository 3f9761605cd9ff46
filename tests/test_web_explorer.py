"""The explorer's API and pages over a synthetic county: filters, privacy, clustering, escaping, CSV, near,
district pages, GOV.UK assets."""

import csv
import re
import io
import json

import pytest
from pyproj import Geod
from sqlalchemy import text

from asset_map.config import load_settings
from asset_map.store.db import make_engine
from tests.conftest import make_app
from tests.explorer_data import HOSTILE, add_hand_made, synthetic_database
from tests.factories import load_synthetic


@pytest.fixture(scope="module")
def synth_db(pg_server, template_db, tmp_path_factory):
    yield synthetic_database(pg_server, template_db, tmp_path_factory.mktemp("synth"), "am_explorer_web")
    pg_server.drop("am_explorer_web")


@pytest.fixture(scope="module")
def synth_engine(synth_db):
    eng = make_engine(synth_db, load_settings())
    yield eng
    eng.dispose()


@pytest.fixture
def web(synth_db, tmp_path):
    return make_app(synth_db, tmp_path).test_client()


def _geojson(web, query=""):
    res = web.get("/api/assets.geojson" + query)
    assert res.status_code == 200, res.get_data(as_text=True)
    assert res.mimetype == "application/geo+json"
    return json.loads(res.get_data(as_text=True))


def test_public_geojson_has_no_individual_and_no_private_contact(web, synth_engine):
    fc = _geojson(web)
    assert fc["mode"] == "points"
    tiers = {f["properties"]["tier"] for f in fc["features"]}
    assert tiers == {"organisation", "association"}
    assert all("email" not in f["properties"] and "phone" not in f["properties"] for f in fc["features"])
    with synth_engine.connect() as conn:
        expected = conn.execute(text(
            "SELECT count(*) FROM assets WHERE tier <> 'individual' AND visibility = 'public' "
            "AND status IN ('open', 'temporarily closed') AND withdrawn_at IS NULL")).scalar()
        individuals = [r[0] for r in conn.execute(text("SELECT name FROM assets WHERE tier = 'individual'"))]
    assert fc["total"] == len(fc["features"]) == expected
    body = json.dumps(fc)
    assert individuals and not any(name in body for name in individuals)


def test_officer_receives_individuals_as_points(synth_db, tmp_path):
    from flask import g

    app = make_app(synth_db, tmp_path)
    app.before_request(lambda: setattr(g, "asset_map_role", "officer"))
    fc = json.loads(app.test_client().get("/api/assets.geojson").get_data(as_text=True))
    assert "individual" in {f["properties"]["tier"] for f in fc["features"]}
    assert any("email" in f["properties"] for f in fc["features"])


def test_filters_in_the_query_limit_features(web):
    fc = _geojson(web, "?category=library&tier=organisation")
    assert fc["features"] and {f["properties"]["category"] for f in fc["features"]} == {"library"}
    closed = _geojson(web, "?status=closed")
    assert closed["features"] and {f["properties"]["status"] for f in closed["features"]} == {"closed"}
    assert "Old Closed Hall" not in json.dumps(_geojson(web))
    fresh = _geojson(web, "?verified_within=12")
    assert not any(f["properties"]["stale"] for f in fresh["features"])
    assert HOSTILE not in json.dumps(fresh)


def test_stale_flag_follows_the_setting(web):
    features = {f["properties"]["name"]: f["properties"] for f in _geojson(web)["features"]}
    assert features[HOSTILE]["stale"] is True
    assert features[HOSTILE]["last_verified"] == "2020-01-01"
    assert any(not p["stale"] for p in features.values())


def test_bbox_limits_and_many_assets_come_as_clusters(synth_db, tmp_path, web):
    everything = _geojson(web)
    xs = sorted(f["geometry"]["coordinates"][0] for f in everything["features"])
    ys = sorted(f["geometry"]["coordinates"][1] for f in everything["features"])
    west = _geojson(web, f"?bbox={xs[0]},{ys[0]},{xs[len(xs) // 2]},{ys[-1]}")
    assert 0 < west["total"] < everything["total"]
    app = make_app(synth_db, tmp_path, MAP_POINTS_LIMIT=50)
    fc = json.loads(app.test_client().get("/api/assets.geojson?zoom=9").get_data(as_text=True))
    assert fc["mode"] == "clusters" and fc["total"] == everything["total"]
    assert sum(f["properties"].get("count", 1) for f in fc["features"]) == everything["total"]
    assert len(fc["features"]) < everything["total"]
    singles = [f for f in fc["features"] if "count" not in f["properties"]]
    assert all(f["id"] and f["properties"]["name"] for f in singles)


def test_bad_parameters_are_clear_json_errors(web):
    res = web.get("/api/assets.geojson?bbox=1,2,3")
    assert res.status_code == 400
    assert "bbox" in res.get_json()["description"]
    assert web.get("/api/assets.geojson?zoom=99").status_code == 400
    assert "tier" in web.get("/api/assets.geojson?tier=people").get_json()["description"]


def test_individual_counts_are_suppressed_below_the_threshold(web, synth_engine):
    fc = json.loads(web.get("/api/individuals.geojson").get_data(as_text=True))
    assert fc["features"]
    for f in fc["features"]:
        p = f["properties"]
        assert set(p) == {"area_code", "area_name", "count", "label"}
        if p["count"] is None:
            assert p["label"] == "fewer than 5"
        else:
            assert p["count"] >= 5 and p["label"] == str(p["count"])


def test_map_page_embeds_no_asset_and_holds_the_filter(web):
    html = web.get("/?category=library&district=E07900001").get_data(as_text=True)
    assert HOSTILE not in html and "&lt;img src=x" not in html
    config = json.loads(html.split('id="explorer-config">')[1].split("</script>")[0])
    assert config["filter"] == {"category": "library", "district": "E07900001"}
    assert config["individuals"] == "counts"
    assert {c["category"] for c in config["categories"]} >= {"library", "school", "faith_group"}
    assert not {c["tier"] for c in config["categories"]} & {"individual"}
    assert '<option value="library" selected>' in html


def test_postcode_search_centres_the_map(web, synth_engine):
    with synth_engine.connect() as conn:
        pc, lon, lat = conn.execute(text("SELECT postcode, ST_X(geom), ST_Y(geom) FROM postcodes LIMIT 1")).one()
    html = web.get("/?postcode=" + pc.lower().replace(" ", "")).get_data(as_text=True)
    config = json.loads(html.split('id="explorer-config">')[1].split("</script>")[0])
    assert config["focus"]["label"] == pc
    assert config["focus"]["lon"] == pytest.approx(lon)
    assert web.get("/api/postcode?postcode=" + pc).get_json()["postcode"] == pc
    missing = web.get("/api/postcode?postcode=SW1A 1AA")
    assert missing.status_code == 404 and "SW1A 1AA" in missing.get_json()["description"]
    assert web.get("/?postcode=not a postcode").status_code == 400


def test_assets_table_escapes_sorts_and_pages(web):
    res = web.get("/assets?sort=name&dir=desc&q=onerror")
    html = res.get_data(as_text=True)
    assert res.status_code == 200
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'aria-sort="descending"' in web.get("/assets?sort=name&dir=desc").get_data(as_text=True)
    assert "govuk-table" in html and "Page 1 of" in html
    assert "govuk-frontend.min.css" in html
    names = web.get("/assets?category=library&sort=name").get_data(as_text=True)
    assert "Library" in names
    assert web.get("/assets?sort=password").status_code == 400
    assert web.get("/assets?page=999").status_code == 400


def test_csv_has_bom_neutralised_formulas_and_the_same_filter(web, synth_engine):
    res = web.get("/assets.csv?category=library")
    assert res.headers["Content-Disposition"].startswith("attachment;")
    assert res.headers["Content-Type"] == "text/csv; charset=utf-8"
    raw = res.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows and {r["Category"] for r in rows} == {"library"}
    hostile = next(r for r in rows if r["Name"] == HOSTILE)
    assert hostile["Address"] == "'=HYPERLINK(\"http://evil\")"
    assert "Email" not in rows[0] and "Phone" not in rows[0]
    geo = _geojson(web, "?category=library")
    assert len(rows) == geo["total"]


def test_near_lists_nearest_with_metres_across_districts(web, synth_engine):
    with synth_engine.connect() as conn:
        pc, lon, lat = conn.execute(text("SELECT postcode, ST_X(geom), ST_Y(geom) FROM postcodes "
                                         "ORDER BY postcode LIMIT 1 OFFSET 40")).one()
        expected = conn.execute(text(
            "SELECT name, ST_Distance(ST_Transform(geom, 27700), ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), "
            "4326), 27700)) AS d, district_code FROM assets WHERE tier <> 'individual' AND visibility = 'public' "
            "AND status IN ('open', 'temporarily closed') ORDER BY d LIMIT 10"), {"x": lon, "y": lat}).all()
    res = web.get(f"/near?postcode={pc}&limit=10")
    html = res.get_data(as_text=True)
    assert res.status_code == 200
    metres = [int(v) for v in html.split('data-metres="')[1:] for v in [v.split('"')[0]]]
    assert metres == sorted(metres) and len(metres) == 10
    assert metres == [round(d) for _, d, _ in expected]
    # Straight-line distances in EPSG:27700 agree with the geodesic to well under 1%.
    geod = Geod(ellps="WGS84")
    first = json.loads(html.split('id="explorer-config">')[1].split("</script>")[0])["nearest"][0]
    _, _, dist = geod.inv(lon, lat, first["lon"], first["lat"])
    assert abs(dist - metres[0]) <= max(2.0, 0.005 * dist)
    assert len({d for _, _, d in expected}) >= 1


def test_district_page_summarises_need_and_assets(web, synth_engine):
    with synth_engine.connect() as conn:
        code, name = conn.execute(text("SELECT code, name FROM districts ORDER BY code LIMIT 1")).one()
        by_tier = dict(conn.execute(text(
            "SELECT tier, count(*) FROM assets WHERE district_code = :c AND tier <> 'individual' "
            "AND visibility = 'public' AND status IN ('open', 'temporarily closed') GROUP BY tier"), {"c": code}).all())
        areas = conn.execute(text("SELECT count(*) FROM areas WHERE district_code = :c"), {"c": code}).scalar()
    res = web.get(f"/districts/{code}")
    html = res.get_data(as_text=True)
    assert res.status_code == 200 and name in html
    for n in by_tier.values():
        assert f'numeric">{n}</td>' in html
    deciles = [int(x.split("<")[0]) for x in html.split('Areas by need')[1].split("Assets by tier")[0]
               .split('govuk-table__cell--numeric">')[1::2]]
    assert sum(deciles) == areas
    config = json.loads(html.split('id="explorer-config">')[1].split("</script>")[0])
    assert config["filter"]["district"] == code
    assert web.get("/districts/E07999999").status_code == 404


def test_govuk_assets_are_served_beside_the_table_route(web):
    res = web.get("/assets/images/favicon.ico")
    assert res.status_code == 200 and len(res.get_data()) > 100
    assert web.get("/assets/fonts/../../../../setup.cfg").status_code == 404


def test_cached_answers_follow_changes_to_the_assets(engine, tmp_path):
    county = load_synthetic(engine, tmp_path, areas=20, assets_n=60, seed=9)
    web = make_app(engine.url.render_as_string(hide_password=False), tmp_path).test_client()
    before = _geojson(web, "?category=library")
    centre = county.postcodes.geometry.iloc[3]
    add_hand_made(engine, [("new", "Brand New Library", "organisation", "library", centre.x, centre.y, {})])
    after = _geojson(web, "?category=library")
    assert after["total"] == before["total"] + 1
    assert "Brand New Library" in json.dumps(after)
    html = web.get("/").get_data(as_text=True)
    assert '"category": "library"' in html


def _offered(html, field):
    select = re.search(rf'<select class="govuk-select" id="f-{field}" name="{field}">(.*?)</select>', html, re.S)
    return re.findall(r'<option value="([^"]*)"', select.group(1))


def test_the_kept_filter_form_follows_the_data_and_the_filter(engine, tmp_path):
    """The filter form is kept drawn per process, yet a new category or offer is offered at once on every page that
    shows it, and the selected values are the request's own."""
    county = load_synthetic(engine, tmp_path, areas=20, assets_n=60, seed=9)
    web = make_app(engine.url.render_as_string(hide_password=False), tmp_path).test_client()
    for path in ("/", "/assets"):
        assert "bandstand" not in _offered(web.get(path).get_data(as_text=True), "category")
    centre = county.postcodes.geometry.iloc[3]
    add_hand_made(engine, [("kept", "Kept Form Bandstand", "organisation", "bandstand", centre.x, centre.y,
                            {"offers": "music"})])
    for path in ("/", "/assets", "/assets?page=1"):
        html = web.get(path).get_data(as_text=True)
        assert "bandstand" in _offered(html, "category") and "music" in _offered(html, "offer"), path
    html = web.get("/assets?category=bandstand").get_data(as_text=True)
    assert '<option value="bandstand" selected>' in html
    assert '<option value="bandstand" selected>' not in web.get("/assets").get_data(as_text=True)


def test_pack_map_page_is_light_and_offers_domains_of_both_vintages(pack_client):
    res = pack_client.get("/")
    html = res.get_data(as_text=True)
    assert len(res.get_data()) < 1_000_000
    options = set(re.findall(r'<option value="(imd[a-z_]*:20[0-9]{2})"', html))
    assert {"imd:2025", "imd:2019"} <= options
    domains = sorted(o for o in options if o.startswith("imd_"))
    assert any(o.endswith(":2025") for o in domains) and any(o.endswith(":2019") for o in domains)
    for need in (next(o for o in domains if o.endswith(":2025")), next(o for o in domains if o.endswith(":2019"))):
        page = pack_client.get("/?need=" + need).get_data(as_text=True)
        assert f'<option value="{need}" selected>' in page


def test_the_table_and_its_csv_name_districts_beside_their_codes(web, synth_engine):
    with synth_engine.connect() as conn:
        code, name = conn.execute(text("SELECT d.code, d.name FROM districts d JOIN assets a ON a.district_code = d.code "
                                       "ORDER BY d.code LIMIT 1")).one()
    html = web.get(f"/assets?district={code}").get_data(as_text=True)
    assert f">{name}</a><span class=\"app-code-cell\">{code}</span>" in html
    rows = list(csv.DictReader(io.StringIO(web.get(f"/assets.csv?district={code}").get_data().decode("utf-8-sig"))))
    assert rows and {(r["District code"], r["District name"]) for r in rows} == {(code, name)}
