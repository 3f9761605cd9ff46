"""history: asset versions, field overrides, imports of each register, uploads

Revision ID: 0012
Revises: 0010

- ``assets.version``: the asset's version number, the token of optimistic locking (an editor sends the version it
  read; a save against an older one is refused). Added with a constant default, so no table rewrite.
- ``asset_versions``: one row per change of an asset (import, edit, verify, close, withdraw, erase, rollback, ...),
  written in the same transaction as the change: who, when, what changed (``{field: [old, new]}``) and why. Its only
  index is the primary key (asset_id, version): imports append rows in id order, so it stays cheap to fill; a
  register's history is read by scanning it, which only rollback does.
- ``register_imports``: each import of a register (who, when, file, counts), the points a register can be rolled back
  to.
- ``asset_overrides``: field values an officer set on a register's row (an edit of an imported asset, a fixed
  quarantined row), keyed by the row's natural key (``k:`` source key, else ``n:`` name key and postcode), applied to
  the register's rows before validation at every import so edits survive re-imports; ``conflict`` holds the
  register's new value when the register changes a field that is overridden.
- ``registers.kind``: ``file`` (imported from a file) or ``manual`` (hand-made assets, one register per district).
- ``register_uploads``: files uploaded in the browser (stored under the var directory with a safe name).
- ``import_jobs``: imports run in the background (queued from the browser), with their progress and error; the queue
  itself is procrastinate's (its tables ``procrastinate_*``, created here from the installed procrastinate's schema),
  so jobs need no server besides PostgreSQL.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _now():
    return sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade():
    op.execute("ALTER TABLE assets ADD COLUMN version integer NOT NULL DEFAULT 1")
    op.add_column("registers", sa.Column("kind", sa.String(16), nullable=False, server_default="file"))
    op.create_table(
        "asset_versions",
        sa.Column("asset_id", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("register", sa.String(128), nullable=False),
        _now(),
        sa.Column("actor", sa.Text),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("changes", JSONB, nullable=False, server_default="{}"),
        sa.Column("reason", sa.Text),
        sa.Column("import_id", sa.BigInteger),
        sa.PrimaryKeyConstraint("asset_id", "version", name="pk_asset_versions"),
    )
    op.create_table(
        "register_imports",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("register", sa.String(128), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        _now(),
        sa.Column("actor", sa.Text),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_file", sa.Text),
        sa.Column("upload_id", sa.BigInteger),
        sa.Column("counts", JSONB, nullable=False, server_default="{}"),
    )
    op.create_table(
        "asset_overrides",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("register", sa.String(128), nullable=False),
        sa.Column("row_key", sa.Text, nullable=False),
        sa.Column("asset_id", sa.BigInteger),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("value", sa.Text),
        sa.Column("base", sa.Text),
        sa.Column("conflict", sa.Text),
        _now(),
        sa.Column("actor", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("uq_asset_overrides_live", "asset_overrides", ["register", "row_key", "field"], unique=True,
                    postgresql_where=sa.text("revoked_at IS NULL"))
    op.create_index("ix_asset_overrides_asset_id", "asset_overrides", ["asset_id"])
    op.create_table(
        "register_uploads",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("register", sa.String(128), nullable=False),
        sa.Column("original_name", sa.Text, nullable=False),
        sa.Column("stored_name", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("mapping", JSONB),
        _now(),
        sa.Column("actor", sa.Text),
    )
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("register", sa.String(128), nullable=False, index=True),
        sa.Column("upload_id", sa.BigInteger),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("actor", sa.Text),
        sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("step", sa.Text),
        sa.Column("progress", JSONB, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text),
        sa.Column("import_id", sa.BigInteger),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    _procrastinate_schema()


def _procrastinate_schema():
    """The job queue's tables and functions, unless a database already has them. Executed through the driver with no
    parameters, so the schema's own '%' and ':' are left alone."""
    from procrastinate.schema import SchemaManager

    bind = op.get_bind()
    if bind.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
        bind.connection.driver_connection.execute(SchemaManager.get_schema())


def downgrade():
    # The job queue's schema (procrastinate_*) is left in place: other deployments' workers may share it.
    op.drop_table("import_jobs")
    op.drop_table("register_uploads")
    op.drop_table("asset_overrides")
    op.drop_table("register_imports")
    op.drop_table("asset_versions")
    op.drop_column("registers", "kind")
    op.execute("ALTER TABLE assets DROP COLUMN version")
