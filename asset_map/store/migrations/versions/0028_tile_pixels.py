"""A need tile below the detail zoom without per-shape work beyond encoding it.

``tile_pixels`` holds every area's shape at each zoom up to maps.tile_prep.PIXEL_MAX_ZOOM already in that zoom's
pixel grid (a tile's 4096 units per tile, counted from the world's top left corner, y down), as ST_AsMVTGeom makes it
for any tile of that zoom, and the area's place (``idx``) in its vintage. ``tile_deciles`` holds, per need indicator
and vintage, every area's decile in that order, so a tile looks a decile up by position instead of joining the
indicator table: ST_AsMVTGeom and the join were four fifths of a zoom 6 to 9 tile's time.

No SRID: the coordinates are pixels, not a projection's. One partition per zoom, so each has statistics of its own
grid: with one table, a zoom 7 box was estimated from coordinates spread over ten grids a factor of 512 apart.
"""
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

# Literally range(maps.tile_prep.PIXEL_MAX_ZOOM + 1): a migration must not import the code it serves.
ZOOMS = range(10)


def upgrade():
    op.execute("CREATE TABLE tile_pixels (z smallint NOT NULL, vintage smallint NOT NULL, code text NOT NULL, "
               "idx integer NOT NULL, geom geometry(Geometry) NOT NULL, PRIMARY KEY (z, vintage, code)) "
               "PARTITION BY LIST (z)")
    for z in ZOOMS:
        op.execute(f"CREATE TABLE tile_pixels_z{z} PARTITION OF tile_pixels FOR VALUES IN ({z})")
        op.execute(f"CREATE INDEX ix_tile_pixels_z{z}_geom ON tile_pixels_z{z} USING gist (geom)")
    op.execute("CREATE TABLE tile_deciles (indicator text NOT NULL, vintage smallint NOT NULL, "
               "area_vintage smallint NOT NULL, deciles smallint[] NOT NULL, PRIMARY KEY (indicator, vintage))")


def downgrade():
    op.execute("DROP TABLE tile_deciles")
    op.execute("DROP TABLE tile_pixels")
