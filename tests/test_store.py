from sqlalchemy import text

from asset_map.store.db import current_revision, health


def test_schema_has_spatial_tables_in_4326_with_gist_indexes(engine):
    with engine.connect() as conn:
        cols = conn.execute(text("SELECT f_table_name, srid, type FROM geometry_columns ORDER BY 1")).all()
        gist = {r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_indexes WHERE indexdef ILIKE '%USING gist%'"))}
    tables = {name: (srid, kind) for name, srid, kind in cols}
    assert tables["districts"] == (4326, "MULTIPOLYGON")
    assert tables["areas"] == (4326, "MULTIPOLYGON")
    assert tables["postcodes"] == (4326, "POINT")
    assert tables["assets"] == (4326, "POINT")
    assert {"districts", "areas", "postcodes", "assets", "uprns"} <= gist
    assert current_revision(engine) is not None


def test_health_reports_postgis_and_schema(engine):
    report = health(engine)
    assert report["status"] == "ok"
    assert report["postgis"].startswith("3.")


def test_health_when_database_is_unreachable():
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine

    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", load_settings())
    report = health(dead)
    assert report["status"] == "unavailable"
    assert "cannot be reached" in report["reason"]


def test_local_cluster_lifecycle():
    """The zero-configuration path: initdb (as postgres when root), a port other than 5432, PostGIS, stop. It holds
    people's registers, so unlike the throwaway test clusters it writes durably."""
    import os
    import tempfile

    from asset_map.store.cluster import Cluster

    root = tempfile.mkdtemp(prefix="asset-map-cluster-")
    os.chmod(root, 0o755)
    cluster = Cluster(root)
    try:
        cluster.start()
        assert cluster.running()
        assert cluster.port != 5432
        version = cluster.psql("SELECT postgis_lib_version()", database="asset_map").stdout.strip()
        assert version.startswith("3.")
        assert cluster.psql("SHOW fsync").stdout.strip() == "on"
        cluster.stop()
        assert not cluster.running()
        cluster.start()  # a second start reuses the data directory and port
        assert cluster.running()
    finally:
        cluster.destroy()
