"""Gap measures on the street network, computed per district so the same pure functions run in-process or on a
cluster (``run``: :func:`in_process`, or a Dask cluster's runner: see asset_map.compute). The network is shared by
every partition (sent once to each worker); a partition names its nodes.

A district's partition holds:

- the areas of the district that are reported (their results come back), the origins of every area within
  ``2 x catchment`` of them (the demand of the assets they can reach, for 2SFCA),
- the assets within ``max(catchment, search)`` of them,
- the network nodes within ``max(2 x catchment, search) + max_snap`` of them.

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
    """One district's share of a network gap analysis: everything :func:`run_partition` needs, as arrays."""

    district: str
    nodes: np.ndarray            # indices of the network's nodes in this partition (sorted)
    origin_index: np.ndarray     # global index of each origin in the partition
    origin_node: np.ndarray      # node among ``nodes`` (-1: off the network or outside the partition)
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
    o_node, o_snap = nw.snap(net, origins_xy, max_snap_m)
    a_node, a_snap = nw.snap(net, asset_xy, max_snap_m)
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
    node_xy = net.xy()
    reach_m = max(2 * catchment_m, search_m)
    parts = []
    for code in sorted({str(d) for d in district[report]}):
        mine = report & (district == code)
        lo = origins_xy[mine].min(axis=0)
        hi = origins_xy[mine].max(axis=0)

        def within(xy, pad, lo=lo, hi=hi):
            return np.all((xy >= lo - pad) & (xy <= hi + pad), axis=1) if len(xy) else np.zeros(0, bool)

        old = np.flatnonzero(within(node_xy, reach_m + max_snap_m))
        new_of_old = np.full(net.n_nodes, -1, np.int64)
        new_of_old[old] = np.arange(len(old))
        oi = np.flatnonzero(within(origins_xy, 2 * catchment_m) | mine)
        ai = np.flatnonzero(within(asset_xy, max(catchment_m, search_m)))
        parts.append(Partition(
            district=code, nodes=old, origin_index=oi,
            origin_node=np.where(o_node[oi] >= 0, new_of_old[np.maximum(o_node[oi], 0)], -1),
            origin_snap=o_snap[oi], population=np.asarray(population, float)[oi], reported=mine[oi],
            asset_index=ai, asset_node=np.where(a_node[ai] >= 0, new_of_old[np.maximum(a_node[ai], 0)], -1),
            asset_snap=a_snap[ai], groups={k: np.asarray(v, bool)[ai] for k, v in groups.items()},
            unreachable={k: v[oi] for k, v in unreachable.items()}, catchment_m=float(catchment_m), decay=decay,
            search_m=float(search_m)))
    return parts, o_snap, a_snap, o_node, a_node


def run_partition(part, net):
    """Network measures for the reported origins of one partition of ``net``, as a DataFrame indexed by global
    origin index:
    per group ``<label>\\tm`` (cost to the nearest asset), ``<label>\\tasset`` (its global index, -1 none) and
    ``<label>\\tstatus``; ``within`` (assets within the catchment) and ``access`` (2SFCA per 1,000 residents)."""
    from asset_map.analysis.gap import fca_from_pairs

    keep = np.zeros(net.n_nodes, bool)
    keep[part.nodes] = True
    sub, _ = net.subset(keep)
    rep = np.flatnonzero(part.reported)
    out = {}
    for label, member in part.groups.items():
        nodes = np.where(member, part.asset_node, -1)
        dist, which = nw.nearest_on_network(sub, part.origin_node[rep], part.origin_snap[rep], nodes,
                                            part.asset_snap, limit=part.search_m)
        status = np.full(len(rep), OK, dtype=object)
        status[~np.isfinite(dist)] = BEYOND
        status[part.unreachable[label][rep]] = UNREACHABLE
        status[part.origin_node[rep] < 0] = OFF_NETWORK
        dist[status != OK] = np.nan
        out[f"{label}\tm"] = dist
        out[f"{label}\tasset"] = np.where(which >= 0, part.asset_index[np.maximum(which, 0)], -1)
        out[f"{label}\tstatus"] = status
    o, a, c = nw.pairs_on_network(sub, part.origin_node, part.origin_snap, part.asset_node, part.asset_snap,
                                  part.catchment_m)
    within = np.bincount(o, minlength=len(part.origin_index))[rep]
    access = fca_from_pairs(o, a, c, part.population, len(part.asset_index), part.catchment_m, part.decay)
    out["within"] = within.astype(np.int64)
    out["access"] = access[rep]
    return pd.DataFrame(out, index=pd.Index(part.origin_index[rep], name="origin"))


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
