"""One asset as its page shows it (``/assets/<id>``): its fields as the viewer's role may see them, its district
and LSOAs with the need decile of its area, the nearest other assets, its history and (for officers) the overrides
that keep edits through re-imports. Who sees what is decided by ``asset_map.store.assets`` (visibility, contact
columns) and ``asset_map.privacy`` (history); nothing here decides it again.
"""

from sqlalchemy import text

from asset_map import privacy
from asset_map.errors import NotFound
from asset_map.maps import near
from asset_map.registers import overrides
from asset_map.store import history
from asset_map.store.assets import ASSET_COLUMNS, AssetFilter, STATUSES, role_rank, visible_columns, \
    visibility_condition

NEARBY = 8
_EXTRA = ["geocode_quality", "area_flag", "withdrawn_at", "version", "source_key"]


def load(engine, asset_id, *, role, need=("imd", 2025)):
    """Everything the page shows, as a dict; NotFound when there is no such asset *or* the role may not see it (the
    two look the same, so a page never tells an individual's id exists)."""
    cols = visible_columns([c for c in ASSET_COLUMNS if c != "id"] + _EXTRA, role)
    condition, params = visibility_condition(role, "a")
    if role_rank(role) < role_rank("officer"):
        condition += " AND a.withdrawn_at IS NULL"
    sql = (f"SELECT a.id, {', '.join('a.' + c for c in cols)}, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat, "
           f"d.name AS district_name, l11.name AS lsoa11_name, l21.name AS lsoa21_name, r.kind AS register_kind, "
           f"n21.decile AS decile21, n11.decile AS decile11 "
           f"FROM assets a LEFT JOIN districts d ON d.code = a.district_code "
           f"LEFT JOIN areas l11 ON l11.code = a.lsoa11_code AND l11.vintage = 2011 "
           f"LEFT JOIN areas l21 ON l21.code = a.lsoa21_code AND l21.vintage = 2021 "
           f"LEFT JOIN registers r ON r.name = a.register "
           f"LEFT JOIN need_indicators n21 ON n21.area_code = a.lsoa21_code AND n21.indicator = :ind "
           f"AND n21.vintage = 2025 "
           f"LEFT JOIN need_indicators n11 ON n11.area_code = a.lsoa11_code AND n11.indicator = :ind "
           f"AND n11.vintage = 2019 "
           f"WHERE a.id = :id AND {condition}")
    with engine.connect() as conn:
        row = conn.execute(text(sql), {**params, "id": int(asset_id), "ind": need[0]}).mappings().first()
        if row is None:
            msg = f"There is no asset {asset_id}."
            raise NotFound(msg)
        asset = dict(row)
        versions = privacy.history_for(role, history.versions(conn, asset["id"], limit=100))
        kept = overrides.of_asset(conn, asset["id"]) if role_rank(role) >= role_rank("officer") else []
    asset["versions"] = versions
    asset["overrides"] = kept
    asset["nearby"] = _nearby(engine, asset, role)
    return asset


def _nearby(engine, asset, role):
    if asset["lon"] is None:
        return []
    rows = near.nearest(engine, asset["lon"], asset["lat"], AssetFilter(status=STATUSES[:3]), role=role,
                        limit=NEARBY + 1)
    rows = rows[rows["id"] != asset["id"]].head(NEARBY)
    return [{"id": int(r.id), "name": r.name, "category": r.category, "status": r.status, "lon": r.lon,
             "lat": r.lat, "distance_m": float(r.distance_m)} for r in rows.itertuples()]
