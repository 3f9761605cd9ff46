"""Asset history: every change of an asset is a row of ``asset_versions`` written in the transaction that made it,
with who, when, what changed (``{column: [old, new]}``, geometries as WKT) and why.

Imports write their history in bulk SQL (one row per inserted, updated or withdrawn asset, by INSERT ... SELECT next
to the statement that changes the assets), so a million-row import pays one more scan, not a million round trips.
A register is rolled back by a new version of each asset that restores the values it had after an earlier import:
history is never deleted.
"""

from dataclasses import dataclass

from sqlalchemy import text

from asset_map.errors import InputError, NotFound

ACTIONS = ("import", "create", "edit", "verify", "close", "reopen", "withdraw", "restore", "erase", "rollback",
           "quarantine-fix", "override")


@dataclass(frozen=True)
class Stamp:
    """Who makes a change, as what kind of change, and why; ``import_id`` ties it to a row of register_imports."""

    actor: str | None = None
    action: str = "import"
    reason: str | None = None
    import_id: int | None = None

    def __post_init__(self):
        if self.action not in ACTIONS:
            msg = f"unknown history action {self.action!r}"
            raise ValueError(msg)

    def params(self):
        return {"h_actor": self.actor, "h_action": self.action, "h_reason": self.reason, "h_import": self.import_id}


VALUES = "(:h_actor, :h_action, :h_reason, CAST(:h_import AS bigint))"


def _json(alias, column):
    if column == "geom":
        return f"to_jsonb(ST_AsText({alias}.geom))"
    return f"to_jsonb({alias}.{column})"


def diff_sql(old, new, columns):
    """A jsonb expression ``{column: [old, new]}`` of the columns that differ between rows ``old`` and ``new``."""
    pairs = ", ".join(
        f"'{c}', CASE WHEN {old}.{c} IS DISTINCT FROM {new}.{c} THEN jsonb_build_array({_json(old, c)}, "
        f"{_json(new, c)}) END" for c in columns)
    return f"jsonb_strip_nulls(jsonb_build_object({pairs}))"


def created_from_table(conn, table, stamp, *, where="TRUE", params=None):
    """Version 1 of every asset in ``table`` (a register's new partition, or ``assets`` with ``where``)."""
    conn.execute(text(
        f"INSERT INTO asset_versions (asset_id, version, register, actor, action, reason, import_id) "
        f'SELECT id, 1, register, h.* FROM "{table}", (VALUES {VALUES}) AS h WHERE {where}'),
        {**stamp.params(), **(params or {})})


def merged_cte(written, columns):
    """A CTE to follow a merge's CTE ``written`` (the rows it wrote, ``RETURNING assets.*`` and ``inserted``): a
    version of each, {column: [old, new]} for an update, version 1 for an insert. Every part of one statement sees
    the same snapshot, so ``assets`` read here still holds the old values of the rows the merge has just updated:
    the old values are looked up by primary key for the written rows only, and an unchanged re-import costs nothing
    more."""
    return (f", h AS (INSERT INTO asset_versions (asset_id, version, register, actor, action, reason, import_id, "
            f"changes) SELECT {written}.id, {written}.version, {written}.register, v.*, CASE WHEN {written}.inserted "
            f"THEN '{{}}'::jsonb ELSE {diff_sql('o', written, columns)} END "
            f"FROM {written} LEFT JOIN assets o ON NOT {written}.inserted AND o.id = {written}.id "
            f"AND o.register = {written}.register, (VALUES {VALUES}) AS v)")


def start_import(conn, register, *, kind, actor, source_file=None, upload_id=None):
    """A row of register_imports for an import about to be stored; returns its id."""
    return conn.execute(text(
        "INSERT INTO register_imports (register, version, actor, kind, source_file, upload_id) "
        "SELECT CAST(:r AS text), COALESCE((SELECT version FROM registers WHERE name = CAST(:r AS text)), 0) + 1, "
        ":a, :k, :f, CAST(:u AS bigint) RETURNING id"),
        {"r": register, "a": actor, "k": kind, "f": source_file, "u": upload_id}).scalar_one()


def finish_import(conn, import_id, counts):
    import json

    conn.execute(text("UPDATE register_imports SET counts = CAST(:c AS jsonb) WHERE id = :i"),
                 {"c": json.dumps(counts, default=str), "i": import_id})
    # The quarantine as this import leaves it, so a rollback to this import can restore it (migration 0019).
    conn.execute(text(
        "INSERT INTO quarantine_snapshots (import_id, register, source_row, row, problems) "
        "SELECT i.id, q.register, q.source_row, q.row, q.problems FROM register_imports i "
        "JOIN quarantine q ON q.register = i.register WHERE i.id = :i ORDER BY q.id"), {"i": import_id})


def restore_quarantine(conn, register, import_id):
    """Replace the register's quarantine with the one import ``import_id`` left (new rows; the snapshot stays).
    Returns the number of rows restored, or None when that import kept no snapshot (made before migration 0019):
    then the quarantine is left as it is."""
    kept = conn.execute(text("SELECT EXISTS (SELECT 1 FROM quarantine_snapshots WHERE import_id = :i) "
                             "OR COALESCE((counts ->> 'quarantined')::int, -1) = 0 FROM register_imports "
                             "WHERE id = :i AND register = :r"), {"i": import_id, "r": register}).scalar()
    if not kept:
        return None
    conn.execute(text("DELETE FROM quarantine WHERE register = :r"), {"r": register})
    return conn.execute(text(
        "INSERT INTO quarantine (register, source_row, row, problems) SELECT register, source_row, row, problems "
        "FROM quarantine_snapshots WHERE import_id = :i AND register = :r ORDER BY id"),
        {"i": import_id, "r": register}).rowcount


def versions(conn, asset_id, *, limit=200):
    """The asset's versions, newest first, as dicts."""
    rows = conn.execute(text(
        "SELECT v.version, v.at, v.actor, v.action, v.changes, v.reason, v.import_id, i.source_file "
        "FROM asset_versions v LEFT JOIN register_imports i ON i.id = v.import_id "
        "WHERE v.asset_id = :a ORDER BY v.version DESC LIMIT :n"), {"a": asset_id, "n": limit}).mappings().all()
    return [dict(r) for r in rows]


def changes_since(conn, asset_id, version):
    """What changed after ``version``: [{version, at, actor, action, changes}] oldest first (for a refused save)."""
    rows = conn.execute(text(
        "SELECT version, at, actor, action, changes FROM asset_versions WHERE asset_id = :a AND version > :v "
        "ORDER BY version"), {"a": asset_id, "v": version}).mappings().all()
    return [dict(r) for r in rows]


def imports(conn, register, *, limit=100):
    rows = conn.execute(text(
        "SELECT id, version, at, actor, kind, source_file, upload_id, counts FROM register_imports "
        "WHERE register = :r ORDER BY id DESC LIMIT :n"), {"r": register, "n": limit}).mappings().all()
    return [dict(r) for r in rows]


def _cast(column, types):
    if column == "geom":
        return "ST_GeomFromText(r.old #>> '{}', 4326)"
    if column == "offers":
        return "COALESCE(ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(r.old) = 'array' " \
               "THEN r.old END)), '{}')"
    if column == "properties":
        return "COALESCE(r.old, '{}'::jsonb)"
    return f"CAST(r.old #>> '{{}}' AS {types[column]})"


def rollback(conn, register, import_id, stamp):
    """Restore every asset of ``register`` to its values after import ``import_id``: assets created since are
    withdrawn, changes since are undone, as a new version of each asset (action ``rollback``); overrides made since
    are revoked so the next import does not bring them back. Returns counts ``{restored, withdrawn}``."""
    from asset_map.store.models import Asset

    at = conn.execute(text("SELECT at FROM register_imports WHERE id = :i AND register = :r"),
                      {"i": import_id, "r": register}).scalar()
    if at is None:
        msg = f"Register {register!r} has no import number {import_id} to roll back to."
        raise NotFound(msg)
    # Only the columns a version can record (the history's own JSON keys are column names we wrote).
    types = {c.name: c.type.compile(dialect=conn.dialect) for c in Asset.__table__.columns}
    conn.execute(text(
        "CREATE TEMP TABLE _restore ON COMMIT DROP AS "
        "SELECT DISTINCT ON (v.asset_id, c.key) v.asset_id, c.key AS col, c.value -> 0 AS old "
        "FROM asset_versions v, jsonb_each(v.changes) c WHERE v.register = :r AND v.at > :t "
        "ORDER BY v.asset_id, c.key, v.version"), {"r": register, "t": at})
    conn.execute(text("DELETE FROM _restore WHERE col <> ALL(:cols)"), {"cols": list(types)})
    # Assets that did not exist after that import: withdrawn (never deleted), whatever else changed since.
    conn.execute(text(
        "DELETE FROM _restore WHERE asset_id IN (SELECT asset_id FROM asset_versions WHERE register = :r "
        "AND at > :t AND version = 1)"), {"r": register, "t": at})
    conn.execute(text(
        "INSERT INTO _restore (asset_id, col, old) SELECT v.asset_id, 'withdrawn_at', to_jsonb(now()) "
        "FROM asset_versions v JOIN assets a ON a.id = v.asset_id AND a.register = v.register "
        "WHERE v.register = :r AND v.at > :t AND v.version = 1 AND a.withdrawn_at IS NULL"), {"r": register, "t": at})
    current = "CASE r.col WHEN 'geom' THEN to_jsonb(ST_AsText(a.geom)) ELSE to_jsonb(a) -> r.col END"
    conn.execute(text(
        f"DELETE FROM _restore r USING assets a WHERE a.id = r.asset_id AND a.register = :r "
        f"AND ({current}) IS NOT DISTINCT FROM r.old AND r.col <> 'withdrawn_at'"), {"r": register})
    conn.execute(text(
        f"INSERT INTO asset_versions (asset_id, version, register, actor, action, reason, import_id, changes) "
        f"SELECT a.id, a.version + 1, a.register, h.actor, h.action, h.reason, h.import_id, "
        f"jsonb_object_agg(r.col, jsonb_build_array({current}, r.old)) "
        f"FROM _restore r JOIN assets a ON a.id = r.asset_id AND a.register = :r, "
        f"(VALUES {VALUES}) AS h(actor, action, reason, import_id) "
        f"GROUP BY a.id, a.version, a.register, h.actor, h.action, h.reason, h.import_id"),
        {"r": register, **stamp.params()})
    cols = [c for (c,) in conn.execute(text("SELECT DISTINCT col FROM _restore ORDER BY col"))]
    for col in cols:
        conn.execute(text(f"UPDATE assets a SET {col} = {_cast(col, types)} FROM _restore r "
                          f"WHERE r.col = :c AND a.id = r.asset_id AND a.register = :r"), {"c": col, "r": register})
    counts = conn.execute(text(
        "SELECT count(DISTINCT asset_id), count(*) FILTER (WHERE col = 'withdrawn_at' AND old <> 'null'::jsonb) "
        "FROM _restore")).one()
    conn.execute(text(
        "UPDATE assets SET version = version + 1, updated_at = now() WHERE register = :r "
        "AND id IN (SELECT DISTINCT asset_id FROM _restore)"), {"r": register})
    conn.execute(text("UPDATE asset_overrides SET revoked_at = now() WHERE register = :r AND at > :t "
                      "AND revoked_at IS NULL"), {"r": register, "t": at})
    conn.execute(text("DROP TABLE _restore"))
    return {"restored": int(counts[0]), "withdrawn": int(counts[1])}


def erase(conn, asset_id, stamp, *, fields=None):
    """Remove personal values from an asset's history (an individual's erasure, issue 12): the values of ``fields``
    (default: every field) in all its versions become null, the versions themselves (who, when, which fields) stay,
    and a version with ``stamp`` (action ``erase``) records that it was done. Call it in the transaction that erases
    the asset itself."""
    keys = list(fields) if fields else None
    conn.execute(text(
        "UPDATE asset_versions SET changes = (SELECT COALESCE(jsonb_object_agg(c.key, CASE WHEN CAST(:all AS boolean) "
        "OR c.key = ANY(:keys) THEN '[null, null]'::jsonb ELSE c.value END), '{}') FROM jsonb_each(changes) c) "
        "WHERE asset_id = :a"), {"a": asset_id, "all": keys is None, "keys": keys or []})
    conn.execute(text(
        f"INSERT INTO asset_versions (asset_id, version, register, actor, action, reason, import_id) "
        f"SELECT a.id, GREATEST(a.version, COALESCE((SELECT max(version) FROM asset_versions WHERE asset_id = a.id), 0) "
        f"+ 1), a.register, h.* "
        f"FROM assets a, (VALUES {VALUES}) AS h WHERE a.id = :a"), {"a": asset_id, **stamp.params()})


def check_reason(reason, *, required=False):
    reason = (reason or "").strip()
    if required and not reason:
        raise InputError("Say why (a short reason is kept in the history).")
    if len(reason) > 500:
        raise InputError("The reason is too long: at most 500 characters.")
    return reason or None
