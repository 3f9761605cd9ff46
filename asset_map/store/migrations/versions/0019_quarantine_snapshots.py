"""quarantine_snapshots: each import's quarantine as it left it, so a rollback to that import restores it;
asset_page_cache: public asset pages kept rendered for every web process

Revision ID: 0019
Revises: 0018

The quarantine table holds the register's rows that cannot be placed *now*; each import replaces them. A rollback
to the state after an earlier import puts the assets back as they were, and with this table the quarantined rows
too (copied back as new rows; the snapshots themselves are never changed, so every state stays reachable).

``asset_page_cache`` is unlogged (a cache: lost after a crash, never replicated); see asset_map/maps/page_cache.py.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "quarantine_snapshots",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("import_id", sa.BigInteger, sa.ForeignKey("register_imports.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("register", sa.String(128), nullable=False),
        sa.Column("source_row", sa.Integer),
        sa.Column("row", JSONB, nullable=False),
        sa.Column("problems", JSONB, nullable=False),
    )
    op.execute("CREATE UNLOGGED TABLE asset_page_cache (asset_id bigint NOT NULL, role varchar(16) NOT NULL, "
               "stamp text NOT NULL, html text NOT NULL, at timestamptz NOT NULL DEFAULT now(), "
               "PRIMARY KEY (asset_id, role))")
    op.execute("CREATE INDEX ix_asset_page_cache_at ON asset_page_cache (at)")


def downgrade():
    op.drop_table("asset_page_cache")
    op.drop_table("quarantine_snapshots")
