"""Indexes of the public's assets only (as the public and organisers may see them): by id, for OGC items pages, and
by point, for "nearest" (an asset page's nearby assets, a suggestion's neighbours, "what is near me").

Without them a query for the public walked a register of individuals whole before it knew nothing there was
theirs: an OGC page of a district spent 14 of its 17 ms in 20,000 individuals' index entries, and an asset page's
nearest-neighbour search 50 ms. The partial indexes of a register of individuals are empty."""

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
    op.execute(f"CREATE INDEX ix_assets_public_geom ON assets USING gist (geom) WHERE {PUBLIC}")


def downgrade():
    op.execute("DROP INDEX ix_assets_public_geom")
    op.execute("DROP INDEX ix_assets_public_id")
