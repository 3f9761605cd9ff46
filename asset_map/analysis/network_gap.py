"""Gap measures on the street network, computed per district so the same pure functions run in-process or on a
cluster (``run``: :func:`in_process`, or a Dask cluster's runner: see asset_map.compute). The network is shared by
every partition (sent once to each worker); a partition names its nodes.

A district's partition holds:

- the areas of the district that are reported (their results come back), the origins of every area within
  ``2 x catchment`` of them (the demand of the assets they can reach, for 2SFCA),
- the assets within ``max(catchment, search)`` of them,
- the box of the reported origins: the partition runs on the network within ``2 x catchment + max_snap`` of it,
  and, only for origins whose nearest asset is not settled there, within ``search + max_snap``.

A path of at most the catchment between an origin and an asset that a reported area reaches never leaves
``2 x catchment`` of the district, and a path to an asset within ``search`` metres never leaves ``search``, so every
partition's answer is the answer on the whole network: splitting changes where the work runs, not the result.

Whether an area can reach any asset at all (islands, disconnected parts) is decided once on the whole network
(connected components), so "unreachable" means unreachable, not "beyond this partition".
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from asset_map.analysis import network as nw

OK = "ok"
OFF_NETWORK = "off network"
UNREACHABLE = "unreachable"
BEYOND = "beyond search"


@dataclass
class Partition:
    """One district's share of a network gap analysis: everything :func:`run_partition` needs, as arrays. Node
    indices are the whole network's (the network itself is shared, sent once to each worker)."""

    district: str
    box: tuple                   # (min x, min y, max x, max y) of the reported origins, EPSG:27700
    origin_index: np.ndarray     # global index of each origin in the partition
    origin_node: np.ndarray      # network node (-1: off the network)
    origin_snap: np.ndarray
    population: np.ndarray
    reported: np.ndarray         # bool: results wanted for this origin
    asset_index: np.ndarray      # global index of each asset in the partition
    asset_node: np.ndarray
    asset_snap: np.ndarray
    groups: dict = field(default_factory=dict)   # label -> bool per partition asset ("any": all)
    unreachable: dict = field(default_factory=dict)  # label -> bool per partition origin (no such asset on its part)
    catchment_m: float = 1600.0
    decay: str = "none"
    search_m: float = 20_000.0
    max_snap_m: float = 500.0


def plan(net, origins_xy, population, district, report, asset_xy, groups, *, catchment_m, decay, max_snap_m,
         search_m):
    """The partitions of a network gap analysis, one per district with reported areas (sorted by district code).

    ``groups``: label -> bool per asset. Returns (partitions, origin snap distances, asset snap distances,
    origin node, asset node) where the last four are for every origin / asset (node -1: farther than
    ``max_snap_m`` from the network)."""
    origins_xy = np.asarray(origins_xy, float).reshape(-1, 2)
    asset_xy = np.asarray(asset_xy, float).reshape(-1, 2)
    report = np.asarray(report, bool)
    district = np.asarray(district, dtype=object)
    # One snap for origins and assets: the network's k-d tree is built once.
    nodes, snaps = nw.snap(net, np.concatenate([origins_xy, asset_xy]), max_snap_m)
    o_node, a_node = nodes[:len(origins_xy)], nodes[len(origins_xy):]
    o_snap, a_snap = snaps[:len(origins_xy)], snaps[len(origins_xy):]
    labels = nw.components(net)
    unreachable = {}
    for label, member in groups.items():
        has = np.zeros(labels.max() + 1 if len(labels) else 0, bool)
        on = np.asarray(member, bool) & (a_node >= 0)
        has[labels[a_node[on]]] = True
        out = np.zeros(len(origins_xy), bool)
        ok = o_node >= 0
        out[ok] = ~has[labels[o_node[ok]]]
        unreachable[label] = out
    parts = []
    population = np.asarray(population, float)
    groups = {k: np.asarray(v, bool) for k, v in groups.items()}
    for code in sorted({str(d) for d in district[report]}):
        mine = report & (district == code)
        lo = origins_xy[mine].min(axis=0)
        hi = origins_xy[mine].max(axis=0)
        oi = np.flatnonzero(_within(origins_xy, lo, hi, 2 * catchment_m) | mine)
        ai = np.flatnonzero(_within(asset_xy, lo, hi, max(catchment_m, search_m)))
        parts.append(Partition(
            district=code, box=(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])), origin_index=oi,
            origin_node=o_node[oi], origin_snap=o_snap[oi], population=population[oi], reported=mine[oi],
            asset_index=ai, asset_node=a_node[ai], asset_snap=a_snap[ai],
            groups={k: v[ai] for k, v in groups.items()}, unreachable={k: v[oi] for k, v in unreachable.items()},
            catchment_m=float(catchment_m), decay=decay, search_m=float(search_m), max_snap_m=float(max_snap_m)))
    return parts, o_snap, a_snap, o_node, a_node


def _within(xy, lo, hi, pad):
    return np.all((xy >= lo - pad) & (xy <= hi + pad), axis=1) if len(xy) else np.zeros(0, bool)


class _Part:
    """The network within ``pad`` metres of a box: the subnetwork, its graph (and the reversed one for costs *to*
    a place), and each global node's index in it (-1: outside)."""

    def __init__(self, net, lo, hi, pad):
        self.lo, self.hi = np.asarray(lo, float) - pad, np.asarray(hi, float) + pad
        keep = _within(net.xy(), np.asarray(lo, float), np.asarray(hi, float), pad)
        self.net, old = net.subset(keep)
        self.local = np.full(net.n_nodes, -1, np.int64)
        self.local[old] = np.arange(len(old))
        self.graph = nw.graph(self.net)
        self._reverse = None

    def reverse(self):
        if self._reverse is None:
            # A network without one-way streets (walking) is its own reverse.
            self._reverse = self.graph.T.tocsr() if np.any(self.net.oneway) else self.graph
        return self._reverse

    def nodes(self, global_nodes):
        global_nodes = np.asarray(global_nodes, np.int64)
        return np.where(global_nodes >= 0, self.local[np.maximum(global_nodes, 0)], -1)

    def edge_distance(self, global_nodes, net):
        """Straight-line distance from each node to the edge of this part's box: a route that leaves the part is
        at least this long."""
        x, y = net.x[global_nodes], net.y[global_nodes]
        return np.minimum.reduce([x - self.lo[0], self.hi[0] - x, y - self.lo[1], self.hi[1] - y])


# Lengths are stored to the millimetre, so a route may be a little shorter than the straight line it follows.
_SLACK_M = 1.0


def run_partition(part, net):
    """Network measures for the reported origins of one partition of ``net``, as a DataFrame indexed by global
    origin index:
    per group ``<label>\\tm`` (cost to the nearest asset), ``<label>\\tasset`` (its global index, -1 none) and
    ``<label>\\tstatus``; ``within`` (assets within the catchment) and ``access`` (2SFCA per 1,000 residents).

    Everything is computed on the network within ``2 x catchment`` of the district (the pairs never leave it).
    The nearest asset is searched there first; an origin whose nearest asset there is nearer than the part's edge
    (in a straight line, a lower bound of any route that leaves it) has its answer, and only the others are searched
    again on the network within the search distance. In a county with thousands of assets that is none."""
    lo, hi = np.asarray(part.box[:2]), np.asarray(part.box[2:])
    near = _Part(net, lo, hi, 2 * part.catchment_m + part.max_snap_m)
    rep = np.flatnonzero(part.reported)
    rep_nodes = part.origin_node[rep]
    out = {}
    wide = None
    for label, member in part.groups.items():
        nodes = np.where(member, part.asset_node, -1)
        dist, which = nw.nearest_on_network(near.net, near.nodes(rep_nodes), part.origin_snap[rep],
                                            near.nodes(nodes), part.asset_snap, limit=part.search_m,
                                            reverse=near.reverse())
        on = rep_nodes >= 0
        settled = np.ones(len(rep), bool)
        settled[on] = dist[on] - part.origin_snap[rep][on] + _SLACK_M <= near.edge_distance(rep_nodes[on], net)
        if not settled.all():
            if wide is None:
                wide = _Part(net, lo, hi, part.search_m + part.max_snap_m)
            again = np.flatnonzero(~settled)
            d2, w2 = nw.nearest_on_network(wide.net, wide.nodes(rep_nodes[again]), part.origin_snap[rep][again],
                                           wide.nodes(nodes), part.asset_snap, limit=part.search_m,
                                           reverse=wide.reverse())
            dist[again], which[again] = d2, w2
        status = np.full(len(rep), OK, dtype=object)
        status[~np.isfinite(dist)] = BEYOND
        status[part.unreachable[label][rep]] = UNREACHABLE
        status[rep_nodes < 0] = OFF_NETWORK
        dist[status != OK] = np.nan
        out[f"{label}\tm"] = dist
        out[f"{label}\tasset"] = np.where(which >= 0, part.asset_index[np.maximum(which, 0)], -1)
        out[f"{label}\tstatus"] = status
    o, a, c = nw.pairs_on_network(near.net, near.nodes(part.origin_node), part.origin_snap, near.nodes(part.asset_node),
                                  part.asset_snap, part.catchment_m, g=near.graph)
    within = np.bincount(o, minlength=len(part.origin_index))[rep]
    access = two_step_fca(o, a, c, part.population, len(part.asset_index), part.catchment_m, part.decay)
    out["within"] = within.astype(np.int64)
    out["access"] = access[rep]
    return pd.DataFrame(out, index=pd.Index(part.origin_index[rep], name="origin"))


def two_step_fca(o, a, d, population, n_assets, catchment, decay="none"):
    """2SFCA per origin (assets per 1,000 residents) from the (origin, asset, cost) pairs within the catchment, in
    numpy: the same figures as access.fca.two_stage_fca (analysis.gap.fca_from_pairs), which merges and groups
    DataFrames for each stage. Stage 1: each asset's supply (1) over the (weighted) residents who reach it;
    stage 2: each origin's sum of the ratios it reaches. An origin that reaches an asset nobody's weight reaches
    (a ratio of 1/0) gets 0, as access's inf is dropped."""
    from asset_map.analysis.gap import decay_weight

    out = np.zeros(len(population))
    if not len(o):
        return out
    w = np.ones(len(d)) if decay == "none" else decay_weight(np.asarray(d, float), catchment, decay)
    demand = np.bincount(a, weights=np.asarray(population, float)[o] * w, minlength=n_assets)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 1.0 / demand
        share = ratio[a] * w
    share[np.isnan(share)] = 0.0  # access sums with pandas, which skips NaN
    got = np.bincount(o, weights=share, minlength=len(population))
    reached = np.bincount(o, minlength=len(population)) > 0
    got[~np.isfinite(got)] = 0.0
    out[reached] = got[reached] * 1000.0
    return out


def in_process(function, items, shared):
    """The runner without a cluster: ``function(item, shared)`` for each item, in order."""
    return [function(item, shared) for item in items]


def measure(parts, net, run=None):
    """Run every partition of ``net`` (by ``run``, default :func:`in_process`) and put the results together, in
    origin order."""
    frames = list((run or in_process)(run_partition, parts, net))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames).sort_index(kind="mergesort")
