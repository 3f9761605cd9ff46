"""Export slots: a bounded number of downloads per process, a polite 503 with Retry-After when all are taken, and
each slot given back when its stream ends (so one download after another never waits)."""

from asset_map.web.slots import slots
from tests.conftest import make_app


def test_exports_take_a_slot_and_give_it_back(db_url, tmp_path):
    app = make_app(db_url, tmp_path, EXPORT_SLOTS=1, EXPORT_WAIT_S=0)
    web = app.test_client()
    for fmt in ("geojson", "csv", "gpkg", "geojson"):
        res = web.get(f"/export/assets.{fmt}")
        assert res.status_code == 200, (fmt, res.get_data(as_text=True)[:200])
        res.get_data()
        res.close()
    with app.app_context():
        held = slots("export").acquire()
    try:
        busy = web.get("/export/assets.geojson")
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
        assert "try again in 5 seconds" in busy.get_json()["description"]
        # The map keeps answering while every export slot is taken.
        assert web.get("/api/assets.geojson").status_code == 200
    finally:
        held.release()
    assert web.get("/export/assets.geojson").status_code == 200


def test_a_stream_abandoned_halfway_gives_its_slot_back(db_url, tmp_path):
    app = make_app(db_url, tmp_path, EXPORT_SLOTS=1, EXPORT_WAIT_S=0)
    web = app.test_client()
    res = web.get("/export/assets.geojson", buffered=False)
    assert res.status_code == 200
    res.close()  # the client went away
    assert web.get("/export/assets.csv").status_code == 200
