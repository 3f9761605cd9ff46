"""Vector tiles (/tiles/<layer>/<z>/<x>/<y>.mvt) and TileJSON over a synthetic county, decoded with
mapbox-vector-tile: what each layer holds, the map API's filters and privacy rule on asset tiles, the cache and its
invalidation, and bad input."""

import gzip
import json
import math

import mapbox_vector_tile
import pytest

from asset_map.maps import tile_prep, tiles
from tests.conftest import make_app as _make_app
from tests.explorer_data import add_hand_made, synthetic_database


def make_app(url, tmp_path, **extra):
    """The app with the prepared tables rebuilt only when a test says so (no rebuild on a thread behind its back)."""
    return _make_app(url, tmp_path, **{"TILE_PREP": 0, **extra})


@pytest.fixture(scope="module")
def synth_db(pg_server, template_db, tmp_path_factory):
    yield synthetic_database(pg_server, template_db, tmp_path_factory.mktemp("synth"), "am_tiles")


@pytest.fixture
def web(synth_db, tmp_path):
    return make_app(synth_db, tmp_path).test_client()


def tile_of(lon, lat, z):
    """The XYZ tile holding (lon, lat) at zoom z (Web Mercator, y down from the north)."""
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def centre(client):
    doc = client.get("/tiles/districts.json").get_json()
    minx, miny, maxx, maxy = doc["bounds"]
    return (minx + maxx) / 2, (miny + maxy) / 2


def decode(res):
    assert res.status_code == 200, res.get_data(as_text=True)
    assert res.content_type == tiles.MEDIA_TYPE
    return mapbox_vector_tile.decode(res.data) if res.data else {}


def get_tile(client, layer, z, lon, lat, query=""):
    x, y = tile_of(lon, lat, z)
    return client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt{query}")


def test_need_tile_has_every_area_coloured_by_decile_and_details_when_zoomed_in(web):
    lon, lat = centre(web)
    low = decode(get_tile(web, "need", 8, lon, lat, "?need=imd:2025"))["need"]["features"]
    # Below the detail zoom, one feature per decile holding its areas' shapes: the whole county's 60 in one tile.
    assert sum(_polygons(f) for f in low) == 60
    assert {tuple(f["properties"]) for f in low} == {("decile",)}
    deciles = [f["properties"]["decile"] for f in low]
    assert len(deciles) == len(set(deciles)) and set(deciles) <= set(range(1, 11))
    high = decode(get_tile(web, "need", 13, lon, lat, "?need=imd:2025"))["need"]["features"]
    assert 0 < len(high) < 60
    props = high[0]["properties"]
    assert props["code"].startswith("E01") and props["name"] and 1 <= props["decile"] <= 10
    assert {"score", "rank", "district_code", "population"} <= props.keys()
    # Another indicator of the same vintage colours the same areas differently.
    other = decode(get_tile(web, "need", 8, lon, lat, "?need=imd_income:2025"))["need"]["features"]
    assert sum(_polygons(f) for f in other) == 60
    # (deciles hold a tenth of the areas each: which areas they hold differs)
    assert ({f["properties"]["decile"]: f["geometry"]["coordinates"] for f in other}
            != {f["properties"]["decile"]: f["geometry"]["coordinates"] for f in low})


def _polygons(feature):
    geom = feature["geometry"]
    assert geom["type"] in ("Polygon", "MultiPolygon")
    return len(geom["coordinates"]) if geom["type"] == "MultiPolygon" else 1


def test_boundary_tiles(web):
    lon, lat = centre(web)
    districts = decode(get_tile(web, "districts", 7, lon, lat))["districts"]["features"]
    assert districts and all(f["properties"]["code"].startswith("E07") for f in districts)
    areas = decode(get_tile(web, "areas", 8, lon, lat, "?vintage=2021"))["areas"]["features"]
    assert len(areas) == 60
    # No LSOA 2011 areas in the synthetic county: an empty tile, not an error.
    assert get_tile(web, "areas", 8, lon, lat, "?vintage=2011").data == b""


def _asset_total(client, lon, lat, z, query=""):
    layer = decode(get_tile(client, "assets", z, lon, lat, query)).get("assets", {"features": []})
    return sum(f["properties"].get("count", 1) for f in layer["features"]), layer["features"]


def test_asset_tiles_group_at_low_zoom_and_match_the_map_api(web, monkeypatch):
    monkeypatch.setattr(tiles, "POINTS_LIMIT", 100)  # the county has ~400 public assets
    lon, lat = centre(web)
    total, feats = _asset_total(web, lon, lat, 7)
    api = web.get("/api/assets.geojson?bbox=-180,-85,180,85&zoom=7").get_json()
    assert total == api["total"] > 100
    assert any(f["properties"].get("count", 1) > 1 for f in feats)
    assert {f["properties"]["tier"] for f in feats} <= {"organisation", "association"}


def test_asset_points_at_high_zoom_carry_popup_fields_and_follow_filters(web):
    lon, lat = centre(web)
    z = 15
    _, feats = _asset_total(web, lon, lat, z, "?status=all")
    assert feats and all("count" not in f["properties"] for f in feats)
    p = feats[0]["properties"]
    assert {"id", "name", "category", "tier", "status", "stale"} <= p.keys()
    assert "email" not in p and "phone" not in p  # contact details only for organisers and above
    category = p["category"]
    _, only = _asset_total(web, lon, lat, z, f"?status=all&category={category}")
    assert only and all(f["properties"]["category"] == category for f in only)
    # A filter that matches nothing gives an empty tile, not an error.
    res = get_tile(web, "assets", z, lon, lat, "?q=no-asset-is-called-this")
    assert res.status_code == 200 and res.data == b""
    assert get_tile(web, "assets", z, lon, lat, "?tier=wizard").status_code == 400


def test_an_asset_just_across_a_tile_edge_is_drawn_by_that_tile_too(web, synth_engine):
    """The map draws each tile on a canvas of its own, a point as a circle of 11 px radius: a point 6-11 px beyond a
    tile's edge must be in that tile as well (beyond its extent), or its circle is cut in half at the edge."""
    from sqlalchemy import text

    with synth_engine.connect() as conn:
        points = conn.execute(text("SELECT id, ST_X(geom), ST_Y(geom) FROM assets WHERE visibility = 'public' "
                                   "AND tier <> 'individual' AND withdrawn_at IS NULL ORDER BY id LIMIT 200")).all()
    for asset_id, lon, lat in points:
        for z in range(13, 19):
            px = (lon + 180) / 360 * 2 ** z * 256
            py = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z * 256
            x, y = int(px // 256), int(py // 256)
            inside = px - 256 * x  # pixels from the tile's west edge
            if 6 <= 256 - inside <= 11:  # just west of the next tile east
                res = web.get(f"/tiles/assets/{z}/{x + 1}/{y}.mvt?status=all")
                feats = decode(res).get("assets", {"features": []})["features"]
                mine = [f for f in feats if f["properties"].get("id") == asset_id]
                assert mine, (asset_id, z, 256 - inside)
                # mapbox_vector_tile decodes y up; x is as drawn: left of the tile's own 0.
                assert mine[0]["geometry"]["coordinates"][0] < 0
                return
    pytest.fail("no public asset lies 6-11 px from a tile edge at zooms 13-18")


@pytest.fixture
def synth_engine(synth_db):
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine

    eng = make_engine(synth_db, load_settings())
    yield eng
    eng.dispose()


def test_public_asset_tiles_never_hold_individuals(synth_db, synth_engine, tmp_path, monkeypatch):
    """The same where() as the map API: individuals reach officers as points, the public never (not even counted
    in groups). With the privacy rule switched off the individuals show up: the test can fail."""
    from sqlalchemy import text

    from asset_map.store import assets as store
    from tests.accounts import signed_in_client

    public = make_app(synth_db, tmp_path).test_client()
    lon, lat = centre(public)
    total, feats = _asset_total(public, lon, lat, 7, "?tier=individual")
    assert total == 0 and feats == []
    public_all, _ = _asset_total(public, lon, lat, 7)

    officer = signed_in_client(make_app(synth_db, tmp_path / "o"), synth_engine, "officer")
    seen, _ = _asset_total(officer, lon, lat, 7, "?tier=individual")
    assert seen > 0
    everything, _ = _asset_total(officer, lon, lat, 7)
    with synth_engine.connect() as conn:
        restricted = conn.execute(text(
            "SELECT count(*) FROM assets WHERE tier <> 'individual' AND visibility <> 'public' "
            "AND withdrawn_at IS NULL AND status IN ('open', 'temporarily closed')")).scalar()
    assert everything == public_all + seen + restricted

    monkeypatch.setattr(store, "visibility_condition", lambda role, alias="a": ("TRUE", {}))
    leaked, _ = _asset_total(make_app(synth_db, tmp_path / "x").test_client(), lon, lat, 7, "?tier=individual")
    assert leaked > 0


def test_bad_tile_requests_are_4xx(web):
    assert web.get("/tiles/need/30/0/0.mvt").status_code == 400
    assert web.get("/tiles/need/3/8/0.mvt").status_code == 400
    assert web.get("/tiles/need/3/-1/0.mvt").status_code == 404
    assert web.get("/tiles/rivers/3/0/0.mvt").status_code == 404
    assert web.get("/tiles/rivers.json").status_code == 404
    res = web.get("/tiles/need/3/0/0.mvt?need=imd:1999")
    assert res.status_code == 400 and "not loaded" in res.get_json()["description"]
    assert web.get("/tiles/areas/3/0/0.mvt?vintage=1066").status_code == 400
    assert web.get("/tiles/assets/3/0/0.mvt?bbox=1,2,3,4").status_code == 400
    # Far from any data: an empty tile.
    empty = web.get("/tiles/need/10/0/0.mvt")
    assert empty.status_code == 200 and empty.data == b""


def test_tilejson_names_the_versioned_tile_url(web):
    doc = web.get("/tiles/need.json?need=imd:2025").get_json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["vector_layers"][0]["id"] == "need" and "decile" in doc["vector_layers"][0]["fields"]
    url = doc["tiles"][0]
    assert "/tiles/need/{z}/{x}/{y}.mvt?" in url and "need=imd%3A2025" in url and f"v={doc['version']}" in url
    lon, lat = centre(web)
    x, y = tile_of(lon, lat, 8)
    res = web.get(url.split("://", 1)[1].split("/", 1)[1].join(["/", ""]).replace("{z}/{x}/{y}", f"8/{x}/{y}"))
    assert res.status_code == 200 and "max-age=86400" in res.headers["Cache-Control"]
    assert "max-age=60" in web.get(f"/tiles/need/8/{x}/{y}.mvt").headers["Cache-Control"]


def test_tiles_are_cached_and_a_new_asset_invalidates_them(synth_db, synth_engine, tmp_path):
    app = make_app(synth_db, tmp_path, PAGE_RECHECK_MS=0)  # the stamps read on every request
    client = app.test_client()
    lon, lat = centre(client)
    before, _ = _asset_total(client, lon, lat, 9)
    cached = list((tmp_path / "tiles").rglob("*.mvt.gz"))
    assert len(cached) == 1
    # The cached copy is what is served: overwrite it and the next answer is the overwritten bytes.
    cached[0].write_bytes(b"")
    assert get_tile(client, "assets", 9, lon, lat).data == b""
    add_hand_made(synth_engine, [("t1", "Tile Test Hall", "organisation", "community_centre", lon, lat, {})])
    after, _ = _asset_total(client, lon, lat, 9)
    assert after == before + 1


def _sent(app, do):
    """(statements sent, connections checked out) while ``do()`` runs, on every engine of the process."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    statements, checkouts = [], []

    def on_execute(conn, cursor, statement, *args):
        statements.append(statement)

    def on_checkout(*args):
        checkouts.append(1)

    event.listen(Engine, "before_cursor_execute", on_execute)
    event.listen(Pool, "checkout", on_checkout)
    try:
        do()
    finally:
        event.remove(Engine, "before_cursor_execute", on_execute)
        event.remove(Pool, "checkout", on_checkout)
    return statements, len(checkouts)


def test_a_public_tile_reads_the_stamps_at_most_every_recheck_and_a_kept_one_costs_no_query(synth_db, tmp_path):
    """The stamps and the prepared tables' state are one statement, read by a process at most every
    PAGE_RECHECK_MS; a new tile then costs its render, on one connection, and a tile already on disk nothing.
    (Each tile used to read the stamps three times on four connections, and a kept one still once.)"""
    app = make_app(synth_db, tmp_path, PAGE_RECHECK_MS=60_000)
    client = app.test_client()
    lon, lat = centre(client)
    statements, checkouts = _sent(app, lambda: decode(get_tile(client, "need", 8, lon, lat)))
    assert any("tile_changes" in s and "tile_prep" in s for s in statements), statements
    statements, checkouts = _sent(app, lambda: decode(get_tile(client, "need", 9, lon, lat)))
    assert (len(statements), checkouts) == (1, 1), statements
    assert "ST_AsMVT" in statements[0]
    statements, checkouts = _sent(app, lambda: decode(get_tile(client, "need", 9, lon, lat)))
    assert (len(statements), checkouts) == (0, 0), statements


def test_the_recent_snapshot_is_read_again_after_its_recheck_time_or_a_write(synth_engine):
    """Another process's change is seen within recheck_s; this process's own writes (forget) at once."""
    now = [0.0]
    recent = tile_prep.RecentSnapshot(1.0, clock=lambda: now[0])
    first = recent.get(synth_engine)
    add_hand_made(synth_engine, [("t2", "Recheck Hall", "organisation", "community_centre", -2.0, 52.8, {})])
    assert recent.get(synth_engine) is first  # trusted for a second
    now[0] = 1.5
    moved = recent.get(synth_engine)
    assert moved.stamps["assets"] > first.stamps["assets"]
    add_hand_made(synth_engine, [("t3", "Forget Hall", "organisation", "community_centre", -2.0, 52.8, {})])
    recent.forget()
    assert recent.get(synth_engine).stamps["assets"] > moved.stamps["assets"]


def test_tiles_are_drawn_without_jit(synth_db, tmp_path):
    """The read engine's sessions have JIT off, as render()'s transaction has (compiling a tile's SQL with LLVM
    cost more than the tile)."""
    from sqlalchemy import text

    from asset_map.web import extensions

    app = make_app(synth_db, tmp_path)
    with app.app_context(), extensions.read_engine().connect() as conn:
        assert conn.execute(text("SHOW jit")).scalar() == "off"


def test_snapshot_is_the_stamps_and_the_prepared_state(synth_engine):
    from asset_map.store import change_stamps

    with synth_engine.connect() as conn:
        snap = tile_prep.snapshot(conn)
        assert (snap.stamps, snap.prep) == (change_stamps.stamps(conn), tile_prep.state(conn))


def test_tiles_are_sent_gzipped_to_clients_that_take_gzip_and_raw_to_others(synth_db, synth_engine, tmp_path):
    """Compressed once when rendered and kept so on disk: a gzip client gets those bytes, which decode to the
    tile; a client without gzip gets the tile itself, whether it was just rendered or read from the disk cache;
    an officer's tile (never cached) follows the same rule."""
    from tests.accounts import signed_in_client

    app = make_app(synth_db, tmp_path)
    client = app.test_client()
    lon, lat = centre(client)
    x, y = tile_of(lon, lat, 8)
    url = f"/tiles/need/8/{x}/{y}.mvt"
    raw = client.get(url, headers={"Accept-Encoding": "identity"})      # rendered now, raw
    assert raw.status_code == 200 and "Content-Encoding" not in raw.headers
    assert "Accept-Encoding" in raw.headers["Vary"]
    assert mapbox_vector_tile.decode(raw.data)["need"]["features"]
    zipped = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})   # from the disk cache
    assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
    assert zipped.data == next((tmp_path / "tiles").rglob("*.mvt.gz")).read_bytes()
    assert gzip.decompress(zipped.data) == raw.data and len(zipped.data) < len(raw.data)
    assert client.get(url).data == raw.data                                   # cached, decompressed
    assert client.get(url, headers={"Accept-Encoding": "gzip;q=0"}).data == raw.data

    x, y = tile_of(lon, lat, 9)
    fresh = client.get(f"/tiles/need/9/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})  # rendered now, gzip
    assert fresh.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(fresh.data) == client.get(f"/tiles/need/9/{x}/{y}.mvt").data

    officer = signed_in_client(make_app(synth_db, tmp_path / "o"), synth_engine, "officer")
    seen = get_tile(officer, "assets", 15, lon, lat, "?tier=individual")
    assert seen.data and "Content-Encoding" not in seen.headers
    zipped = officer.get(seen.request.full_path, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped.data) == seen.data
    assert not list((tmp_path / "o" / "tiles").rglob("*.gz"))

    empty = client.get("/tiles/need/10/0/0.mvt", headers={"Accept-Encoding": "gzip"})
    assert empty.status_code == 200 and empty.data == b"" and "Content-Encoding" not in empty.headers


def test_a_flood_of_uncached_tiles_gets_429_with_retry_after(synth_db, tmp_path):
    from tests.conftest import hold_slot

    app = make_app(synth_db, tmp_path, TILE_SLOTS=1, TILE_WAIT_S=0)
    client = app.test_client()
    lon, lat = centre(client)
    held = hold_slot(app, "tile")
    try:
        res = get_tile(client, "need", 9, lon, lat)
        assert res.status_code == 429 and res.headers["Retry-After"] == "5"
        assert "slots" in json.loads(res.data)["description"]
    finally:
        held.release()
    assert get_tile(client, "need", 9, lon, lat).status_code == 200


def test_need_and_area_tiles_can_be_limited_to_districts(web):
    lon, lat = centre(web)
    every = decode(get_tile(web, "need", 13, lon, lat))["need"]["features"]
    districts = sorted({f["properties"]["district_code"] for f in every})
    assert len(districts) >= 1
    one = decode(get_tile(web, "need", 13, lon, lat, f"?district={districts[0]}"))["need"]["features"]
    assert one and {f["properties"]["district_code"] for f in one} == {districts[0]}
    assert get_tile(web, "need", 13, lon, lat, "?district=Stafford").status_code == 400


# -- prepared tables (maps.tile_prep): shapes per zoom band, public asset counts per grid cell, seeding ----------------


@pytest.fixture
def prep_db(pg_server, template_db, tmp_path):
    """A copy of the synthetic county for tests that write (prepared tables, new assets)."""
    from tests.explorer_data import synthetic_database

    name = "am_prep_" + tmp_path.name[-8:].replace("-", "_").lower()
    url = synthetic_database(pg_server, template_db, tmp_path / "data", name)
    yield url
    from asset_map.store.db import dispose_engines

    dispose_engines()
    pg_server.drop(name)


def _engine(url):
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine

    return make_engine(url, load_settings())


def _features(engine, layer_id, z, lon, lat, args=None, prepared=True):
    x, y = tile_of(lon, lat, z)
    q = tiles.TileQuery.from_args(engine, layer_id, args or {})
    body = tiles.render(engine, q, z, x, y, prepared=prepared)
    return mapbox_vector_tile.decode(body).get(layer_id, {"features": []})["features"] if body else []


def test_prepared_shapes_give_the_same_areas_as_the_live_tables(prep_db):
    from sqlalchemy import text

    eng = _engine(prep_db)
    try:
        with eng.connect() as conn:
            lon, lat = conn.execute(text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) AS c "
                                         "FROM districts) s")).one()
        live = {z: _features(eng, "need", z, lon, lat, prepared=False) for z in (5, 7, 8, 11, 13)}
        assert tile_prep.refresh(eng)["shapes"] > 0
        with eng.connect() as conn:
            assert tile_prep.shapes_current(tile_prep.state(conn), {"reference": conn.execute(text(
                "SELECT max(id) FROM tile_changes WHERE family = 'reference'")).scalar()})
            bands = dict(conn.execute(text("SELECT band, count(*) FROM tile_shapes WHERE layer = 'areas' "
                                           "GROUP BY band")).all())
        assert bands == {b: 60 for b in tile_prep.BANDS}
        for z, expected in live.items():
            got = _features(eng, "need", z, lon, lat)
            assert len(got) == len(expected) > 0
            assert sorted(f["properties"]["decile"] for f in got) == sorted(
                f["properties"]["decile"] for f in expected)
            if z <= tile_prep.PIXEL_MAX_ZOOM:
                _assert_same_shapes_in_the_tile(got, expected)
        # Reading the prepared shapes is what the low zooms do: a shape changed there shows in the tile.
        with eng.begin() as conn:
            conn.execute(text("DELETE FROM tile_pixels WHERE z = 7"))
            conn.execute(text("DELETE FROM tile_shapes WHERE band = 7"))
        assert _features(eng, "need", 7, lon, lat) == []
        assert _features(eng, "districts", 7, lon, lat) == []
        assert _features(eng, "need", 8, lon, lat)
        # New reference data moves the stamp: the tile is made from the live tables again until the next rebuild.
        with eng.begin() as conn:
            conn.execute(text("UPDATE districts SET name = name"))
        assert len(_features(eng, "need", 7, lon, lat)) == len(live[7])
    finally:
        eng.dispose()


def _assert_same_shapes_in_the_tile(got, expected):
    """Each decile covers the same pixels inside the tile whether its shapes came through ST_AsMVTGeom for this tile
    (live) or were put in the zoom's pixel grid once (tile_pixels): outside the tile the prepared shapes are not
    clipped, so only the tile's own square is compared."""
    from shapely.geometry import box, shape

    square = box(0, 0, tiles.EXTENT, tiles.EXTENT)

    def by_decile(features):
        return {f["properties"].get("decile"): shape(f["geometry"]).buffer(0).intersection(square) for f in features}

    got, expected = by_decile(got), by_decile(expected)
    assert got.keys() == expected.keys()
    for decile, want in expected.items():
        assert want.area > 0
        assert got[decile].symmetric_difference(want).area <= 0.001 * want.area, decile


def test_a_need_tile_finds_deciles_by_position_for_every_indicator_and_vintage(prep_db):
    """tile_deciles is built for each loaded indicator and vintage: a tile of another indicator, or of an area with no
    decile, colours the same areas as the live tables do; an indicator loaded after the rebuild moves the stamp."""
    from sqlalchemy import text

    eng = _engine(prep_db)
    try:
        with eng.begin() as conn:
            lon, lat = conn.execute(text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) AS c "
                                         "FROM districts) s")).one()
            # A second indicator with deciles the reverse of the first, and one area without any.
            conn.execute(text("INSERT INTO need_indicators (area_code, indicator, vintage, score, rank, decile) "
                              "SELECT area_code, 'reverse', vintage, score, rank, 11 - decile FROM need_indicators "
                              "WHERE indicator = 'imd' AND area_code <> (SELECT min(area_code) FROM need_indicators)"))
        assert tile_prep.refresh(eng)["shapes"] > 0
        with eng.connect() as conn:
            combos = conn.execute(text("SELECT indicator, vintage, cardinality(deciles) FROM tile_deciles "
                                       "WHERE indicator IN ('imd', 'reverse') "
                                       "ORDER BY 1, 2")).all()
            areas = conn.execute(text("SELECT count(*) FROM areas")).scalar()
        assert [(i, n) for i, _, n in combos] == [("imd", areas), ("reverse", areas)]
        vintage = combos[0][1]
        for indicator in ("imd", "reverse"):
            args = {"need": f"{indicator}:{vintage}"}
            for z in (6, 8):
                got = _features(eng, "need", z, lon, lat, args)
                expected = _features(eng, "need", z, lon, lat, args, prepared=False)
                _assert_same_shapes_in_the_tile(got, expected)
    finally:
        eng.dispose()


def test_a_tile_outside_the_loaded_areas_is_empty_without_a_query(prep_db):
    """The shapes' extent is recorded when they are built: a tile beyond it (sea, another country) is answered
    empty without asking the database, as the live tables would answer it; a tile over the areas still draws."""
    from sqlalchemy import event, text

    eng = _engine(prep_db)
    try:
        tile_prep.refresh(eng)
        with eng.connect() as conn:
            snap = tile_prep.snapshot(conn)
            lon, lat = conn.execute(text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) AS c "
                                         "FROM districts) s")).one()
            areas = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                                      "ST_Extent(ST_Transform(geom, 3857)) AS e FROM areas) s")).one()
        extent = tile_prep.shapes_extent(snap.prep)
        assert extent == pytest.approx(areas, abs=1.0)
        statements = []
        event.listen(eng, "before_cursor_execute", lambda *args: statements.append(args[2]))
        for layer_id in ("need", "areas", "districts"):
            q = tiles.TileQuery.from_args(eng, layer_id, {})
            statements.clear()
            with eng.connect() as conn:
                assert tiles.draw(conn, q, 6, 0, 0, snapshot=snap) == b""
            assert statements == []
            assert tiles.render(eng, q, 6, 0, 0, prepared=False) == b""
            x, y = tile_of(lon, lat, 6)
            with eng.connect() as conn:
                assert mapbox_vector_tile.decode(tiles.draw(conn, q, 6, x, y, snapshot=snap))[layer_id]["features"]
    finally:
        eng.dispose()


def _grid_total(engine, z, lon, lat, args=None, prepared=True):
    feats = _features(engine, "assets", z, lon, lat, args, prepared)
    return sum(f["properties"].get("count", 1) for f in feats), feats


def test_low_zoom_asset_tiles_come_from_the_grid_with_the_live_counts(prep_db, monkeypatch):
    from sqlalchemy import text

    monkeypatch.setattr(tiles, "POINTS_LIMIT", 100)
    eng = _engine(prep_db)
    try:
        with eng.connect() as conn:
            lon, lat = conn.execute(text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) AS c "
                                         "FROM districts) s")).one()
        live = {z: _grid_total(eng, z, lon, lat, prepared=False)[0] for z in (3, 5, 7)}
        library = _grid_total(eng, 7, lon, lat, {"category": "library"}, prepared=False)[0]
        assert tile_prep.refresh(eng)["assets"] > 0
        # The grid, not the assets, answers: empty it and the low-zoom tile is empty.
        with eng.connect() as conn:
            n_cells = conn.execute(text("SELECT count(*) FROM tile_asset_cells WHERE z = 7")).scalar()
        assert n_cells > 0
        for z, expected in live.items():
            total, feats = _grid_total(eng, z, lon, lat)
            assert total == expected > 100, z
            assert any(f["properties"].get("count", 1) > 1 for f in feats)
        assert _grid_total(eng, 7, lon, lat, {"category": "library"})[0] == library > 0
        # A filter the grid cannot answer (a search) is made live; so is a tile for a signed-in role.
        assert _grid_total(eng, 7, lon, lat, {"q": "no-asset-is-called-this"})[0] == 0
        with eng.begin() as conn:
            conn.execute(text("DELETE FROM tile_asset_cells WHERE z = 7"))
        assert _grid_total(eng, 7, lon, lat)[0] == 0 and _grid_total(eng, 5, lon, lat)[0] == live[5]
        # Any asset write moves the stamp: the tile is live (exact) again until the grid is rebuilt.
        add_hand_made(eng, [("g1", "Grid Test Hall", "organisation", "community_centre", lon, lat, {})])
        assert _grid_total(eng, 7, lon, lat)[0] == live[7] + 1
        assert tile_prep.refresh(eng)["assets"] > 0 and tile_prep.refresh(eng)["assets"] == 0
        assert _grid_total(eng, 7, lon, lat)[0] == live[7] + 1
    finally:
        eng.dispose()


def test_no_individual_in_an_asset_tile_at_any_zoom(prep_db, monkeypatch):
    """Individuals are never counted into the grid nor drawn at any zoom for the public; with the privacy rule
    switched off when the grid is built, they are counted: the test can fail."""
    from sqlalchemy import text

    from asset_map.store import assets as store

    eng = _engine(prep_db)
    try:
        with eng.connect() as conn:
            spots = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM assets WHERE tier = 'individual' "
                                      "ORDER BY id LIMIT 3")).all()
            n_individuals = conn.execute(text("SELECT count(*) FROM assets WHERE tier = 'individual' "
                                              "AND withdrawn_at IS NULL")).scalar()
        assert spots and n_individuals > 0
        tile_prep.refresh(eng)
        with eng.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM tile_asset_cells WHERE tier = 'individual'")).scalar() == 0
        for lon, lat in spots:
            for z in range(0, 19):
                feats = _features(eng, "assets", z, lon, lat)
                assert all(f["properties"]["tier"] != "individual" for f in feats), z
                assert _features(eng, "assets", z, lon, lat, {"tier": "individual"}) == []

        monkeypatch.setattr(store, "visibility_condition", lambda role, alias="a": ("TRUE", {}))
        tile_prep.refresh(eng, force=True)
        with eng.connect() as conn:
            leaked = conn.execute(text("SELECT sum(n) FROM tile_asset_cells WHERE tier = 'individual' "
                                       "AND z = 0")).scalar()
        assert leaked > 0
    finally:
        eng.dispose()


def test_a_stale_tile_starts_the_rebuild_and_prepare_seeds_the_cache(prep_db, tmp_path, monkeypatch):
    import time

    from click.testing import CliRunner

    from asset_map.cli import cli
    from asset_map.store import change_stamps

    app = _make_app(prep_db, tmp_path / "app")
    client = app.test_client()
    lon, lat = centre(client)
    assert decode(get_tile(client, "assets", 6, lon, lat))
    assert decode(get_tile(client, "need", 6, lon, lat))
    eng = _engine(prep_db)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with eng.connect() as conn:
                if set(tile_prep.state(conn)) == {"shapes", "assets"} and not tile_prep._running:
                    break
            time.sleep(0.2)
        with eng.connect() as conn:
            assert set(tile_prep.state(conn)) == {"shapes", "assets"}
            snap = tile_prep.snapshot(conn)
            assert (snap.stamps, snap.prep) == (change_stamps.stamps(conn), tile_prep.state(conn))
            assert tile_prep.shapes_current(snap.prep, snap.stamps)
    finally:
        eng.dispose()

    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", prep_db)
    monkeypatch.setenv("ASSET_MAP_VAR_DIR", str(tmp_path / "var"))
    result = CliRunner().invoke(cli, ["tiles", "prepare", "--seed-zoom", "6"])
    assert result.exit_code == 0, result.output
    assert "seeded" in result.output
    seeded = list((tmp_path / "var" / "tiles").rglob("*.mvt.gz"))
    assert {p.parts[-4] for p in seeded} == {"need", "districts", "assets"}
    # The server reads what was seeded.
    served = _make_app(prep_db, tmp_path / "var", TILE_PREP=0).test_client()
    one = next(p for p in seeded if p.parts[-4] == "assets" and p.stat().st_size)
    z, (x, y) = int(one.parts[-2]), map(int, one.name.split(".")[0].split("-"))
    assert mapbox_vector_tile.decode(gzip.decompress(one.read_bytes()))["assets"]["features"]
    one.write_bytes(gzip.compress(b"seeded"))
    assert served.get(f"/tiles/assets/{z}/{x}/{y}.mvt").data == b"seeded"
