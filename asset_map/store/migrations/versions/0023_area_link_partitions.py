"""``asset_areas`` partitioned by geography (one partition a geography, named from it like the assets' partitions
are from their register).

Loading a geography replaces all of its links (a million for 9,000 wards over a million assets). Into one shared
table that meant maintaining two indexes row by row (about 20 s a million on this hardware); now a geography's
links are written into a table of their own with no index, indexed in one sorted build, and swapped in for the old
partition (about 5 s), in the loader's transaction.
"""
import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def _partition(geography):
    return "asset_areas_g_" + hashlib.md5(geography.encode("utf-8")).hexdigest()[:16]


def upgrade():
    conn = op.get_bind()
    op.rename_table("asset_areas", "asset_areas_unpartitioned")
    op.execute("ALTER TABLE asset_areas_unpartitioned RENAME CONSTRAINT pk_asset_areas TO pk_asset_areas_old")
    op.execute("ALTER INDEX ix_asset_areas_asset RENAME TO ix_asset_areas_asset_old")
    op.execute("CREATE TABLE asset_areas (geography varchar(64) NOT NULL, area_code varchar(64) NOT NULL, "
               "asset_id bigint NOT NULL, CONSTRAINT pk_asset_areas PRIMARY KEY (geography, area_code, asset_id)) "
               "PARTITION BY LIST (geography)")
    op.execute("CREATE INDEX ix_asset_areas_asset ON asset_areas (asset_id)")
    for (name,) in conn.execute(sa.text("SELECT name FROM geographies ORDER BY name")):
        literal = "'" + name.replace("'", "''") + "'"
        conn.exec_driver_sql(f'CREATE TABLE "{_partition(name)}" PARTITION OF asset_areas FOR VALUES IN ({literal})')
    op.execute("INSERT INTO asset_areas SELECT geography, area_code, asset_id FROM asset_areas_unpartitioned "
               "ORDER BY geography, area_code, asset_id")
    op.drop_table("asset_areas_unpartitioned")


def downgrade():
    op.rename_table("asset_areas", "asset_areas_partitioned")
    op.execute("ALTER TABLE asset_areas_partitioned RENAME CONSTRAINT pk_asset_areas TO pk_asset_areas_parted")
    op.execute("ALTER INDEX ix_asset_areas_asset RENAME TO ix_asset_areas_asset_parted")
    op.create_table(
        "asset_areas",
        sa.Column("geography", sa.String(64), nullable=False),
        sa.Column("area_code", sa.String(64), nullable=False),
        sa.Column("asset_id", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("geography", "area_code", "asset_id", name="pk_asset_areas"),
    )
    op.create_index("ix_asset_areas_asset", "asset_areas", ["asset_id"])
    op.execute("INSERT INTO asset_areas SELECT geography, area_code, asset_id FROM asset_areas_partitioned")
    op.execute("DROP TABLE asset_areas_partitioned CASCADE")
