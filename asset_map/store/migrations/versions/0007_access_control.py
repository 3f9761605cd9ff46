"""access control: token prefixes and labels, sign-in times, an append-only audit log

Revision ID: 0007
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None

# The audit log is evidence: once written, a row may not change or go, whoever connects (the app's own role
# included). Only a superuser dropping the trigger could, and that is itself visible in the schema.
_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
"""


def upgrade():
    op.add_column("api_tokens", sa.Column("prefix", sa.String(length=16), nullable=True))
    op.add_column("api_tokens", sa.Column("label", sa.Text(), nullable=True))
    op.add_column("api_tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_api_tokens_prefix", "api_tokens", ["prefix"])
    op.add_column("users", sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action_target_at", "audit_log", ["action", "target", "at"])
    op.execute(_APPEND_ONLY)


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_index("ix_audit_log_action_target_at", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_column("users", "last_sign_in_at")
    op.drop_index("ix_api_tokens_prefix", table_name="api_tokens")
    op.drop_column("api_tokens", "last_used_at")
    op.drop_column("api_tokens", "label")
    op.drop_column("api_tokens", "prefix")
