"""Indexes in the order the keyset pages read: the audit log newest first by (at, id), a register's quarantine by
(coalesce(source_row, 0), id), so any page of either is a short index range however long the table grows. They
replace the single-column indexes they extend."""

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE INDEX ix_audit_log_at_id ON audit_log (at, id)")
    op.execute("DROP INDEX ix_audit_log_at")
    op.execute("CREATE INDEX ix_quarantine_register_row ON quarantine (register, (coalesce(source_row, 0)), id)")
    op.execute("DROP INDEX ix_quarantine_register")


def downgrade():
    op.execute("CREATE INDEX ix_quarantine_register ON quarantine (register)")
    op.execute("DROP INDEX ix_quarantine_register_row")
    op.execute("CREATE INDEX ix_audit_log_at ON audit_log (at)")
    op.execute("DROP INDEX ix_audit_log_at_id")
