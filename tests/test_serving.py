"""Production serving: compression, static cache headers, and a slow query cancelled into a clear 504."""

import gzip
import json
import time

from flask import Response, stream_with_context
from sqlalchemy import text

from asset_map.web import extensions
from tests.conftest import make_app

GZIP = {"Accept-Encoding": "gzip"}


def _feature_collection(n):
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": f"Asset {i}", "category": "library"},
         "geometry": {"type": "Point", "coordinates": [-2.0 + i / 1000, 52.8]}} for i in range(n)]}


def _app_with_json_routes(tmp_path):
    # The routes that will serve GeoJSON (OGC items, exports) live in other modules; these stand in for them so
    # that the compression rules are tested on their own.
    app = make_app("postgresql+psycopg://postgres@127.0.0.1:1/none", tmp_path)

    @app.get("/api/test/features")
    def features():
        return Response(json.dumps(_feature_collection(200)), mimetype="application/geo+json")

    @app.get("/api/test/tiny")
    def tiny():
        return {"ok": True}

    @app.get("/api/test/stream")
    def stream():
        def chunks():
            for i in range(50):
                yield json.dumps(_feature_collection(10)) + "\n"
        return Response(stream_with_context(chunks()), mimetype="application/geo+json")

    return app


def test_geojson_is_gzipped_when_the_client_accepts_it(tmp_path):
    client = _app_with_json_routes(tmp_path).test_client()
    plain = client.get("/api/test/features")
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    zipped = client.get("/api/test/features", headers=GZIP)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert gzip.decompress(zipped.data) == plain.data
    assert len(zipped.data) < len(plain.data) / 5


def test_small_json_is_not_compressed(tmp_path):
    res = _app_with_json_routes(tmp_path).test_client().get("/api/test/tiny", headers=GZIP)
    assert res.get_json() == {"ok": True}
    assert "Content-Encoding" not in res.headers


def test_streamed_geojson_is_gzipped_too(tmp_path):
    client = _app_with_json_routes(tmp_path).test_client()
    zipped = client.get("/api/test/stream", headers=GZIP)
    assert zipped.headers["Content-Encoding"] == "gzip"
    lines = gzip.decompress(zipped.data).decode().splitlines()
    assert len(lines) == 50 and json.loads(lines[0])["type"] == "FeatureCollection"


def test_map_page_is_compressed(pack_client):
    res = pack_client.get("/", headers={"Accept-Encoding": "gzip, br"})
    assert res.status_code == 200
    assert res.headers["Content-Encoding"] in ("gzip", "br")


def test_vendored_files_are_cached_long_and_revalidated_by_etag(tmp_path):
    client = make_app("postgresql+psycopg://postgres@127.0.0.1:1/none", tmp_path).test_client()
    res = client.get("/static/vendor/leaflet/dist/leaflet.js", headers=GZIP)
    assert res.status_code == 200
    assert res.headers["Cache-Control"] == "public, max-age=604800"
    assert res.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(res.data).startswith(b"/* @preserve")
    again = client.get("/static/vendor/leaflet/dist/leaflet.js",
                       headers={**GZIP, "If-None-Match": res.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_own_static_files_are_cached_briefly(tmp_path):
    client = make_app("postgresql+psycopg://postgres@127.0.0.1:1/none", tmp_path, STATIC_MAX_AGE_S=60).test_client()
    res = client.get("/static/css/site.css")
    assert res.headers["Cache-Control"] == "public, max-age=60"
    assert res.headers["ETag"] and res.headers["Last-Modified"]
    assert client.get("/static/css/site.css", headers={"If-None-Match": res.headers["ETag"]}).status_code == 304


def test_slow_query_is_cancelled_into_a_504_and_the_worker_carries_on(db_url, tmp_path, engine):
    app = make_app(db_url, tmp_path, STATEMENT_TIMEOUT_MS=300)

    @app.get("/api/test/slow")
    @app.get("/test/slow-page")
    def slow():
        with extensions.engine().connect() as conn:
            conn.execute(text("SELECT pg_sleep(20)"))
        return {"finished": True}

    client = app.test_client()
    started = time.monotonic()
    res = client.get("/api/test/slow")
    elapsed = time.monotonic() - started
    assert res.status_code == 504
    assert res.get_json()["error"] == "QueryTimeout"
    assert res.get_json()["description"].startswith("This request took too long and was stopped.")
    assert elapsed < 3
    # The server really stopped the query (no pg_sleep left running) and the connection is reusable.
    with engine.connect() as conn:
        running = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(20)%' "
                                    "AND state = 'active'")).scalar()
    assert running == 0
    assert client.get("/healthz").status_code == 200
    page = app.test_client().get("/test/slow-page")
    assert page.status_code == 504 and "<h1>Gateway Timeout</h1>" in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)


def test_unreachable_database_is_a_quick_503_with_retry_after(tmp_path):
    app = make_app("postgresql+psycopg://postgres@127.0.0.1:1/none", tmp_path)

    @app.get("/api/test/count")
    def count():
        from asset_map.store.assets import count

        return {"assets": count(extensions.engine())}

    client = app.test_client()
    api = client.get("/api/test/count")
    assert api.status_code == 503 and api.headers["Retry-After"] == "5"
    assert api.get_json() == {"code": 503, "error": "DatabaseUnavailable",
                              "description": "The database is not available right now. Please try again in a moment."}
    started = time.monotonic()
    res = client.get("/healthz")
    assert time.monotonic() - started < 1
    assert res.status_code == 503 and res.headers["Retry-After"] == "5"
    assert res.get_json()["cause"] == "connection refused: PostgreSQL is not running or not listening"
    page = client.get("/")
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert "<h1>Service Unavailable</h1>" in page.get_data(as_text=True)
    assert "The database is not available right now" in page.get_data(as_text=True)
