"""Geographies are reference data too: every statement that writes ``geographies`` or ``geography_areas`` adds a
``tile_changes`` row of family ``reference`` (the trigger function of 0015), so answers kept under the reference
stamp (the filter form's area list on a kept table page, the explorer's summaries) see a geography loaded or drawn.
``asset_areas`` is left out: it changes with the assets, whose own stamp moves in the same import."""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_TABLES = ("geographies", "geography_areas")


def upgrade():
    for table in _TABLES:
        op.execute(f"CREATE TRIGGER tr_{table}_tile_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                   f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION asset_map_tile_change('reference')")


def downgrade():
    for table in _TABLES:
        op.execute(f"DROP TRIGGER tr_{table}_tile_change ON {table}")
