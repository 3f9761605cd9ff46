"""privacy: consent records, erasure, server-side sessions, bounded counters of anonymous access

Revision ID: 0011
Revises: 0010

- ``assets`` keeps each individual's consent record (date, source register and row or form, wording version) and,
  once erased, only when and why (``erased_at``, ``erased_reason``): the personal fields themselves are cleared.
- ``users.session_version``: signing out (or a password change) moves it, which ends every session signed in before.
- ``access_counts``: anonymous downloads and refused sign-ins counted per hour and kind, one row per (hour, kind,
  target) however many requests, so they cannot flood the audit log.
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("assets", sa.Column("consent_at", sa.Date(), nullable=True))
    op.add_column("assets", sa.Column("consent_source", sa.Text(), nullable=True))
    op.add_column("assets", sa.Column("consent_wording", sa.Text(), nullable=True))
    op.add_column("assets", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("assets", sa.Column("erased_reason", sa.Text(), nullable=True))
    op.add_column("users", sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "access_counts",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("hour", "kind", "target", name="pk_access_counts"),
    )


def downgrade():
    op.drop_table("access_counts")
    op.drop_column("users", "session_version")
    for col in ("erased_reason", "erased_at", "consent_wording", "consent_source", "consent_at"):
        op.drop_column("assets", col)
