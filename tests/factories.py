"""Test data in the store without the register importer: a synthetic county whose register rows are placed from
their own lon/lat (or their postcode's point) and written with the store's bulk upsert.

For tests of the map, exports, API and gap analysis, which need assets but are not about importing them. The
loading is the benchmarks' (asset_map.tools.bench.data), so tests and benchmarks build the same data.
"""

from asset_map.tools.bench.data import load_county, placed_assets

__all__ = ["load_synthetic", "placed_assets"]


def load_synthetic(engine, tmp_path, *, areas=60, assets_n=300, seed=1, as_of=None):
    """Load a synthetic county's reference data and its assets; returns the county. ``as_of`` None: the
    generator's fixed reference date, so the same seed gives the same stale share on any day."""
    county, _, _ = load_county(engine, tmp_path, areas=areas, assets_n=assets_n, seed=seed, as_of=as_of)
    return county
