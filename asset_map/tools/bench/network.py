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
         "england": [(700, 10_000, 200_000), (33_755, 1_000_000, 1_000_000)]}
SAMPLE_ORIGINS = 12


def _network(engine, county, edges, workdir):
    from pyproj import Transformer

    from asset_map import synth
    from asset_map.store import network

    b = county.districts.to_crs(27700).total_bounds
    path = synth.write_street_grid(synth.StreetGrid.covering(tuple(b), edges), workdir / f"grid-{edges}.osm.pbf")
    import psutil

    proc = psutil.Process()
    t = time.perf_counter()
    summary = network.load(engine, path, mode="walk", buffer_m=1_000, source="synthetic street grid")
    seconds = time.perf_counter() - t
    del Transformer
    return summary, seconds, proc.memory_info().rss, path


def _request():
    from asset_map import gaps

    return gaps.GapRequest.from_args({"need": "imd:2025", "distance": "walk", "catchment": "1600"})


def _end_to_end(engine, workdir, settings):
    from asset_map import gaps

    timings = {}
    t = time.perf_counter()
    result = gaps.run(engine, _request(), role="officer", timings=timings, settings=settings)
    t_out = time.perf_counter()
    csv, geojson = gaps.csv_text(result), gaps.geojson_text(result)
    (workdir / "net-gaps.csv").write_text(csv, encoding="utf-8")
    (workdir / "net-gaps.geojson").write_text(geojson, encoding="utf-8")
    timings["write CSV + GeoJSON"] = time.perf_counter() - t_out
    return time.perf_counter() - t, timings, result, csv


def _networkx_reference(engine, result, catchment=1600.0, sample=SAMPLE_ORIGINS, seed=1):
    """Seconds the same distances take with one networkx shortest-path call per origin-asset pair, extrapolated
    from ``sample`` origins: the pairs within the catchment in a straight line (each may be within it on the
    network), and the nearest asset by checking assets in order of straight-line distance until the next one is
    farther in a straight line than the best route found (exact, and as few calls as a per-pair method can do)."""
    import networkx as nx
    from pyproj import Transformer
    from scipy.spatial import cKDTree

    from asset_map.analysis import network as nw
    from asset_map.store import network

    net, _ = network.read(engine, "walk")
    g = nx.Graph()
    g.add_weighted_edges_from(zip(net.u.tolist(), net.v.tolist(), net.length.tolist()))
    pts = result.assets
    ax, ay = Transformer.from_crs(4326, 27700, always_xy=True).transform(pts["lon"].to_numpy(), pts["lat"].to_numpy())
    a_xy = np.column_stack([ax, ay])
    a_node, a_snap = nw.snap(net, a_xy, 500)
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


def _dask_compare(engine, result_local, settings, workdir):
    """The same report with the partitions on a 2-worker LocalCluster: seconds, worker memory, identical?"""
    import psutil
    from distributed import LocalCluster

    from asset_map import compute

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="4GiB") as cluster:
        remote = {**settings, "DASK_SCHEDULER": cluster.scheduler_address}
        try:
            _end_to_end(engine, workdir, remote)  # warm: workers import the analysis code once
            seconds, timings, result, csv = _end_to_end(engine, workdir, remote)
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
        _end_to_end(engine, ctx.workdir, settings)  # warm
        seconds, timings, result, csv_local = _end_to_end(engine, ctx.workdir, settings)
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
        measure_s = timings["measures and classes"]
        net = result.inputs["network"]
        target = 30.0 if n_areas == 700 else None
        figures.append(Figure(
            area="network", name=f"walk gap report end to end (PostGIS -> network measures -> CSV + GeoJSON), {label}",
            value=round(seconds, 3), unit="s", target=f"< {target:g} s" if target else None,
            met=(seconds < target) if target else None,
            notes=f"{stages}; {net['partitions']} district partitions; {net['assets_off_network']:,} assets off "
                  f"the network"))
        if n_areas <= 5_000:
            ref_s, calls, agree, sampled = _networkx_reference(engine, result)
            figures.append(Figure(
                area="network", name=f"network measures (nearest + pairs within 1,600 m + 2SFCA), {label}",
                value=round(measure_s, 3), unit="s",
                reference="networkx shortest_path_length per origin-asset pair (sampled, extrapolated)",
                reference_value=round(ref_s, 3), target=">= 20x faster than the reference",
                met=ref_s / measure_s >= 20,
                notes=f"x{ref_s / measure_s:.1f}; {calls:,} networkx calls for {sampled} sampled origins; nearest "
                      f"distance equal to ours for {agree}/{sampled}"))
        d_s, d_timings, csv_dask, rss = _dask_compare(engine, result, settings, ctx.workdir)
        figures.append(Figure(
            area="network", name=f"walk gap report on a 2-worker LocalCluster, {label}",
            value=round(d_s, 3), unit="s", reference="the same report in-process", reference_value=round(seconds, 3),
            target="<= 1.3x in-process", met=d_s <= 1.3 * seconds,
            notes=f"x{d_s / seconds:.2f}; measures {d_timings['measures and classes']:.2f} s vs {measure_s:.2f} s; "
                  f"worker memory {', '.join(f'{r / 2**20:,.0f} MB' for r in rss)}; CSV identical: "
                  f"{csv_dask == csv_local}"))
        del county, placed, result
    engine.dispose()
    return figures
