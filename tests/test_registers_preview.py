"""The preview: a dry run of the real importer that skips what only the import needs (history, indexes, area links,
quarantine rows, the duplicate search) and still shows exactly what the import then does: the counts, the counts
by district and tier, the first problem rows and the placed points; and it leaves the database as it was."""

import shutil

import pandas as pd
import pytest
from sqlalchemy import text

from asset_map.registers import importer, preview
from asset_map.store import partitions
from tests.conftest import copied_pack, engine_over

FILE = "libraries_2023.csv"
COUNTS = ("rows_read", "inserted", "updated", "unchanged", "withdrawn", "quarantined", "imported")


@pytest.fixture(scope="module")
def engine(pg_server, pack_db):
    """A copy of the pack database without the 2021 NSPL extract, so a row of the file is quarantined (its
    postcode is unknown to the 2014 gazetteer)."""
    with copied_pack(pg_server, pack_db) as url, engine_over(url) as eng:
        with eng.begin() as conn:
            conn.execute(text("DELETE FROM postcodes WHERE source = 'nspl'"))
        yield eng


@pytest.fixture(scope="module")
def files(pack, tmp_path_factory):
    """The register, and a new version of it: a row dropped, one renamed."""
    folder = tmp_path_factory.mktemp("preview")
    first = folder / FILE
    shutil.copy(pack / "registers" / FILE, first)
    frame = pd.read_csv(first, dtype=str, keep_default_na=False)
    frame.loc[1, "name"] = frame.loc[1, "name"] + " and Hub"
    second = folder / "second" / FILE
    second.parent.mkdir()
    frame.drop(index=2).to_csv(second, index=False)
    return first, second


def _preview(engine, path, register):
    return preview.preview(engine, path, register=register, mapping=None, settings=None, source_name=path.name)


def _state(engine):
    """What a dry run must leave as it was."""
    with engine.connect() as conn:
        return {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                for table in ("assets", "asset_versions", "register_imports", "registers", "quarantine",
                              "asset_areas", "audit_log", "pg_class")}


def _by_area(engine, register):
    """The register's assets by district and tier, as the preview counts the new ones."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT a.district_code, d.name AS district_name, a.tier, count(*) AS n FROM assets a "
            "LEFT JOIN districts d ON d.code = a.district_code WHERE a.register = :r AND a.withdrawn_at IS NULL "
            "GROUP BY a.district_code, d.name, a.tier ORDER BY a.district_code, a.tier"), {"r": register}).mappings()]


def test_the_preview_of_a_new_register_is_what_the_import_then_does(engine, files):
    first, _ = files
    before = _state(engine)
    seen = _preview(engine, first, "prev-new")
    assert _state(engine) == before
    with engine.connect() as conn:
        assert not partitions.existing(conn, ["prev-new"])
    report = importer.import_register(engine, first, register="prev-new")
    assert report.quarantined >= 1 and report.inserted > 20
    assert [getattr(seen["report"], c) for c in COUNTS] == [getattr(report, c) for c in COUNTS]
    assert seen["problems"] == report.problems[:preview.PROBLEM_ROWS] and seen["problems"]
    assert [{k: r[k] for k in ("district_code", "district_name", "tier")} | {"n": r["inserted"]}
            for r in seen["by_area"]] == _by_area(engine, "prev-new")
    assert all(r["updated"] == r["unchanged"] == r["withdrawn"] == 0 for r in seen["by_area"])
    with engine.connect() as conn:
        placed = [[round(x, 6), round(y, 6), name] for x, y, name in conn.execute(text(
            "SELECT ST_X(geom), ST_Y(geom), name FROM assets WHERE register = 'prev-new' AND geom IS NOT NULL "
            "ORDER BY id"))]
        versions = conn.execute(text("SELECT count(*) FROM asset_versions WHERE register = 'prev-new'")).scalar()
    assert seen["points"] == placed and versions == report.inserted


def test_the_preview_of_a_new_version_is_what_the_import_then_does(engine, files):
    first, second = files
    importer.import_register(engine, first, register="prev-again")
    before = _state(engine)
    seen = _preview(engine, second, "prev-again")
    assert _state(engine) == before
    report = importer.import_register(engine, second, register="prev-again")
    assert (report.updated, report.withdrawn) != (0, 0)
    assert [getattr(seen["report"], c) for c in COUNTS] == [getattr(report, c) for c in COUNTS]
    assert sum(r["updated"] for r in seen["by_area"]) == report.updated
    assert sum(r["withdrawn"] for r in seen["by_area"]) == report.withdrawn
    assert sum(r["unchanged"] for r in seen["by_area"]) == report.unchanged
    assert seen["problems"] == report.problems[:preview.PROBLEM_ROWS]
