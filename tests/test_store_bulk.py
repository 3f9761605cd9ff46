"""The bulk write: one partition of ``assets`` per register, filled by COPY from Arrow, and the same stored values
whether a register is written for the first time (its own new partition) or merged into an existing one."""

import datetime

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Point
from sqlalchemy import text

from asset_map.store import assets, bulk, partitions

TRICKY = [
    dict(name='The "Quoted", Hall', offers='say "hi"; back\\slash ; a,b; {x};; ', description="",
         uprn=100031234567.0, consent=None, last_verified=datetime.date(2025, 1, 31), lon=-1.69, lat=52.63),
    dict(name="Line\nbreak Café", offers="", description="multi\nline, with \"quotes\"", uprn=None, consent=True,
         last_verified="2024-02-29", lon=-2.1, lat=52.9),
    dict(name="Plain", offers=None, description=None, uprn="12", consent=False, last_verified=None,
         lon=-1.95, lat=52.71),
]
STORED = ("source_row, match_key, tier, category, name, description, offers, uprn, consent, last_verified, "
          "visibility, properties, ST_AsEWKT(geom)")


def frame(rows, register):
    base = {c: None for c in assets.WRITE_COLUMNS}
    base.update(register=register, tier="association", category="community_centre", status="open",
                visibility="public", properties='{"Ward": "Glascote"}')
    records = [{**base, **r, "source_row": i + 2, "match_key": f"k{i}"} for i, r in enumerate(rows)]
    geoms = [Point(r.pop("lon"), r.pop("lat")) for r in records]
    return gpd.GeoDataFrame(records, geometry=geoms, crs=4326)


def stored(engine, register):
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT {STORED} FROM assets WHERE register = :r ORDER BY source_row"),
                            {"r": register}).all()


def partition_of(engine, register):
    with engine.connect() as conn:
        return conn.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                 "WHERE i.inhparent = 'assets'::regclass AND c.relname = :n"),
                            {"n": partitions.partition_name(register)}).scalar()


def test_a_new_partition_and_a_merge_store_the_same_values(engine):
    with engine.begin() as conn:
        assert assets.sync(conn, frame(TRICKY, "first"), register="first")["inserted"] == 3
        # "second" exists already (one row), so the rest goes through the staged merge.
        assets.upsert(conn, frame(TRICKY[:1], "second"))
    with engine.begin() as conn:
        counts = assets.sync(conn, frame(TRICKY, "second"), register="second")
    assert counts == {"inserted": 2, "updated": 0, "unchanged": 1, "withdrawn": 0}
    first, second = stored(engine, "first"), stored(engine, "second")
    assert first == second
    assert first[0].offers == ['say "hi"', "back\\slash", "a,b", "{x}"]
    assert first[0].description is None and first[0].uprn == 100031234567
    assert first[1].name == "Line\nbreak Café" and first[1].offers == []
    assert first[2].uprn == 12 and first[2].consent is False and first[2].offers == []
    assert first[0].last_verified == datetime.date(2025, 1, 31) and first[0].properties == {"Ward": "Glascote"}
    assert first[0].st_asewkt == "SRID=4326;POINT(-1.69 52.63)"


def test_each_register_has_its_own_partition_and_a_failed_write_leaves_none(engine):
    with engine.begin() as conn:
        assets.upsert(conn, frame(TRICKY, "kept"))
    assert partition_of(engine, "kept") == partitions.partition_name("kept")
    with pytest.raises(RuntimeError), engine.begin() as conn:
        assets.upsert(conn, frame(TRICKY, "lost"))
        raise RuntimeError("a crash after the write")
    assert partition_of(engine, "lost") is None and stored(engine, "lost") == []
    with engine.connect() as conn:
        plan = "\n".join(r[0] for r in conn.execute(text(
            "EXPLAIN SELECT * FROM assets WHERE register = 'kept' AND match_key = 'k0'")))
    # Queries by register read that register's partition only.
    assert partitions.partition_name("kept") in plan and "Append" not in plan


def test_points_are_written_as_the_ewkb_shapely_writes():
    rng = np.random.default_rng(3)
    points = shapely.points(rng.uniform(-6, 2, 500), rng.uniform(49, 56, 500))
    expected = shapely.to_wkb(shapely.set_srid(points, 4326), hex=True, include_srid=True)
    written = bulk.points_ewkb(np.append(points, [None]), 4326).to_pylist()
    assert [w.upper() for w in written[:-1]] == list(expected)
    assert written[-1] is None


def test_blank_text_is_null_and_mixed_columns_go_as_text():
    import pandas as pd

    table = bulk.arrow_table(pd.DataFrame({"a": ["x", "", None], "b": [1, "two", datetime.date(2025, 1, 2)]}))
    assert table.column("a").to_pylist() == ["x", None, None]
    assert table.column("b").to_pylist() == ["1", "two", "2025-01-02"]


def _migrate(engine, direction, revision):
    from alembic import command

    from asset_map.store.db import alembic_config

    with engine.begin() as conn:
        getattr(command, direction)(alembic_config(conn), revision)


def test_migration_0009_moves_every_register_into_its_partition_and_back(engine):
    _migrate(engine, "downgrade", "0008")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO assets (register, match_key, tier, category, name, geom) SELECT r, 'k' || i, "
            "'association', 'park', 'Park ' || i, ST_SetSRID(ST_MakePoint(-2 + i / 1000.0, 52.7), 4326) "
            "FROM unnest(ARRAY['Libraries 2023', 'it''s: odd']) r, generate_series(1, 50) i"))
        before = conn.execute(text("SELECT id, register, match_key, ST_AsEWKT(geom) FROM assets ORDER BY id")).all()
    _migrate(engine, "upgrade", "head")
    assert partition_of(engine, "Libraries 2023") and partition_of(engine, "it's: odd")
    with engine.begin() as conn:
        after = conn.execute(text("SELECT id, register, match_key, ST_AsEWKT(geom) FROM assets ORDER BY id")).all()
        assets.upsert(conn, frame(TRICKY, "it's: odd"))
        # k0 is new (an insert, its id from the sequence); k1 and k2 update two of the migrated parks.
        new_id = conn.execute(text("SELECT id FROM assets WHERE register = 'it''s: odd' AND match_key = 'k0'")).scalar()
    assert after == before and new_id > before[-1].id
    _migrate(engine, "downgrade", "0008")
    with engine.connect() as conn:
        kind = conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'assets'")).scalar()
        assert kind == "r" and conn.execute(text("SELECT count(*) FROM assets")).scalar() == 101
    _migrate(engine, "upgrade", "head")
