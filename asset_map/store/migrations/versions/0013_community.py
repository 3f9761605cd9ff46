"""community: suggestions waiting for moderation, confirm-your-listing links, individuals' private links

Revision ID: 0013
Revises: 0012

``suggestions`` holds what the public sends (a new asset, a change to one, a correction from a confirm link) until an
organiser or officer decides; nothing in it is shown on the map. ``confirmations`` records each confirm-your-listing
link sent (the link itself is signed and carries only the row's id and nonce) and what came of it.
``offer_keys`` holds the hash of each individual's private link key, removed with the entry when they withdraw.
The public feed of changes reads ``asset_versions`` by time: a BRIN index on ``at`` serves it and costs imports
next to nothing (versions are appended in time order).
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "suggestions",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),          # new | change | correction
        sa.Column("asset_id", sa.BigInteger),                       # the asset a change or correction is about
        sa.Column("status", sa.String(16), nullable=False, server_default="waiting"),
        sa.Column("district_code", sa.String(9)),
        sa.Column("tier", sa.String(16)),
        sa.Column("category", sa.String(64)),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("offers", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("address", sa.Text),
        sa.Column("postcode", sa.String(8)),
        sa.Column("email", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("contact", sa.Text),
        sa.Column("suggester_name", sa.Text),
        sa.Column("suggester_contact", sa.Text),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("confirmation_id", sa.BigInteger),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decided_by", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("result_asset_id", sa.BigInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('new', 'change', 'correction')", name="kind"),
        sa.CheckConstraint("status IN ('waiting', 'accepted', 'merged', 'rejected')", name="status"),
    )
    # The queue reads waiting suggestions by district, oldest first; decided ones are only read by id.
    op.execute("CREATE INDEX ix_suggestions_waiting ON suggestions (district_code, created_at, id) "
               "WHERE status = 'waiting'")
    op.execute("CREATE INDEX ix_suggestions_waiting_all ON suggestions (created_at, id) WHERE status = 'waiting'")
    op.create_table(
        "confirmations",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("asset_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("district_code", sa.String(9), index=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.Column("sent_by", sa.Text),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivery", sa.String(16), nullable=False),      # smtp | outbox
        sa.Column("outbox_file", sa.Text),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.String(16)),                       # confirmed | corrected
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
    )
    op.create_table(
        "offer_keys",
        sa.Column("asset_id", sa.BigInteger, primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.execute("CREATE INDEX ix_asset_versions_at_brin ON asset_versions USING brin (at)")


def downgrade():
    op.execute("DROP INDEX IF EXISTS ix_asset_versions_at_brin")
    op.drop_table("offer_keys")
    op.drop_table("confirmations")
    op.drop_table("suggestions")
