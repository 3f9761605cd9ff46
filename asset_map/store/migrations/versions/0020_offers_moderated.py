"""people's offers wait for moderation; rate limits shared by every server process

Revision ID: 0020
Revises: 0018

``pending_offers`` holds what a person offers ("I can help with ...") until an officer accepts it: only then does it
become an individual in ``assets`` (and so a protected count, a gap report input, an officer's export). Until then it
is nobody's asset. The row keeps the hash of the person's private link key for as long as the link must answer; its
personal fields are emptied when it is accepted (the asset holds them then), rejected or withdrawn.

``rate_limits`` holds the counters of the ``limits`` library (asset_map.store.rate_limits) so that every gunicorn
worker counts against one limit. UNLOGGED: a crash may lose counts, which only forgives a few requests, and the
writes cost no WAL.

``suggestion_waiting`` keeps how many suggestions wait in each district, kept by a trigger on ``suggestions``: the
moderation queue and every moderator's header read a handful of rows instead of counting 10,000 (issue 14's p95).

``suggestions.cleared`` lists the fields a change or correction asks to empty ("remove this").
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


# A suggestion that starts or stops waiting moves its district's count (rows are never deleted, so a district that
# had suggestions keeps a row at 0).
COUNT_WAITING = """
CREATE FUNCTION suggestions_count_waiting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'waiting' THEN
        UPDATE suggestion_waiting SET waiting = waiting - 1 WHERE district_code = coalesce(OLD.district_code, '');
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'waiting' THEN
        INSERT INTO suggestion_waiting VALUES (coalesce(NEW.district_code, ''), 1)
        ON CONFLICT (district_code) DO UPDATE SET waiting = suggestion_waiting.waiting + 1;
    END IF;
    RETURN NULL;
END $$
"""


def upgrade():
    op.create_table(
        "pending_offers",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="waiting"),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("district_code", sa.String(9)),
        sa.Column("lsoa11_code", sa.String(9)),
        sa.Column("lsoa21_code", sa.String(9)),
        sa.Column("category", sa.String(64)),
        sa.Column("name", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("offers", ARRAY(sa.Text)),
        sa.Column("postcode", sa.String(8)),
        sa.Column("email", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("contact_by", sa.String(16)),
        sa.Column("consent_at", sa.Date),
        sa.Column("consent_wording", sa.String(32)),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decided_by", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("asset_id", sa.BigInteger),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('waiting', 'accepted', 'rejected', 'withdrawn')", name="offer_status"),
    )
    op.execute("CREATE INDEX ix_pending_offers_waiting ON pending_offers (district_code, created_at, id) "
               "WHERE status = 'waiting'")
    # The fields a change or correction asks to empty ("remove this"), applied as empty on accept.
    op.execute("ALTER TABLE suggestions ADD COLUMN cleared text[] NOT NULL DEFAULT '{}'")
    op.execute("CREATE TABLE suggestion_waiting (district_code text PRIMARY KEY, waiting integer NOT NULL)")
    op.execute("INSERT INTO suggestion_waiting SELECT coalesce(district_code, ''), count(*) FROM suggestions "
               "WHERE status = 'waiting' GROUP BY 1")
    op.execute(COUNT_WAITING)
    op.execute("CREATE TRIGGER suggestions_count_waiting AFTER INSERT OR DELETE OR UPDATE OF status, district_code "
               "ON suggestions FOR EACH ROW EXECUTE FUNCTION suggestions_count_waiting()")
    op.execute("CREATE FUNCTION suggestions_truncated() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
               "DELETE FROM suggestion_waiting; RETURN NULL; END $$")
    op.execute("CREATE TRIGGER suggestions_truncated AFTER TRUNCATE ON suggestions FOR EACH STATEMENT "
               "EXECUTE FUNCTION suggestions_truncated()")
    # One row per limit key and window (the library puts the window's number in the key), seconds since the epoch.
    op.execute("CREATE UNLOGGED TABLE rate_limits (key text PRIMARY KEY, expires_at double precision NOT NULL, "
               "count integer NOT NULL)")
    op.execute("CREATE INDEX ix_rate_limits_expires ON rate_limits (expires_at)")


def downgrade():
    op.execute("DROP TABLE IF EXISTS rate_limits")
    op.execute("DROP TRIGGER IF EXISTS suggestions_truncated ON suggestions")
    op.execute("DROP TRIGGER IF EXISTS suggestions_count_waiting ON suggestions")
    op.execute("DROP FUNCTION IF EXISTS suggestions_truncated()")
    op.execute("DROP FUNCTION IF EXISTS suggestions_count_waiting()")
    op.execute("DROP TABLE IF EXISTS suggestion_waiting")
    op.execute("ALTER TABLE suggestions DROP COLUMN cleared")
    op.drop_table("pending_offers")
