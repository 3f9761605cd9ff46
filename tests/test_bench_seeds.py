"""The benchmarks that seed assets with plain SQL (not through the importer) write them into partitions of their own,
as every writer of ``assets`` must since migration 0009."""

from datetime import date

from sqlalchemy import text

from asset_map import synth
from asset_map.tools.bench import exports, gaps


def test_gap_benchmark_seed_loads_every_register(engine, tmp_path):
    county = synth.generate(areas=30, assets=60, seed=3, as_of=date(2025, 6, 1))
    gaps._load(engine, county, tmp_path)
    with engine.connect() as conn:
        by_register = dict(conn.execute(text("SELECT register, count(*) FROM assets GROUP BY register")).all())
    assert set(by_register) == set(county.registers) and all(n > 0 for n in by_register.values())


def test_export_benchmark_seed_places_the_assets_asked_for(db_url, tmp_path):
    extent, count = exports._seed(db_url, tmp_path, 40, 30)
    assert count == 40 and extent[0] < extent[2]
