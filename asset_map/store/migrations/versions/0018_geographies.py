"""geographies: any set of areas (divisions, wards, parishes, pilot neighbourhoods), each asset's areas in them,
and the councillors attached to areas

Revision ID: 0018
Revises: 0010

``geography_areas`` holds the polygons of every loaded or drawn geography (EPSG:4326, GiST). ``asset_areas`` links
each asset to every area of every geography it lies in (areas of one geography may overlap, e.g. two pilot
neighbourhoods); it is rebuilt for a geography whenever the geography is loaded or an area is drawn, and for the
imported assets by the importer. There is no foreign key to ``assets``: assets are partitioned by register and the
link rows are replaced in bulk. ``councillor_areas`` attaches a user to the areas whose briefings they receive.
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "geographies",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("areas", sa.Integer, nullable=False, server_default="0"),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "geography_areas",
        sa.Column("geography", sa.String(64), sa.ForeignKey("geographies.name", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
        sa.Column("drawn_by", sa.Text),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_geography_areas_geom", "geography_areas", ["geom"], postgresql_using="gist")
    # No foreign keys here: a geography's links are replaced in bulk (a million rows for 9,000 wards), and a
    # per-row foreign key check would take most of the load's time; the code deletes them with their geography.
    op.create_table(
        "asset_areas",
        sa.Column("geography", sa.String(64), nullable=False),
        sa.Column("area_code", sa.String(64), nullable=False),
        sa.Column("asset_id", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("geography", "area_code", "asset_id", name="pk_asset_areas"),
    )
    op.create_index("ix_asset_areas_asset", "asset_areas", ["asset_id"])
    op.create_table(
        "councillor_areas",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("geography", sa.String(64), nullable=False),
        sa.Column("area_code", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("user_id", "geography", "area_code", name="pk_councillor_areas"),
        sa.ForeignKeyConstraint(["geography", "area_code"], ["geography_areas.geography", "geography_areas.code"],
                                name="fk_councillor_areas_area", ondelete="CASCADE"),
    )


def downgrade():
    op.drop_table("councillor_areas")
    op.drop_table("asset_areas")
    op.drop_table("geography_areas")
    op.drop_table("geographies")
