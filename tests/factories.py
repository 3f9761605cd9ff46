"""Test data in the store without the register importer: a synthetic county whose register rows are placed from
their own lon/lat (or their postcode's point) and written with the store's bulk upsert.

For tests of the map, exports, API and gap analysis, which need assets but are not about importing them. The
placement is the benchmarks' (asset_map.bench.data), so tests and benchmarks build the same data.
"""

from asset_map import synth
from asset_map.bench.data import placed_assets
from asset_map.reference.pack import load_pack
from asset_map.store import assets

__all__ = ["load_synthetic", "placed_assets"]


def load_synthetic(engine, tmp_path, *, areas=60, assets_n=300, seed=1, as_of=None):
    """Load a synthetic county's reference data and its assets; returns the county."""
    county = synth.generate(areas=areas, assets=assets_n, seed=seed, as_of=as_of)
    load_pack(engine, county.write(tmp_path / f"synth-{seed}"))
    gdf = placed_assets(county)
    with engine.begin() as conn:
        for name in gdf["register"].unique():
            assets.ensure_register(conn, name)
        assets.upsert(conn, gdf)
    return county
