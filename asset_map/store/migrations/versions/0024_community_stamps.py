"""Change stamps for what waits for moderators: every statement that writes ``suggestions`` or ``pending_offers``
adds a ``tile_changes`` row of family ``community`` (the trigger function of 0015), so the moderation queue can be
kept in memory until one of them changes."""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

_TABLES = ("suggestions", "pending_offers")


def upgrade():
    op.execute("INSERT INTO tile_changes (family) VALUES ('community')")
    for table in _TABLES:
        op.execute(f"CREATE TRIGGER tr_{table}_tile_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                   f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION asset_map_tile_change('community')")


def downgrade():
    for table in _TABLES:
        op.execute(f"DROP TRIGGER tr_{table}_tile_change ON {table}")
    op.execute("DELETE FROM tile_changes WHERE family = 'community'")
