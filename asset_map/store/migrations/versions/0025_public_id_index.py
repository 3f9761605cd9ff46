"""The public's assets in id order: OGC items pages are ordered by id, and without an index of the public rows the
page of a district scanned a register of individuals whole (20,000 index entries, none of them the public's) before
it knew it had nothing from there: 17 ms of a 3 ms query. The partial index of a register of individuals is empty."""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

# Literally the conditions store.assets.AssetFilter.where() writes for the public (as in 0015), so the planner can
# prove a query implies it.
PUBLIC = "tier <> 'individual' AND visibility = 'public' AND withdrawn_at IS NULL"


def upgrade():
    op.execute(f"CREATE INDEX ix_assets_public_id ON assets (id) WHERE {PUBLIC}")


def downgrade():
    op.execute("DROP INDEX ix_assets_public_id")
