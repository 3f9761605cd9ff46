"""One asset as its page shows it (``/assets/<id>``): its fields as the viewer's role may see them, its district
and LSOAs with the need decile of its area, the nearest other assets, its history and (for officers) the overrides
that keep edits through re-imports. Who sees what is decided by ``asset_map.store.assets`` (visibility, contact
columns) and ``asset_map.privacy`` (history); nothing here decides it again.

Everything is read in one statement (one round trip): the page is opened far more often than anything on it
changes, and each extra query costs a round trip and a pool checkout under load.
"""

import json
from datetime import datetime

from sqlalchemy import text

from asset_map import privacy
from asset_map.errors import NotFound
from asset_map.store.assets import ASSET_COLUMNS, AssetFilter, STATUSES, role_rank, visible_columns, \
    visibility_condition

NEARBY = 8
HISTORY_LIMIT = 100
_EXTRA = ["geocode_quality", "area_flag", "withdrawn_at", "version", "source_key"]


def _sql(role):
    cols = visible_columns([c for c in ASSET_COLUMNS if c != "id"] + _EXTRA, role)
    condition, params = visibility_condition(role, "a")
    if role_rank(role) < role_rank("officer"):
        condition += " AND a.withdrawn_at IS NULL"
    # The nearby assets as the same role may see them (the map's rule: open, temporary and seasonal ones).
    near_where, near_params = AssetFilter(status=STATUSES[:3]).where(role=role, alias="x")
    # Candidates by KNN on the GiST index (degrees), then exact metres in EPSG:27700: the same method as
    # asset_map.maps.near. The outer point is a parameter of the lateral subquery, so the index orders the scan.
    nearby = (f"SELECT COALESCE(json_agg(n ORDER BY n.distance_m, n.id), '[]') FROM ("
              f"SELECT c.id, c.name, c.category, c.status, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, "
              f"ST_Distance(ST_Transform(c.geom, 27700), ST_Transform(a.geom, 27700)) AS distance_m FROM ("
              f"SELECT x.id, x.name, x.category, x.status, x.geom FROM assets x WHERE {near_where} "
              f"AND x.geom IS NOT NULL AND x.id <> a.id ORDER BY x.geom <-> a.geom LIMIT {NEARBY * 3 + 20}) c "
              f"ORDER BY distance_m, c.id LIMIT {NEARBY}) n")
    versions = ("SELECT COALESCE(json_agg(v ORDER BY v.version DESC), '[]') FROM ("
                "SELECT v.version, v.at, v.actor, v.action, v.changes, v.reason, v.import_id, i.source_file "
                "FROM asset_versions v LEFT JOIN register_imports i ON i.id = v.import_id "
                f"WHERE v.asset_id = a.id ORDER BY v.version DESC LIMIT {HISTORY_LIMIT}) v")
    kept = ("(SELECT COALESCE(json_agg(o ORDER BY o.field), '[]') FROM (SELECT id, register, row_key, field, value, "
            "base, conflict, actor, at, reason FROM asset_overrides WHERE asset_id = a.id AND revoked_at IS NULL) o)"
            if role_rank(role) >= role_rank("officer") else "'[]'::json")
    # Names and deciles as scalar subqueries, not joins: each is planned on its own, where seven joined tables cost
    # the planner several milliseconds per execution (more than the execution) until a generic plan is cached.
    sql = (f"SELECT a.id, {', '.join('a.' + c for c in cols)}, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat, "
           f"(SELECT name FROM districts WHERE code = a.district_code) AS district_name, "
           f"(SELECT name FROM areas WHERE code = a.lsoa11_code AND vintage = 2011) AS lsoa11_name, "
           f"(SELECT name FROM areas WHERE code = a.lsoa21_code AND vintage = 2021) AS lsoa21_name, "
           f"(SELECT kind FROM registers WHERE name = a.register) AS register_kind, "
           f"(SELECT decile FROM need_indicators WHERE area_code = a.lsoa21_code AND indicator = :ind "
           f"AND vintage = 2025 LIMIT 1) AS decile21, "
           f"(SELECT decile FROM need_indicators WHERE area_code = a.lsoa11_code AND indicator = :ind "
           f"AND vintage = 2019 LIMIT 1) AS decile11, "
           f"CASE WHEN a.geom IS NULL THEN '[]'::json ELSE ({nearby}) END AS nearby, "
           f"({versions}) AS versions, {kept} AS overrides, "
           f"EXISTS (SELECT 1 FROM network_loads WHERE mode = 'walk') AS walk_network "
           # One parameter type whatever the id's size, so each connection prepares one statement, not one per
           # integer width (psycopg sends small ints as int2).
           f"FROM assets a WHERE a.id = CAST(:id AS bigint) AND {condition}")
    return text(sql), {**params, **near_params}


def load(engine, asset_id, *, role, need=("imd", 2025)):
    """Everything the page shows, as a dict; NotFound when there is no such asset *or* the role may not see it (the
    two look the same, so a page never tells an individual's id exists)."""
    sql, params = _sql(role)
    with engine.connect() as conn:
        row = conn.execute(sql, {**params, "id": int(asset_id), "ind": need[0]}).mappings().first()
    if row is None:
        msg = f"There is no asset {asset_id}."
        raise NotFound(msg)
    asset = dict(row)
    asset["versions"] = privacy.history_for(role, [_timed(v) for v in _json(asset["versions"])])
    asset["overrides"] = [_timed(o) for o in _json(asset["overrides"])]
    asset["nearby"] = _json(asset["nearby"])
    return asset


def _json(value):
    return json.loads(value) if isinstance(value, str) else (value or [])


def _timed(row):
    """A row of json_agg with its ``at`` a datetime again (JSON has no timestamps)."""
    if isinstance(row.get("at"), str):
        row["at"] = datetime.fromisoformat(row["at"])
    return row
