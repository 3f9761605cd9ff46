"""tiles prepared once, read many times: area shapes per zoom band and asset counts per grid cell

Revision ID: 0022
Revises: 0018

``tile_shapes`` holds every area and district already in Web Mercator and simplified at each zoom band's tolerance
(maps.tile_prep.BANDS), so a low-zoom tile reads a few hundred small shapes instead of transforming and simplifying
full-resolution LSOAs on every request. ``tile_asset_cells`` holds, per zoom up to maps.tile_prep.GRID_MAX_ZOOM, the
count of what the public may see per grid cell, tier and category (store.assets' privacy rule, applied when it is
built), so a low-zoom asset tile never touches the million asset rows. ``tile_prep`` records the change stamp
(store.change_stamps) each was built from: a tile is made from them only when that stamp is current, otherwise
from the live tables as before. One partial GiST index per band or zoom: a tile reads exactly one of them.
"""
from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None

# Literally maps.tile_prep.BANDS and range(GRID_MAX_ZOOM + 1): a migration must not import the code it serves.
BANDS = (5, 7, 9, 11)
GRID_ZOOMS = range(13)


def upgrade():
    op.execute("CREATE TABLE tile_prep (what text PRIMARY KEY, stamp bigint NOT NULL, built_on date NOT NULL, "
               "params text NOT NULL DEFAULT '', rows bigint NOT NULL DEFAULT 0, seconds double precision, "
               "built_at timestamptz NOT NULL DEFAULT now())")
    op.execute("CREATE TABLE tile_shapes (layer text NOT NULL, vintage smallint NOT NULL, band smallint NOT NULL, "
               "code text NOT NULL, geom geometry(Geometry, 3857) NOT NULL, "
               "PRIMARY KEY (layer, vintage, band, code))")
    for band in BANDS:
        op.execute(f"CREATE INDEX ix_tile_shapes_geom_b{band} ON tile_shapes USING gist (geom) WHERE band = {band}")
    op.execute("CREATE TABLE tile_asset_cells (z smallint NOT NULL, ix integer NOT NULL, iy integer NOT NULL, "
               "tier text NOT NULL, category text, n integer NOT NULL, stale_n integer NOT NULL, "
               "first_id bigint NOT NULL, sx double precision NOT NULL, sy double precision NOT NULL, "
               "geom geometry(Point, 3857) NOT NULL)")
    for z in GRID_ZOOMS:
        op.execute(f"CREATE INDEX ix_tile_asset_cells_geom_z{z} ON tile_asset_cells USING gist (geom) WHERE z = {z}")


def downgrade():
    op.execute("DROP TABLE tile_asset_cells")
    op.execute("DROP TABLE tile_shapes")
    op.execute("DROP TABLE tile_prep")
