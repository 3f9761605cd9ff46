"""street networks: nodes and edges of a mode's graph, and where each came from

Revision ID: 0017
Revises: 0010

One network per mode (walk, drive, cycle), replaced whole by each `asset-map load network`. Nodes carry both the
store's EPSG:4326 and the measuring EPSG:27700 coordinates, so the analysis reads arrays without a transform.
Edges are node index pairs with their length in metres; the graph is small enough to read whole per report.
No foreign keys on the millions of node and edge rows (a per-row check would double a county load): a load deletes
and writes a mode's three tables together in one transaction.
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "network_loads",
        sa.Column("mode", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_date", sa.Text),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("nodes", sa.Integer, nullable=False),
        sa.Column("edges", sa.Integer, nullable=False),
        sa.Column("districts", sa.Text, nullable=False),
        sa.Column("buffer_m", sa.Float, nullable=False),
        sa.Column("bbox", sa.Text, nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("mode IN ('walk', 'drive', 'cycle')", name="ck_network_loads_mode"),
    )
    op.create_table(
        "network_nodes",
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("osm_id", sa.BigInteger, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("x", sa.Float, nullable=False),
        sa.Column("y", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("mode", "id", name="pk_network_nodes"),
    )
    op.create_table(
        "network_edges",
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("u", sa.Integer, nullable=False),
        sa.Column("v", sa.Integer, nullable=False),
        sa.Column("length_m", sa.Float, nullable=False),
        sa.Column("oneway", sa.Boolean, nullable=False),
        sa.Column("highway", sa.Text),
    )
    op.create_index("ix_network_edges_mode", "network_edges", ["mode"])


def downgrade():
    op.drop_table("network_edges")
    op.drop_table("network_nodes")
    op.drop_table("network_loads")
