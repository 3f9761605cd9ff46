"""Possible duplicates across registers: the same source key or UPRN, or the same normalised name within 50 m.
Reported on the import and listed on demand, never merged. Individuals are left out: a pair of people's names is
personal data in a report meant to be shared among officers (asset_map.privacy).
"""

from sqlalchemy import text

from asset_map.registers.import_report import DUPLICATE_COLUMNS
from asset_map.store import partitions


def cross_register_duplicates(conn, register, *, within_m=50):
    """Every asset of ``register`` that looks like an asset of another register: the same source key or UPRN, or the
    same normalised name within ``within_m`` metres. One dict per pair (DUPLICATE_COLUMNS) with its strongest reason
    (source key, then UPRN, then name and place), by row. Reported, never merged."""
    others = conn.execute(text("SELECT EXISTS (SELECT 1 FROM registers WHERE name <> :r)"), {"r": register}).scalar()
    if not others:
        return []
    _analyse_if_new(conn, register)
    with conn.connection.driver_connection.cursor() as cur:
        # The hash joins below hold a register's assets: in the default work_mem they spill to disk in batches.
        # Compiling the big statement (JIT) costs more than it saves. Both for this transaction only.
        cur.execute("SELECT set_config('work_mem', '64MB', true), set_config('jit', 'off', true)")
        cur.execute(_duplicates_sql(within_m), {"r": register})
        return [dict(zip(DUPLICATE_COLUMNS, row)) for row in cur.fetchall()]


def _analyse_if_new(conn, register):
    """Planner statistics for a register stored for the first time in this transaction (autovacuum only gets to
    it after the commit): without them the planner takes a million new assets for a few, and hashes them rather
    than the other registers'. The columns the duplicate search filters and joins on are enough, and quick."""
    table = partitions.partition_name(register)
    fresh = conn.execute(text("SELECT to_regclass(:t) IS NOT NULL AND NOT EXISTS "
                              "(SELECT 1 FROM pg_stats WHERE schemaname = current_schema() AND tablename = :t)"),
                         {"t": table}).scalar()
    if fresh:
        conn.execute(text(f'ANALYZE "{table}" (register, source_key, uprn, withdrawn_at)'))


def _duplicates_sql(within_m):
    name = "btrim(regexp_replace(lower({}.name), '[^a-z0-9]+', ' ', 'g'))"
    tests = {  # strongest first
        "same source key": "b.source_key = a.source_key",
        # Equal UPRNs are never null; saying so lets the planner see from its statistics that registers without
        # UPRNs have nothing to join, rather than sort a million assets by a column that is all null.
        "same UPRN": "b.uprn = a.uprn AND a.uprn IS NOT NULL AND b.uprn IS NOT NULL",
        # Names first (a hash join, each name normalised once), then the distance on the spheroid: driving this
        # from the spatial index instead probes every asset's crowded neighbourhood.
        f"same name within {within_m} m": (f"{name.format('b')} = {name.format('a')} AND "
                                           f"ST_DWithin(a.geom::geography, b.geom::geography, {float(within_m)})"),
    }
    # Equi-joins (hashable) rather than one join on OR, which would compare every pair of assets. Saying
    # `b.register <> :r` (not `<> a.register`) lets the planner size, and hash, the other registers' assets alone,
    # rather than every asset paired with the same ones of this register.
    parts = [f"""SELECT a.source_row, a.name, b.register AS other_register, b.source_row AS other_row,
                        b.name AS other_name, '{reason}' AS reason, {strength} AS strength
                 FROM assets a JOIN assets b ON {condition}
                 WHERE a.register = %(r)s AND a.withdrawn_at IS NULL AND a.tier <> 'individual'
                   AND b.register <> %(r)s AND b.withdrawn_at IS NULL AND b.tier <> 'individual'"""
             for strength, (reason, condition) in enumerate(tests.items())]
    # One line per pair: the strongest reason.
    return (f"SELECT DISTINCT ON (source_row, other_register, other_row) {', '.join(DUPLICATE_COLUMNS)} "
            f"FROM ({' UNION ALL '.join(parts)}) pairs ORDER BY source_row, other_register, other_row, strength")
