"""Street networks as arrays, and the distances people travel on them. Pure: arrays and frames in, arrays and frames
out; no Flask, no store, no files.

A :class:`Network` is nodes (x, y in EPSG:27700 metres) and edges (node index u -> v, length in metres, one-way
or not). Costs are metres along the network; a catchment in minutes is turned into metres at a stated speed before
it gets here (:func:`minutes_to_metres`).

Points (area origins, assets) are snapped to their nearest network node; the snap distance is part of the cost
(origin -> its node -> ... -> the asset's node -> the asset), so a point 300 m from the road pays those 300 m.
A point farther than ``max_snap_m`` from every node is not on the network and gets no network distance at all.

Many-to-many costs come from bounded Dijkstra (scipy.sparse.csgraph, C code) run once per distinct origin node with
the catchment as its limit, and nearest-asset distances from one multi-source Dijkstra per asset group: each asset
is a virtual node joined to its snapped node by an edge as long as its snap distance, so "the nearest asset" is one
shortest-path tree, however many assets there are.
"""

import hashlib
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

MODES = ("walk", "drive", "cycle")
# km/h: the usual planning speeds (walk 4.8 km/h = 80 m a minute, as in DfT accessibility statistics).
DEFAULT_SPEED_KMH = {"walk": 4.8, "cycle": 16.0, "drive": 30.0}
# A csgraph edge of weight 0 is not an edge; a point exactly on its node still needs one.
_EPS = 1e-6


@dataclass
class Network:
    """A street network: nodes in EPSG:27700 metres, edges between node indices."""

    x: np.ndarray
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    oneway: np.ndarray
    mode: str = "walk"

    @property
    def n_nodes(self):
        return len(self.x)

    @property
    def n_edges(self):
        return len(self.u)

    def xy(self):
        return np.column_stack([self.x, self.y])

    def token(self):
        """A digest of the network's arrays: the same network read twice has the same token, so a cluster that
        already holds it need not be sent it again."""
        digest = hashlib.sha1(self.mode.encode())
        for a in (self.x, self.y, self.u, self.v, self.length, self.oneway):
            digest.update(np.ascontiguousarray(a).tobytes())
        return digest.hexdigest()

    def subset(self, keep):
        """The network on the nodes where ``keep`` (bool per node) is true: edges with both ends kept, nodes
        renumbered. Returns (network, old node index per new node)."""
        keep = np.asarray(keep, bool)
        old = np.flatnonzero(keep)
        new_of_old = np.full(self.n_nodes, -1, np.int64)
        new_of_old[old] = np.arange(len(old))
        e = keep[self.u] & keep[self.v]
        sub = Network(self.x[old], self.y[old], new_of_old[self.u[e]], new_of_old[self.v[e]], self.length[e],
                      self.oneway[e], self.mode)
        return sub, old


def minutes_to_metres(minutes, speed_kmh):
    return float(minutes) * float(speed_kmh) * 1000.0 / 60.0


def graph(net, *, reverse=False, extra=None):
    """The network as a CSR matrix of edge lengths (the shortest of parallel edges). One-way edges go u -> v only
    (``reverse``: v -> u, for costs *to* a place). ``extra``: (rows, cols, weights, n_total) of further edges,
    e.g. virtual asset nodes, with ``n_total`` >= the number of nodes."""
    two = ~np.asarray(net.oneway, bool)
    rows = np.concatenate([net.u, net.v[two]])
    cols = np.concatenate([net.v, net.u[two]])
    w = np.concatenate([net.length, net.length[two]]).astype(float)
    if reverse:
        rows, cols = cols, rows
    n = net.n_nodes
    if extra is not None:
        er, ec, ew, n = extra
        rows, cols, w = np.concatenate([rows, er]), np.concatenate([cols, ec]), np.concatenate([w, ew])
    w = np.maximum(w, _EPS)
    g = sparse.csr_matrix((w, (rows, cols)), shape=(n, n))
    if g.nnz == len(w):
        return g
    # Parallel edges (rare): keep the shortest, where the CSR constructor would have added them up.
    order = np.lexsort((w, cols, rows))
    rows, cols, w = rows[order], cols[order], w[order]
    first = np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])]
    return sparse.csr_matrix((w[first], (rows[first], cols[first])), shape=(n, n))


def with_rows(g, cols, weights):
    """``g`` (n x n CSR) with one node added per entry of ``cols``, each with one edge to its column: the CSR
    arrays appended to, not a new matrix built from coordinates (that sorts every edge again)."""
    n, k = g.shape[0], len(cols)
    indptr = np.concatenate([g.indptr, g.indptr[-1] + np.arange(1, k + 1)])
    indices = np.concatenate([g.indices, np.asarray(cols, g.indices.dtype)])
    data = np.concatenate([g.data, np.maximum(np.asarray(weights, float), _EPS)])
    return sparse.csr_matrix((data, indices, indptr), shape=(n + k, n + k))


def snap(net, xy, max_snap_m):
    """(node index, snap distance in metres) of each point's nearest network node; -1 where the nearest node is
    farther than ``max_snap_m`` (the distance is still given, so the report can say how far)."""
    xy = np.asarray(xy, float).reshape(-1, 2)
    if not len(xy):
        return np.empty(0, np.int64), np.empty(0)
    if not net.n_nodes:
        return np.full(len(xy), -1, np.int64), np.full(len(xy), np.inf)
    dist, idx = cKDTree(net.xy()).query(xy, k=1)
    idx = idx.astype(np.int64)
    idx[dist > max_snap_m] = -1
    return idx, dist


def components(net):
    """Weakly connected component label of every node (islands and disconnected parts have labels of their own)."""
    if not net.n_nodes:
        return np.empty(0, np.int64)
    _, labels = csgraph.connected_components(graph(net), directed=True, connection="weak")
    return labels.astype(np.int64)


def nearest_on_network(net, origin_nodes, origin_snap, asset_nodes, asset_snap, limit=np.inf, *, reverse=None):
    """Network cost (m) from each origin to its nearest asset and that asset's position in ``asset_nodes``.

    Origins with node -1 (off the network), and origins with no asset within ``limit`` metres, get inf and -1.
    Assets with node -1 are not used. One multi-source Dijkstra on the reversed graph from virtual asset nodes.
    ``reverse``: the reversed graph of ``net`` (``graph(net, reverse=True)``) when the caller already has it.
    """
    origin_nodes = np.asarray(origin_nodes, np.int64)
    dist = np.full(len(origin_nodes), np.inf)
    which = np.full(len(origin_nodes), -1, np.int64)
    on = np.flatnonzero(np.asarray(asset_nodes) >= 0)
    if not len(on) or not len(origin_nodes):
        return dist, which
    n = net.n_nodes
    virtual = n + np.arange(len(on))
    rev = with_rows(graph(net, reverse=True) if reverse is None else reverse, np.asarray(asset_nodes)[on],
                    np.asarray(asset_snap, float)[on])
    d, _, src = csgraph.dijkstra(rev, directed=True, indices=virtual, min_only=True, return_predecessors=True,
                                 limit=limit)
    ok = origin_nodes >= 0
    dist[ok] = d[origin_nodes[ok]] + np.asarray(origin_snap)[ok]
    reached = ok.copy()
    reached[ok] = np.isfinite(d[origin_nodes[ok]]) & (src[origin_nodes[ok]] >= n)
    which[reached] = on[src[origin_nodes[reached]] - n]
    dist[~reached] = np.inf
    dist[dist > limit] = np.inf
    which[~np.isfinite(dist)] = -1
    return dist, which


class _Tiles:
    """Nodes bucketed in square tiles, so the nodes within a box are a few contiguous slices of one sorted array."""

    def __init__(self, net, size):
        self.size = float(size)
        self.x0, self.y0 = float(net.x.min()), float(net.y.min())
        tx = ((net.x - self.x0) // self.size).astype(np.int64)
        ty = ((net.y - self.y0) // self.size).astype(np.int64)
        self.ny = int(ty.max()) + 1
        key = tx * self.ny + ty
        self.order = np.argsort(key, kind="stable")
        self.keys = key[self.order]
        self.nx = int(tx.max()) + 1

    def within(self, lo, hi):
        """Sorted indices of the nodes in the tiles that cover the box ``lo``-``hi`` (x, y)."""
        tx0, ty0 = (max(0, int((lo[0] - self.x0) // self.size)), max(0, int((lo[1] - self.y0) // self.size)))
        tx1 = min(self.nx - 1, int((hi[0] - self.x0) // self.size))
        ty1 = min(self.ny - 1, int((hi[1] - self.y0) // self.size))
        parts = []
        for tx in range(tx0, tx1 + 1):
            a, b = np.searchsorted(self.keys, [tx * self.ny + ty0, tx * self.ny + ty1 + 1])
            parts.append(self.order[a:b])
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, np.int64)


def pairs_on_network(net, origin_nodes, origin_snap, asset_nodes, asset_snap, limit, *, chunk=32, g=None):
    """(origin index, asset index, cost) of every origin-asset pair whose network cost (snaps included) is at most
    ``limit`` metres: bounded Dijkstra from each distinct origin node.

    A route of at most ``limit`` metres never leaves a circle of that radius (an edge is at least as long as the
    straight line between its ends), so origins go in spatial chunks of ``chunk`` and each chunk runs on the part of
    the graph within ``limit`` of its box only: the dense result block is ``chunk`` x a few thousand nodes, not
    ``chunk`` x the whole network. ``g``: ``graph(net)`` when the caller already has it."""
    origin_nodes = np.asarray(origin_nodes, np.int64)
    asset_nodes = np.asarray(asset_nodes, np.int64)
    origin_snap, asset_snap = np.asarray(origin_snap, float), np.asarray(asset_snap, float)
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    a_on = np.flatnonzero(asset_nodes >= 0)
    o_on = np.flatnonzero(origin_nodes >= 0)
    if not len(a_on) or not len(o_on):
        return empty
    g = graph(net) if g is None else g
    tiles = _Tiles(net, max(float(limit), 100.0))
    starts, inverse = np.unique(origin_nodes[o_on], return_inverse=True)
    # The origins at each start node: o_on[o_group[o_from[s]:o_from[s + 1]]].
    o_group = np.argsort(inverse, kind="stable")
    o_from = np.searchsorted(inverse[o_group], np.arange(len(starts) + 1))
    # Assets by node: the assets at each node, to read them off a block's columns.
    a_nodes = asset_nodes[a_on]
    by_node = np.argsort(a_nodes, kind="stable")
    a_sorted = a_nodes[by_node]
    sx, sy = net.x[starts], net.y[starts]
    tile = max(float(limit), 100.0)
    spatial = np.lexsort(((sy // tile), (sx // tile)))
    pad = float(limit) + 1.0  # lengths are stored to the millimetre: a little slack over the straight line
    out_o, out_a, out_c = [], [], []
    for lo in range(0, len(starts), chunk):
        pick = spatial[lo:lo + chunk]
        nodes = starts[pick]
        xy = np.column_stack([net.x[nodes], net.y[nodes]])
        keep = tiles.within(xy.min(axis=0) - pad, xy.max(axis=0) + pad)
        sub = g[keep][:, keep]
        local = np.searchsorted(keep, nodes)
        # The assets whose node is in this part of the graph, and its column there.
        first, last = np.searchsorted(a_sorted, [keep[0], keep[-1] + 1])
        cand = by_node[first:last]
        col = np.searchsorted(keep, a_nodes[cand])
        inside = keep[np.minimum(col, len(keep) - 1)] == a_nodes[cand]
        cand, col = cand[inside], col[inside]
        if not len(cand):
            continue
        block = csgraph.dijkstra(sub, directed=True, indices=local, limit=limit)[:, col]
        kk, cc = np.nonzero(np.isfinite(block))
        if not len(kk):
            continue
        node_cost = block[kk, cc]
        # Each start node's row stands for every origin snapped to it (usually one).
        s_ = pick[kk]
        counts = o_from[s_ + 1] - o_from[s_]
        rep = np.repeat(np.arange(len(kk)), counts)
        offset = np.arange(len(rep)) - np.repeat(np.cumsum(counts) - counts, counts)
        o = o_on[o_group[o_from[s_[rep]] + offset]]
        a = a_on[cand[cc[rep]]]
        cost = node_cost[rep] + asset_snap[a] + origin_snap[o]
        keep_pair = cost <= limit
        out_o.append(o[keep_pair])
        out_a.append(a[keep_pair])
        out_c.append(cost[keep_pair])
    if not out_o:
        return empty
    o, a, c = np.concatenate(out_o), np.concatenate(out_a), np.concatenate(out_c)
    order = np.lexsort((a, o))
    return o[order], a[order], c[order]


def reach(net, node, limit):
    """Network cost (m) from ``node`` to every node, inf beyond ``limit``."""
    return csgraph.dijkstra(graph(net), directed=True, indices=int(node), limit=limit)


def isochrone(net, node, start_snap, limits_m, *, width_m=50.0):
    """A polygon per limit (EPSG:27700) covering the streets reachable within it from ``node`` (after
    ``start_snap`` metres to reach the node): every edge walked to its end, or part of the way where the limit
    falls on it, widened by ``width_m`` either side (the street and its frontages). Empty where nothing is
    reachable. Returns a list of shapely geometries in the order of ``limits_m``."""
    limits = [float(m) for m in limits_m]
    d = reach(net, node, max(limits)) + float(start_snap)
    out = []
    for limit in limits:
        # Each direction of an edge: from an end reached in time, along the edge as far as the time left allows.
        parts = []
        for a, b in ((net.u, net.v), (net.v, net.u)):
            if b is net.u:
                ok = ~np.asarray(net.oneway, bool)
                a, b = a[ok], b[ok]
                length = net.length[ok]
            else:
                length = net.length
            left = limit - d[a]
            go = np.isfinite(left) & (left > 0)
            if not go.any():
                continue
            frac = np.clip(left[go] / np.maximum(length[go], _EPS), 0.0, 1.0)
            x0, y0 = net.x[a[go]], net.y[a[go]]
            x1 = x0 + (net.x[b[go]] - x0) * frac
            y1 = y0 + (net.y[b[go]] - y0) * frac
            parts.append(np.stack([np.column_stack([x0, y0]), np.column_stack([x1, y1])], axis=1))
        if not parts and limit >= start_snap:
            parts.append(np.array([[[net.x[node], net.y[node]], [net.x[node], net.y[node]]]]))
        if not parts:
            out.append(shapely.Polygon())
            continue
        segs = shapely.linestrings(np.concatenate(parts))
        out.append(shapely.union_all(shapely.buffer(segs, width_m, quad_segs=4)).simplify(2.0))
    return out
