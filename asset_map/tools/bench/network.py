"""Benchmark: gap reports by walking distance on a street network (issue 18), against references measured in the same
run on the same data:

- county (700 areas, 10,000 assets, a synthetic street grid of about 200,000 edges over the county, written as an
  .osm.pbf and loaded by `asset-map load network`'s code): the report end to end (PostGIS -> network measures per
  district -> classes -> CSV + GeoJSON), target under 30 s; and the same distances by networkx, one shortest-path
  call per origin-asset pair (sampled origins, extrapolated), target at least 20 times slower than ours;
- the same network measures on a 2-worker dask.distributed LocalCluster against in-process (target within 1.3x),
  with each worker's memory, and the results compared;
- at england scale also 33,755 areas and 1,000,000 assets on a coarser grid (the size the machine allows).

Run alone: ``python -m asset_map.tools.bench --scale small --only network``.
"""

import time

import numpy as np

from asset_map.tools.bench.core import BenchContext, Figure

SIZES = {"small": [(700, 10_000, 200_000)], "county": [(700, 10_000, 200_000)],
         "england": [(33_755, 1_000_000, 1_000_000)]}
SAMPLE_ORIGINS = 12
# A county extract of about 50 MB (Staffordshire's is about that): some 6 million nodes, a third of them on streets.
EXTRACT_STREET_NODES = 1_900_000
EXTRACT_OTHER_NODES = 5_300_000


def write_county_extract(bounds_m, path, *, street_nodes=EXTRACT_STREET_NODES, other_nodes=EXTRACT_OTHER_NODES,
                         seed=1):
    """An .osm.pbf the size and shape of a county extract: a jittered street lattice (ways of 8 nodes, half of them
    footways) and buildings (closed 4-node rings, not highways) filling the box; written as OPL text and converted by
    pyosmium's writer, since writing millions of objects one by one from Python takes minutes."""
    import osmium
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = bounds_m
    side = int(np.sqrt(street_nodes))
    gx, gy = np.meshgrid(np.linspace(minx, maxx, side), np.linspace(miny, maxy, side))
    step = (maxx - minx) / side
    sx = gx.ravel() + rng.uniform(-0.3, 0.3, gx.size) * step
    sy = gy.ravel() + rng.uniform(-0.3, 0.3, gy.size) * step
    bx = rng.uniform(minx, maxx, other_nodes)
    by = rng.uniform(miny, maxy, other_nodes)
    lon, lat = Transformer.from_crs(27700, 4326, always_xy=True).transform(np.r_[sx, bx], np.r_[sy, by])
    opl = path.with_suffix(".opl")
    with opl.open("w") as fh:
        ids = np.arange(1, len(lon) + 1)
        fh.write("\n".join(f"n{i} v1 x{x:.7f} y{y:.7f}" for i, x, y in zip(ids.tolist(), lon.tolist(),
                                                                           lat.tolist())))
        fh.write("\n")
        wid = 1
        lines = []
        grid = np.arange(1, side * side + 1).reshape(side, side)
        for rows in (grid, grid.T):
            for r, row in enumerate(rows):
                for k in range(0, side - 1, 7):
                    seg = row[k:k + 8]
                    kind = "residential" if (r + k) % 2 else "footway"
                    lines.append(f"w{wid} v1 Thighway={kind} N" + ",".join(f"n{n}" for n in seg.tolist()))
                    wid += 1
        base = side * side + 1
        for b in range(0, other_nodes - 3, 4):
            n = base + b
            lines.append(f"w{wid} v1 Tbuilding=yes Nn{n},n{n + 1},n{n + 2},n{n + 3},n{n}")
            wid += 1
        fh.write("\n".join(lines))
        fh.write("\n")
    if path.exists():
        path.unlink()
    writer = osmium.WriteHandler(str(path))
    osmium.apply(str(opl), writer)
    writer.close()
    opl.unlink()
    return path


_LOAD_SCRIPT = """
import json, resource, sys, time
from asset_map.config import load_settings
from asset_map.store import network
from asset_map.store.db import make_engine
from asset_map.reference import osm
read = osm.read_network
timed = {}
def timed_read(*args, **kw):
    t0 = time.perf_counter()
    try:
        return read(*args, **kw)
    finally:
        timed["read"] = time.perf_counter() - t0
osm.read_network = timed_read
t = time.perf_counter()
s = network.load(make_engine(sys.argv[1], load_settings()), sys.argv[2], mode="walk", buffer_m=1000)
s["seconds"] = time.perf_counter() - t
s["read_seconds"] = timed["read"]
s["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(s))
"""

# The reader before issue 18's speed-up, kept as the same-run reference: pyosmium's FileProcessor with node
# locations and a highway filter, and Python for every way and every node of it (the arrays are then built as now).
_PER_OBJECT_READ_SCRIPT = """
import json, resource, sys, time
import numpy as np
import osmium
from asset_map.reference import osm
t = time.perf_counter()
refs, lons, lats, starts, directions, highways, ways = [], [], [], [0], [], [], 0
fp = (osmium.FileProcessor(sys.argv[1], osmium.osm.NODE | osmium.osm.WAY).with_locations()
      .with_filter(osmium.filter.KeyFilter("highway")))
for obj in fp:
    if not obj.is_way():
        continue
    ok, direction = osm._usable(obj.tags, "walk")
    if not ok or len(obj.nodes) < 2:
        continue
    ways += 1
    for n in obj.nodes:
        if not n.location.valid():
            continue
        refs.append(n.ref)
        lons.append(n.location.lon)
        lats.append(n.location.lat)
    starts.append(len(refs))
    directions.append(direction)
    highways.append(obj.tags.get("highway"))
box = tuple(float(v) for v in sys.argv[2].split(","))
got = osm._build(np.asarray(refs, np.int64), np.asarray(lons), np.asarray(lats), np.asarray(starts, np.int64),
                 np.asarray(directions, np.int8), np.asarray(highways, dtype=object), "walk", box, None, "", None, ways)
print(json.dumps({"seconds": time.perf_counter() - t, "edges": int(got.network.n_edges),
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _county_extract_load(ctx, county):
    """`asset-map load network` of a ~50 MB extract in a process of its own: seconds and peak memory."""
    import json
    import subprocess
    import sys

    b = county.districts.to_crs(27700).total_bounds
    path = write_county_extract(tuple(b), ctx.workdir / "county-extract.osm.pbf")
    done = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, ctx.database_url, str(path)], capture_output=True,
                          text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"loading {path.name} failed: {done.stderr[-1500:]}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    box = got["bbox"]
    ref = subprocess.run([sys.executable, "-c", _PER_OBJECT_READ_SCRIPT, str(path), box], capture_output=True,
                         text=True, check=False)
    if ref.returncode:
        raise RuntimeError(f"reading {path.name} per object failed: {ref.stderr[-1500:]}")
    got["reference"] = json.loads(ref.stdout.strip().splitlines()[-1])
    return got, path.stat().st_size


def _network(engine, county, edges, workdir):
    import psutil

    from asset_map import synth
    from asset_map.store import network

    b = county.districts.to_crs(27700).total_bounds
    path = synth.write_street_grid(synth.StreetGrid.covering(tuple(b), edges), workdir / f"grid-{edges}.osm.pbf")
    proc = psutil.Process()
    t = time.perf_counter()
    summary = network.load(engine, path, mode="walk", buffer_m=1_000, source="synthetic street grid")
    seconds = time.perf_counter() - t
    return summary, seconds, proc.memory_info().rss, path


def _request():
    from asset_map import gaps

    return gaps.GapRequest.from_args({"need": "imd:2025", "distance": "walk", "catchment": "1600"})


class _Timed:
    """Seconds spent in network_gap.plan and .measure (the network measures proper) while a report runs."""

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        from asset_map.analysis import network_gap

        self.saved = network_gap.plan, network_gap.measure

        def timed(function):
            def call(*args, **kw):
                t = time.perf_counter()
                try:
                    return function(*args, **kw)
                finally:
                    self.seconds += time.perf_counter() - t
            return call

        network_gap.plan, network_gap.measure = (timed(f) for f in self.saved)
        return self

    def __exit__(self, *exc):
        from asset_map.analysis import network_gap

        network_gap.plan, network_gap.measure = self.saved


def _end_to_end(engine, workdir, settings):
    from asset_map import gaps

    timings = {}
    t = time.perf_counter()
    with _Timed() as timed:
        result = gaps.run(engine, _request(), role="officer", timings=timings, settings=settings)
    timings["network measures (plan + partitions)"] = timed.seconds
    t_out = time.perf_counter()
    csv, geojson = gaps.csv_text(result), gaps.geojson_text(result)
    (workdir / "net-gaps.csv").write_text(csv, encoding="utf-8")
    (workdir / "net-gaps.geojson").write_text(geojson, encoding="utf-8")
    timings["write CSV + GeoJSON"] = time.perf_counter() - t_out
    return time.perf_counter() - t, timings, result, csv


def _networkx_inputs(engine, result):
    """The stored walk network as arrays and as a networkx graph, and the report's assets snapped to it."""
    import networkx as nx
    from pyproj import Transformer

    from asset_map.analysis import network as nw
    from asset_map.store import network

    net, _ = network.read(engine, "walk")
    g = nx.Graph()
    g.add_weighted_edges_from(zip(net.u.tolist(), net.v.tolist(), net.length.tolist()))
    pts = result.assets
    ax, ay = Transformer.from_crs(4326, 27700, always_xy=True).transform(pts["lon"].to_numpy(), pts["lat"].to_numpy())
    a_xy = np.column_stack([ax, ay])
    a_node, a_snap = nw.snap(net, a_xy, 500)
    return net, g, a_xy, a_node, a_snap


def _networkx_reference(engine, result, catchment=1600.0, sample=SAMPLE_ORIGINS, seed=1):
    """Seconds the same distances take with one networkx shortest-path call per origin-asset pair, extrapolated
    from ``sample`` origins: the pairs within the catchment in a straight line (each may be within it on the
    network), and the nearest asset by checking assets in order of straight-line distance until the next one is
    farther in a straight line than the best route found (exact, and as few calls as a per-pair method can do)."""
    import networkx as nx
    from scipy.spatial import cKDTree

    from asset_map.analysis import network as nw

    net, g, a_xy, a_node, a_snap = _networkx_inputs(engine, result)
    frame = result.frame
    ok = np.flatnonzero((frame["network_status"] == "ok").to_numpy())
    rng = np.random.default_rng(seed)
    chosen = rng.choice(ok, size=min(sample, len(ok)), replace=False)
    o_xy = frame[["origin_x", "origin_y"]].to_numpy(float)[chosen]
    o_node, o_snap = nw.snap(net, o_xy, 500)
    tree = cKDTree(a_xy)
    calls, agree = 0, 0
    t = time.perf_counter()
    for k in range(len(chosen)):
        for j in tree.query_ball_point(o_xy[k], catchment):
            if a_node[j] >= 0:
                nx.shortest_path_length(g, int(o_node[k]), int(a_node[j]), weight="weight")
                calls += 1
        best = np.inf
        dist, order = tree.query(o_xy[k], k=min(len(a_xy), 400))
        for d, j in zip(dist, order):
            if d > best:
                break
            if a_node[j] < 0:
                continue
            try:
                cost = nx.shortest_path_length(g, int(o_node[k]), int(a_node[j]), weight="weight") + a_snap[j]
            except nx.NetworkXNoPath:
                continue
            calls += 1
            best = min(best, cost + o_snap[k])
        agree += abs(best - float(frame["nearest_any_m"].iloc[chosen[k]])) < 0.5
    seconds = time.perf_counter() - t
    return seconds * len(ok) / max(len(chosen), 1), calls, agree, len(chosen)


def _networkx_every_pair(engine, result, catchment=1600.0, search=20_000.0, pairs=300, seed=2):
    """Seconds for one networkx shortest-path call per origin-asset pair the analysis covers (within the catchment
    for 2SFCA, within the search distance for the nearest asset, in a straight line), from ``pairs`` random pairs
    timed and extrapolated to all of them."""
    import networkx as nx
    from scipy.spatial import cKDTree

    from asset_map.analysis import network as nw

    net, g, a_xy, a_node, _ = _networkx_inputs(engine, result)
    o_xy = result.frame[["origin_x", "origin_y"]].to_numpy(float)
    o_node, _ = nw.snap(net, o_xy, 500)
    tree = cKDTree(a_xy)
    counts = np.array([len(c) for c in tree.query_ball_point(o_xy, search)])
    total = int(counts.sum())  # the catchment's pairs are among these
    rng = np.random.default_rng(seed)
    sample_o = rng.choice(len(o_xy), size=pairs, p=counts / counts.sum())
    t = time.perf_counter()
    done = 0
    for o in sample_o:
        near = tree.query_ball_point(o_xy[o], search)
        j = near[rng.integers(len(near))]
        if o_node[o] < 0 or a_node[j] < 0:
            continue
        try:
            nx.shortest_path_length(g, int(o_node[o]), int(a_node[j]), weight="weight")
        except nx.NetworkXNoPath:
            pass
        done += 1
    per_pair = (time.perf_counter() - t) / max(done, 1)
    return per_pair * total, total, per_pair


def _dask_compare(engine, result_local, settings, workdir):
    """The same report with the partitions on a 2-worker LocalCluster: seconds, worker memory, identical?"""
    import psutil
    from distributed import LocalCluster

    from asset_map import compute

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="4GiB") as cluster:
        remote = {**settings, "DASK_SCHEDULER": cluster.scheduler_address}
        try:
            # Warm: workers import the analysis code once, and the network is sent to them (kept there while this
            # process holds it, as a running service would between reports).
            first, *_ = _end_to_end(engine, workdir, remote)
            seconds, timings, result, csv = _end_to_end(engine, workdir, remote)
            timings["first"] = first
            client = compute.DaskRunner(cluster.scheduler_address).client()
            rss = client.run(lambda: psutil.Process().memory_info().rss)
        finally:
            compute.close_clients()
    return seconds, timings, csv, sorted(rss.values())


def run(ctx: BenchContext):
    from asset_map import synth
    from asset_map.tools.bench.gaps import _load
    from asset_map.config import load_settings
    from asset_map.store.db import make_engine

    settings = {**load_settings(), "STATEMENT_TIMEOUT_MS": 600_000, "DASK_SCHEDULER": ""}
    engine = make_engine(ctx.database_url, settings)
    figures = []
    for n_areas, n_assets, n_edges in SIZES.get(ctx.scale, SIZES["small"]):
        county = synth.generate(areas=n_areas, assets=n_assets, seed=1)
        placed = _load(engine, county, ctx.workdir)
        summary, load_s, rss, path = _network(engine, county, n_edges, ctx.workdir)
        label = f"{n_areas:,} areas, {len(placed):,} assets, {summary['edges']:,}-edge network"
        figures.append(Figure(
            area="network", name=f"load network (.osm.pbf -> PostGIS), {summary['edges']:,} edges",
            value=round(load_s, 3), unit="s", notes=f"{path.stat().st_size / 1e6:.1f} MB file; process RSS after "
                                                    f"{rss / 2**30:.2f} GiB"))
        if n_areas == 700:
            got, size = _county_extract_load(ctx, county)
            ref = got["reference"]
            figures.append(Figure(
                area="network", name=f"load a county-sized extract ({size / 1e6:.0f} MB .osm.pbf, "
                                     f"{got['edges']:,} walk edges kept)",
                value=round(got["seconds"], 2), unit="s", target="< 120 s and < 4 GB", reference="peak memory (GB)",
                reference_value=round(got["peak_rss"] / 1e9, 2),
                met=got["seconds"] < 120 and got["peak_rss"] < 4e9,
                notes=f"peak RSS {got['peak_rss'] / 2**30:.2f} GiB; {got['nodes']:,} nodes; a separate process; "
                      f"reading {got['read_seconds']:.1f} s, the rest COPY into PostGIS"))
            figures.append(Figure(
                area="network", name="read the county-sized extract (.osm.pbf -> arrays)",
                value=round(got["read_seconds"], 2), unit="s",
                reference="the per-object reader it replaced (pyosmium FileProcessor, Python per way and node)",
                reference_value=round(ref["seconds"], 2),
                notes=f"x{ref['seconds'] / got['read_seconds']:.1f} faster; the reference's peak RSS "
                      f"{ref['peak_rss'] / 2**30:.2f} GiB; same edges: {ref['edges'] == got['edges']}"))
            # The report below runs on the synthetic street grid again.
            summary, _, _, _ = _network(engine, county, n_edges, ctx.workdir)
        _end_to_end(engine, ctx.workdir, settings)  # warm
        seconds, timings, result, csv_local = _end_to_end(engine, ctx.workdir, settings)
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
        # The whole gap.analyse step (network measures, straight-line measures, counts inside, classes): what the
        # per-pair references are compared with, so nothing the report does is left out of ours.
        measure_s = timings["measures and classes"]
        network_s = timings["network measures (plan + partitions)"]
        net = result.inputs["network"]
        target = 30.0 if n_areas == 700 else None
        figures.append(Figure(
            area="network", name=f"walk gap report end to end (PostGIS -> network measures -> CSV + GeoJSON), {label}",
            value=round(seconds, 3), unit="s", target=f"< {target:g} s" if target else None,
            met=(seconds < target) if target else None,
            notes=f"{stages}; {net['partitions']} district partitions; {net['assets_off_network']:,} assets off "
                  f"the network"))
        if n_areas <= 5_000:
            every_s, n_pairs, per_pair = _networkx_every_pair(engine, result)
            figures.append(Figure(
                area="network", name=f"network measures (nearest within 20 km + pairs within 1,600 m + 2SFCA), "
                                     f"{label}",
                value=round(measure_s, 3), unit="s",
                reference="networkx shortest_path_length per origin-asset pair within the search distance (300 "
                          "pairs sampled, extrapolated)",
                reference_value=round(every_s, 1), target=">= 20x faster than the reference",
                met=every_s / measure_s >= 20,
                notes=f"x{every_s / measure_s:,.0f}; {n_pairs:,} pairs at {per_pair * 1000:.1f} ms each"))
            ref_s, calls, agree, sampled = _networkx_reference(engine, result)
            figures.append(Figure(
                area="network", name=f"network measures vs a pruned per-pair method, {label}",
                value=round(measure_s, 3), unit="s",
                reference="networkx per pair, pruned: pairs within 1,600 m, nearest by straight-line order until "
                          "the straight line exceeds the best route (12 origins sampled, extrapolated)",
                reference_value=round(ref_s, 3), target=">= 20x faster than the reference",
                met=ref_s / measure_s >= 20,
                notes=f"x{ref_s / measure_s:.1f}; {calls:,} networkx calls for {sampled} sampled origins; nearest "
                      f"distance equal to ours for {agree}/{sampled}; the network measures alone (snapping, "
                      f"partitions, nearest, pairs, 2SFCA) {network_s:.2f} s, x{ref_s / network_s:.0f}"))
        d_s, d_timings, csv_dask, rss = _dask_compare(engine, result, settings, ctx.workdir)
        figures.append(Figure(
            area="network", name=f"walk gap report on a 2-worker LocalCluster, {label}",
            value=round(d_s, 3), unit="s", reference="the same report in-process", reference_value=round(seconds, 3),
            target="<= 1.3x in-process", met=d_s <= 1.3 * seconds,
            notes=f"x{d_s / seconds:.2f}; measures {d_timings['measures and classes']:.2f} s vs {measure_s:.2f} s "
                  f"(network measures {d_timings['network measures (plan + partitions)']:.2f} s vs "
                  f"{network_s:.2f} s); "
                  f"the first report on a fresh cluster (imports, network sent) {d_timings['first']:.2f} s; "
                  f"worker memory {', '.join(f'{r / 2**20:,.0f} MB' for r in rss)}; CSV identical: "
                  f"{csv_dask == csv_local}"))
        del county, placed, result
    engine.dispose()
    return figures
