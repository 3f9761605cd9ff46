"""Small OpenStreetMap extracts the tests build themselves with pyosmium, where the right distances are known by hand.

``river_grid``: 6 x 6 junctions 100 m apart (a street grid), a river between rows 2 and 3 that only column 0's street
crosses (one bridge). From junction (5, 2) to (5, 3), 100 m apart in a straight line, the walk is
5 x 100 west + 100 over the bridge + 5 x 100 back east = 1,100 m.

``tagged``: one street of each kind a mode may or may not use, to check the tag rules.
"""

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer

from asset_map import synth

# South-west corner of the grid, EPSG:27700: in Tamworth (the pack's E07000199), so it lies in a real district.
X0, Y0 = 421_000.0, 303_000.0
GRID = synth.StreetGrid(X0, Y0, 6, 6, 100.0, river_row=2, bridges=(0,))


def river_grid(path):
    return synth.write_street_grid(GRID, path)


def lonlat(x, y):
    lon, lat = Transformer.from_crs(27700, 4326, always_xy=True).transform(x, y)
    return float(lon), float(lat)


def junction(c, r):
    """(x, y) EPSG:27700 of junction (c, r)."""
    return GRID.xy(c, r)


def district_frame(code="E09999901", name="Grid Town", pad=200.0):
    """A district polygon (EPSG:4326) around the grid."""
    box = shapely.box(X0 - pad, Y0 - pad, X0 + 500 + pad, Y0 + 500 + pad)
    return gpd.GeoDataFrame({"code": [code], "name": [name]}, geometry=[box], crs=27700).to_crs(4326)


def tagged(path):
    """Ways in a row 100 m apart, each two nodes 100 m long west-east, with the tags given below."""
    import osmium

    ways = [
        {"highway": "residential"},
        {"highway": "footway"},
        {"highway": "motorway"},
        {"highway": "residential", "access": "private"},
        {"highway": "residential", "oneway": "yes"},
        {"highway": "footway", "bicycle": "yes"},
        {"highway": "primary", "foot": "no"},
        {"waterway": "river"},
    ]
    w = osmium.SimpleWriter(str(path), overwrite=True)
    for i, tags in enumerate(ways):
        for k in range(2):
            lon, lat = lonlat(X0 + 100 * k, Y0 + 100 * i)
            w.add_node(osmium.osm.mutable.Node(id=10 * i + k + 1, location=(lon, lat), version=1))
    for i, tags in enumerate(ways):
        w.add_way(osmium.osm.mutable.Way(id=i + 1, nodes=[10 * i + 1, 10 * i + 2], tags=tags, version=1))
    w.close()
    return path, ways


def empty_grid_xy():
    return np.array([junction(c, r) for r in range(GRID.rows) for c in range(GRID.cols)])
