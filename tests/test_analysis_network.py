"""Network distances on a street grid with a river and one bridge, where the answers are known by hand."""

import numpy as np
import pytest

from asset_map.analysis import network as nw
from asset_map.analysis import network_gap
from asset_map.reference import osm
from tests import osm_data


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    path = osm_data.river_grid(tmp_path_factory.mktemp("osm") / "grid.osm.pbf")
    return osm.read_network(path, "walk")


def _node(grid, c, r):
    return int(np.flatnonzero(grid.osm_id == osm_data.GRID.node_id(c, r))[0])


def test_the_walk_across_the_river_goes_by_the_bridge(grid):
    net = grid.network
    assert net.n_nodes == 36
    # 6 rows of 5 segments, 6 columns of 5 segments less the 5 the river cuts.
    assert net.n_edges == 30 + 30 - 5
    d = nw.reach(net, _node(grid, 5, 2), 10_000)
    assert d[_node(grid, 5, 3)] == pytest.approx(1_100, abs=0.5)
    assert d[_node(grid, 0, 3)] == pytest.approx(600, abs=0.5)
    assert d[_node(grid, 5, 5)] == pytest.approx(1_300, abs=0.5)
    # Bounded: nothing beyond the limit is reached.
    assert np.isinf(nw.reach(net, _node(grid, 5, 2), 1_000)[_node(grid, 5, 3)])


def test_nearest_and_pairs_add_the_snap_distances(grid):
    net = grid.network
    x, y = osm_data.junction(5, 2)
    origins = np.array([[x, y - 30.0]])            # 30 m south of junction (5, 2)
    ax, ay = osm_data.junction(5, 3)
    assets = np.array([[ax + 20.0, ay], osm_data.junction(0, 0)])  # across the river; and 500 + 200 m away
    o_node, o_snap = nw.snap(net, origins, 500)
    a_node, a_snap = nw.snap(net, assets, 500)
    assert o_snap[0] == pytest.approx(30, abs=0.5) and a_snap[0] == pytest.approx(20, abs=0.5)
    dist, which = nw.nearest_on_network(net, o_node, o_snap, a_node, a_snap)
    # Across the river: 30 + 1,100 + 20; to (0, 0): 30 + 500 + 200 = 730, nearer.
    assert which[0] == 1 and dist[0] == pytest.approx(730, abs=1)
    dist, which = nw.nearest_on_network(net, o_node, o_snap, a_node[:1], a_snap[:1])
    assert which[0] == 0 and dist[0] == pytest.approx(1_150, abs=1)
    o, a, c = nw.pairs_on_network(net, o_node, o_snap, a_node, a_snap, 1_200)
    assert list(a) == [0, 1] and c == pytest.approx([1_150, 730], abs=1)
    o, a, c = nw.pairs_on_network(net, o_node, o_snap, a_node, a_snap, 1_000)
    assert list(a) == [1]


def test_far_points_are_not_snapped_and_islands_are_unreachable(grid):
    net = grid.network
    far = np.array([[osm_data.X0 + 250, osm_data.Y0 - 5_000]])  # 5 km south of the grid
    node, snap = nw.snap(net, far, 500)
    assert node[0] == -1 and snap[0] > 4_900
    # Cut the bridge: the north bank becomes an island with no asset on it.
    keep = ~((net.u == _node(grid, 0, 2)) & (net.v == _node(grid, 0, 3))
             | (net.u == _node(grid, 0, 3)) & (net.v == _node(grid, 0, 2)))
    island = nw.Network(net.x, net.y, net.u[keep], net.v[keep], net.length[keep], net.oneway[keep])
    xy = np.array([osm_data.junction(2, 4), osm_data.junction(2, 1)])
    parts, *_ = network_gap.plan(island, xy, [100, 100], ["D", "D"], [True, True],
                                 np.array([osm_data.junction(4, 0)]), {"any": np.array([True])},
                                 catchment_m=800, decay="none", max_snap_m=500, search_m=5_000)
    got = network_gap.measure(parts, island)
    assert list(got["any\tstatus"]) == [network_gap.UNREACHABLE, network_gap.OK]
    assert np.isnan(got["any\tm"].iloc[0]) and got["any\tm"].iloc[1] == pytest.approx(300, abs=1)


def test_one_way_streets_are_driven_one_way(tmp_path):
    path, ways = osm_data.tagged(tmp_path / "tagged.osm.pbf")
    kinds = {}
    for mode in ("walk", "drive", "cycle"):
        got = osm.read_network(path, mode)
        kinds[mode] = sorted(set(got.highway))
        if mode == "drive":
            assert got.network.oneway.sum() == 2  # oneway=yes and the motorway
    assert kinds["walk"] == ["footway", "residential"]  # no motorway, no private, no foot=no primary
    assert kinds["drive"] == ["motorway", "primary", "residential"]
    assert kinds["cycle"] == ["footway", "primary", "residential"]  # only the footway that allows bicycles


def test_isochrone_follows_the_streets_and_stops_at_the_river(grid):
    net = grid.network
    start = _node(grid, 5, 2)
    five, ten = nw.isochrone(net, start, 0.0, [300, 1_200], width_m=10)
    x, y = osm_data.junction(5, 2)
    import shapely

    assert five.contains(shapely.Point(x - 290, y)) and not five.contains(shapely.Point(x - 350, y))
    # Straight across the river, 100 m away, is outside 300 m of walking but inside 1,200 m.
    across = shapely.Point(*osm_data.junction(5, 3))
    assert not five.contains(across) and ten.contains(across)
    assert five.area < ten.area


def test_an_origin_whose_nearest_asset_is_beyond_the_near_part_is_searched_again(grid):
    """The nearest asset is first looked for within 2 x catchment of the district; the walk to the library across
    the river leaves that part (by the bridge, 500 m west), so it must be found on the wider network, not reported
    as beyond reach."""
    net = grid.network
    origins = np.array([osm_data.junction(5, 2), osm_data.junction(2, 1)])
    assets = np.array([osm_data.junction(5, 3), osm_data.junction(0, 5)])  # both across the river
    parts, o_snap, a_snap, o_node, a_node = network_gap.plan(
        net, origins, [100, 100], ["D", "D"], [True, True], assets, {"any": np.array([True, True])},
        catchment_m=50, decay="none", max_snap_m=50, search_m=5_000)
    got = network_gap.measure(parts, net)
    want, which = nw.nearest_on_network(net, o_node, o_snap, a_node, a_snap, limit=5_000)
    assert list(got["any\tstatus"]) == [network_gap.OK, network_gap.OK]
    assert got["any\tm"].to_numpy() == pytest.approx(want)
    # By the bridge at the west end: 500 + 300 m, and 200 + 400 m.
    assert got["any\tm"].to_numpy() == pytest.approx([800, 600], abs=1)
    assert list(got["any\tasset"]) == list(which)


@pytest.mark.parametrize("decay", ["none", "linear", "gaussian"])
def test_two_step_fca_in_numpy_is_access_two_stage_fca(decay):
    """The partitions' 2SFCA (numpy) against access.fca.two_stage_fca (analysis.gap.fca_from_pairs), on pairs with
    empty origins, an asset reached only by residents of weight 0, and origins with no pairs."""
    from asset_map.analysis.gap import fca_from_pairs

    rng = np.random.default_rng(3)
    n_o, n_a = 60, 25
    o = rng.integers(0, n_o - 5, 400)
    a = rng.integers(0, n_a, 400)
    d = rng.uniform(0, 1_600, 400)
    d[a == 0] = 1_600.0  # at the catchment: weight 0 with decay
    pop = rng.integers(0, 3, n_o).astype(float) * 100
    pop[o[a == 1]] = 0.0  # asset 1: nobody lives where it is reached from
    got = network_gap.two_step_fca(o, a, d, pop, n_a, 1_600, decay)
    want = fca_from_pairs(o, a, d, pop, n_a, 1_600, decay)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert got[n_o - 5:].tolist() == [0.0] * 5
