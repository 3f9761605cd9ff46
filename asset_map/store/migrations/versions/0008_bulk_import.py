"""bulk import: no per-row foreign-key check or duplicate index on assets.register

Revision ID: 0008
Revises: 0007

A 100,000-row import spent about a second in the per-row check of assets.register against registers and in an
index that the unique (register, match_key) index already covers. The importer writes the register row in the same
transaction as its assets (store.assets.ensure_register), and nothing deletes registers, so the check bought
nothing the import path does not already guarantee.
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_constraint("fk_assets_register_registers", "assets", type_="foreignkey")
    op.drop_index("ix_assets_register", table_name="assets")


def downgrade():
    op.create_index("ix_assets_register", "assets", ["register"])
    op.create_foreign_key("fk_assets_register_registers", "assets", "registers", ["register"], ["name"],
                          ondelete="CASCADE")
