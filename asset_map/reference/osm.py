"""Street networks from OpenStreetMap extracts (.osm.pbf) with pyosmium: file in, arrays out.

Which ways a mode may use follows the OSM highway and access tags (as osmnx's network types do, simplified):
walkers use every street and path but motorways and ways closed to them (foot=no/private, access=no/private without
a foot permission), in both directions; drivers use roads open to motor vehicles and respect one-way streets;
cyclists use roads but motorways, cycleways and paths where bicycles are allowed, and respect one-way streets unless
cycling against them is allowed.

Every OSM node of a kept way is a network node (bends included), so the network draws streets as they are and
isochrones follow them. Only the part within the given box (the loaded districts plus a buffer) is kept.
"""

import hashlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyproj import Transformer

from asset_map.analysis.network import MODES, Network
from asset_map.errors import InputError

_ROADS = {"trunk", "trunk_link", "primary", "primary_link", "secondary", "secondary_link", "tertiary",
          "tertiary_link", "unclassified", "residential", "living_street", "service", "road"}
HIGHWAYS = {
    "walk": _ROADS | {"footway", "path", "pedestrian", "steps", "track", "cycleway", "bridleway", "corridor"},
    "drive": _ROADS | {"motorway", "motorway_link"},
    "cycle": _ROADS | {"cycleway", "path", "track", "bridleway", "pedestrian", "footway"} - {"trunk", "trunk_link"},
}
_CLOSED = {"no", "private"}
_ALLOWED = {"yes", "designated", "permissive", "destination"}
_MODE_KEY = {"walk": "foot", "drive": "motor_vehicle", "cycle": "bicycle"}
PBF_MAGIC = b"OSMHeader"


@dataclass
class OsmNetwork:
    network: Network
    osm_id: np.ndarray      # OSM node id per network node
    lon: np.ndarray
    lat: np.ndarray
    highway: np.ndarray     # per edge
    source_date: str | None
    sha256: str
    ways: int               # ways of the mode found in the whole file


def _usable(tags, mode):
    """(usable, oneway direction: 0 both ways, 1 forward, -1 backward) of a way with these tags for ``mode``."""
    hw = tags.get("highway")
    if hw not in HIGHWAYS[mode] or tags.get("area") == "yes":
        return False, 0
    own = tags.get(_MODE_KEY[mode]) or (tags.get("motorcar") if mode == "drive" else None)
    if own in _CLOSED:
        return False, 0
    if tags.get("access") in _CLOSED and own not in _ALLOWED:
        return False, 0
    if mode == "cycle" and hw in ("footway", "pedestrian") and own not in _ALLOWED:
        return False, 0
    if mode == "walk":
        return True, 0
    ow = tags.get("oneway")
    if mode == "cycle" and tags.get("oneway:bicycle") == "no":
        ow = "no"
    if ow in ("yes", "true", "1"):
        return True, 1
    if ow == "-1":
        return True, -1
    if ow is None and (hw in ("motorway", "motorway_link") or tags.get("junction") == "roundabout"):
        return True, 1
    return True, 0


def _check_file(path):
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path.name}: the file is empty; expected an OpenStreetMap extract (.osm.pbf).")
    with path.open("rb") as fh:
        head = fh.read(64)
    if PBF_MAGIC not in head:
        raise InputError(f"{path.name}: not an OpenStreetMap PBF file (it does not start with an OSMHeader "
                         "block); expected an extract such as staffordshire-latest.osm.pbf.")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_network(path, mode, bbox=None):
    """The ``mode`` network of the extract at ``path``, clipped to ``bbox`` (min lon, min lat, max lon, max lat;
    an edge is kept when one of its ends is inside). Raises InputError for a missing, empty, truncated or non-PBF
    file, a file with no ways for the mode, or one whose ways all lie outside the box."""
    import osmium

    if mode not in MODES:
        raise InputError(f"Mode {mode!r} is not known; expected one of {', '.join(MODES)}.")
    path = Path(path)
    sha = _check_file(path)
    try:
        reader = osmium.io.Reader(str(path))
        stamp = reader.header().get("osmosis_replication_timestamp") or reader.header().get("timestamp")
        reader.close()
        with tempfile.TemporaryDirectory(prefix="asset-map-osm-") as tmp:
            opl = Path(tmp) / "highways.opl"
            _highways_as_opl(path, opl)
            got = _parse_opl(opl, mode)
    except (RuntimeError, osmium.InvalidLocationError) as err:
        msg = f"{path.name}: cannot be read as an OpenStreetMap PBF file (truncated or damaged?): {err}"
        raise InputError(msg) from err
    refs, lons, lats, starts, directions, highways, ways = got
    if not ways:
        raise InputError(f"{path.name}: no ways usable for {mode} (no highway=* ways open to it) in the file.")
    return _build(refs, lons, lats, starts, directions, highways, mode, bbox, path, sha, stamp or None, ways)


def _highways_as_opl(path, opl):
    """The extract's highway ways, each with its nodes' locations, written as OPL text by libosmium: the whole file
    (millions of nodes, buildings and all) is read, located and filtered in C++, with no Python per object."""
    import osmium

    locations = osmium.NodeLocationsForWays(osmium.index.create_map("flex_mem"))
    locations.ignore_errors()  # a way's node missing from the extract: its location is left invalid, and skipped
    writer = osmium.SimpleWriter(osmium.io.File(str(opl), "opl,add_metadata=false,locations_on_ways=true"))
    try:
        osmium.apply(str(path), locations, osmium.filter.EntityFilter(osmium.osm.WAY),
                     osmium.filter.KeyFilter("highway"), writer)
    finally:
        writer.close()


_OPL_ESCAPE = re.compile(r"%([0-9a-fA-F]+)%")
_OPL_NODE = re.compile(r"n(-?\d+)x(-?[\d.]+)y(-?[\d.]+)")


def _opl_text(value):
    return _OPL_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value) if "%" in value else value


def _parse_opl(opl, mode):
    """(node ids, lons, lats, way starts, directions, highway per way, ways) of the ``mode`` ways in an OPL file of
    ways with locations. A way is one line of three fields, ``w<id> T<k=v,...> N<n<id>x<lon>y<lat>,...>`` (OPL escapes
    spaces and commas inside tags), read as a table by Arrow's CSV reader; the tags are judged once per distinct
    tag list, and the node lists of the ways kept are read as numbers in one pass over their bytes."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    empty = (np.empty(0, np.int64), np.empty(0), np.empty(0), np.zeros(1, np.int64), np.empty(0, np.int8),
             np.empty(0, dtype=object), 0)
    if Path(opl).stat().st_size == 0:
        return empty
    table = pacsv.read_csv(
        opl, read_options=pacsv.ReadOptions(column_names=["id", "tags", "nodes"], block_size=1 << 24),
        parse_options=pacsv.ParseOptions(delimiter=" ", quote_char=False, escape_char=False),
        convert_options=pacsv.ConvertOptions(column_types={"id": pa.string(), "tags": pa.string(),
                                                           "nodes": pa.string()}))
    tags_col = pc.dictionary_encode(table["tags"].combine_chunks())
    verdicts = []
    for tags_field in tags_col.dictionary.to_pylist():
        tags_field = tags_field or "T"
        tags = dict(kv.split("=", 1) for kv in tags_field[1:].split(",") if "=" in kv)
        if "%" in tags_field:
            tags = {_opl_text(k): _opl_text(v) for k, v in tags.items()}
        verdicts.append((*_usable(tags, mode), tags.get("highway")))
    usable = np.array([v[0] for v in verdicts], bool)
    direction = np.array([v[1] for v in verdicts], np.int8)
    highway = np.array([v[2] for v in verdicts], dtype=object)
    code = tags_col.indices.to_numpy(zero_copy_only=False)
    nodes = table["nodes"].combine_chunks()
    counts = pc.add(pc.count_substring(nodes, ","), 1).to_numpy(zero_copy_only=False)
    keep = usable[code] & (counts >= 2)
    if not keep.any():
        return empty
    kept = nodes.filter(pa.array(keep))
    counts = counts[keep].astype(np.int64)
    # The kept node lists' bytes, one after the other: every node starts with "n", so with n, x, y and commas made
    # spaces (and the lists' leading "N" dropped) they are id, lon, lat triples.
    body = pc.utf8_slice_codeunits(kept, 1)
    _, offset_buf, data_buf = body.buffers()
    width = np.int64 if pa.types.is_large_string(body.type) else np.int32
    offsets = np.frombuffer(offset_buf, dtype=width)[body.offset:body.offset + len(body) + 1]
    raw = data_buf.to_pybytes()[offsets[0]:offsets[-1]]
    # One node per line, "id lon lat", read by Arrow's number parser.
    lines = raw.translate(_OPL_SEPARATORS, b",")
    try:
        triples = pacsv.read_csv(
            pa.py_buffer(lines), read_options=pacsv.ReadOptions(column_names=["id", "lon", "lat"],
                                                                block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=" ", quote_char=False, escape_char=False),
            convert_options=pacsv.ConvertOptions(column_types={"id": pa.int64(), "lon": pa.float64(),
                                                               "lat": pa.float64()}))
        ids = triples["id"].to_numpy()
        lon, lat = triples["lon"].to_numpy(), triples["lat"].to_numpy()
        complete = len(ids) == int(counts.sum()) and not (triples["lon"].null_count or triples["lat"].null_count)
    except pa.ArrowInvalid:
        complete = False
    if not complete:
        # Some locations are missing (written without numbers): read node by node, leaving those nodes out.
        found = [_OPL_NODE.findall(way) for way in body.to_pylist()]
        counts = np.array([len(f) for f in found], np.int64)
        ids = np.array([int(t[0]) for f in found for t in f], np.int64)
        lon = np.array([float(t[1]) for f in found for t in f])
        lat = np.array([float(t[2]) for f in found for t in f])
    starts = np.concatenate([[0], np.cumsum(counts)])
    return ids, lon, lat, starts, direction[code[keep]], highway[code[keep]], int(keep.sum())


_OPL_SEPARATORS = bytes.maketrans(b"nxy", b"\n  ")


def _build(refs, lons, lats, starts, directions, highways, mode, bbox, path, sha, stamp, ways):
    # Consecutive nodes of a way are an edge; way boundaries are not.
    way_of = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    same = way_of[1:] == way_of[:-1]
    a = np.flatnonzero(same)
    b = a + 1
    w = way_of[a]
    d = directions[w]
    keep = np.ones(len(a), bool)
    if bbox is not None:
        x0, y0, x1, y1 = bbox
        inside = (lons >= x0) & (lons <= x1) & (lats >= y0) & (lats <= y1)
        keep = inside[a] | inside[b]
    a, b, w, d = a[keep], b[keep], w[keep], d[keep]
    if not len(a):
        raise InputError(f"{path.name}: none of its {ways:,} {mode} ways lies within the loaded districts plus the "
                         f"buffer ({_box_text(bbox)}); is it an extract of another part of the country?")
    # Backward one-ways are stored forward.
    a, b = np.where(d < 0, b, a), np.where(d < 0, a, b)
    ids, inverse = np.unique(np.concatenate([refs[a], refs[b]]), return_inverse=True)
    u, v = inverse[:len(a)], inverse[len(a):]
    first = np.zeros(len(ids), np.int64)
    first[inverse] = np.concatenate([a, b])
    lon, lat = lons[first], lats[first]
    x, y = Transformer.from_crs(4326, 27700, always_xy=True).transform(lon, lat)
    x, y = np.asarray(x), np.asarray(y)
    length = np.hypot(x[u] - x[v], y[u] - y[v])
    loop = u != v
    net = Network(x, y, u[loop].astype(np.int64), v[loop].astype(np.int64), length[loop], (d != 0)[loop], mode)
    return OsmNetwork(net, ids, lon, lat, highways[w][loop], stamp, sha, ways)


def _box_text(bbox):
    return "no box" if bbox is None else ", ".join(f"{v:.4f}" for v in bbox)
