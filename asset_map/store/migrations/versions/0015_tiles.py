"""vector tiles and tables at national scale: change stamps for the tile caches, indexes for every table sort

Revision ID: 0015
Revises: 0010

``tile_changes`` is an append-only log: a statement that writes reference data (districts, areas, need) or assets
adds a row naming the layer family it changes, so a tile cache keyed by ``max(id)`` per family is invalidated by
every load, import, edit or withdrawal, whichever code path wrote it. Appending (rather than bumping one counter row)
takes no row lock, so concurrent imports of different registers do not queue behind each other. A partition
attached by the bulk import path (store.partitions) fires no trigger on ``assets``: that path appends itself.

The asset table (/assets) pages by keyset on (sort column, id). Each column offered as a sort has an index that
matches it for what the public sees (partial: no individuals, public, not withdrawn, the privacy rule of
store.assets.visibility_condition). Partial matters: the table is partitioned by register, and a full index would
make every page walk a register of individuals to its end looking for a row the public may see. Signed-in roles
sort by name on a full index. All are created on the partitioned parent, so every register's partition gets them
(store.partitions copies them to new partitions).
"""
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None

_FAMILIES = {"reference": ("districts", "areas", "need_indicators"), "assets": ("assets",)}
SORT_COLUMNS = ("name", "tier", "category", "postcode", "district_code", "status", "last_verified")
# Literally the conditions store.assets.AssetFilter.where() writes for the public (so the planner can prove the
# query implies it).
PUBLIC = "tier <> 'individual' AND visibility = 'public' AND withdrawn_at IS NULL"


def upgrade():
    op.execute("CREATE TABLE tile_changes (id bigserial PRIMARY KEY, family text NOT NULL, "
               "at timestamptz NOT NULL DEFAULT now())")
    op.execute("CREATE INDEX ix_tile_changes_family_id ON tile_changes (family, id)")
    op.execute("INSERT INTO tile_changes (family) VALUES ('reference'), ('assets')")
    op.execute("""
        CREATE FUNCTION asset_map_tile_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO tile_changes (family) VALUES (TG_ARGV[0]);
            RETURN NULL;
        END $$""")
    for family, tables in _FAMILIES.items():
        for table in tables:
            op.execute(f"CREATE TRIGGER tr_{table}_tile_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                       f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION asset_map_tile_change('{family}')")
    op.execute("CREATE INDEX ix_assets_sort_name ON assets (name, id)")
    for column in SORT_COLUMNS:
        op.execute(f"CREATE INDEX ix_assets_public_sort_{column} ON assets ({column}, id) WHERE {PUBLIC}")


def downgrade():
    op.execute("DROP INDEX ix_assets_sort_name")
    for column in SORT_COLUMNS:
        op.execute(f"DROP INDEX ix_assets_public_sort_{column}")
    for tables in _FAMILIES.values():
        for table in tables:
            op.execute(f"DROP TRIGGER tr_{table}_tile_change ON {table}")
    op.execute("DROP FUNCTION asset_map_tile_change()")
    op.execute("DROP TABLE tile_changes")
