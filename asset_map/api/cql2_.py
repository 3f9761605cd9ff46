"""CQL2 filters (OGC API - Features Part 3) as SQL conditions with bound parameters.

The ``cql2`` library parses both encodings (``cql2-text`` and ``cql2-json``) into the canonical JSON tree and reports
where a text is malformed; this module walks that tree and writes SQL over a layer's own column expressions, every
value a bound parameter, so no text from a filter ever becomes SQL. It checks what the parser does not: that each
property is a queryable of the collection, that values suit the property's type, and bounds (length, nesting,
number of terms, list and geometry sizes) so a hostile filter costs little.

Spatial: geometries are CRS84 lon/lat (EPSG:4326, the store's CRS); ``S_DWITHIN`` distances are metres on the
spheroid (geography), with an index-friendly box around the geometry first.
"""

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import cql2

from asset_map.errors import InputError

TEXT, JSON = "cql2-text", "cql2-json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS_OK = {CRS84, "http://www.opengis.net/def/crs/EPSG/0/4326", "EPSG:4326", "OGC:CRS84"}
MAX_TEXT = 20_000
MAX_DEPTH = 40
MAX_NODES = 2_000
MAX_LIST = 1_000
MAX_COORDS = 10_000
MAX_DISTANCE_M = 1_000_000
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/array-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    # The names of the drafts, which QGIS 3.32+ and GDAL look for.
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/array-operators",
]
_COMPARE = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_SPATIAL = {"s_intersects": "ST_Intersects", "s_within": "ST_Within", "s_contains": "ST_Contains",
            "s_disjoint": "ST_Disjoint", "s_equals": "ST_Equals", "s_touches": "ST_Touches",
            "s_crosses": "ST_Crosses", "s_overlaps": "ST_Overlaps"}
_ARRAY = {"a_contains": "@>", "a_containedby": "<@", "a_overlaps": "&&", "a_equals": "="}
_UNITS = {None: 1.0, "m": 1.0, "meters": 1.0, "metres": 1.0, "meter": 1.0, "metre": 1.0, "km": 1000.0,
          "kilometers": 1000.0, "kilometres": 1000.0}
_POSITION = re.compile(r"-->\s*(\d+):(\d+)")


@dataclass(frozen=True)
class Property:
    name: str
    sql: str
    type: str  # string, integer, number, date, datetime, array, geometry


@dataclass
class _Out:
    params: dict = field(default_factory=dict)
    nodes: int = 0

    def bind(self, value):
        name = f"c_{len(self.params)}"
        self.params[name] = value
        return f":{name}"


def _bad(message, where=None):
    msg = f"Parameter 'filter': {message}" + (f" (at {where})" if where else "") + "."
    return InputError(msg)


def _text_depth(text):
    depth = deepest = 0
    quoted = False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif not quoted and ch == ")":
            depth -= 1
    return deepest


def parse(raw, lang=None, *, crs=None):
    """The filter as a canonical CQL2 JSON tree; malformed input is an InputError saying where."""
    lang = (lang or TEXT).strip().lower()
    # GDAL's OAPIF driver names the draft's text encoding; its filters are CQL2 text.
    lang = TEXT if lang == "cql-text" else lang
    if lang not in (TEXT, JSON):
        msg = f"Parameter 'filter-lang' has value {lang[:40]!r}: expected {TEXT} or {JSON}."
        raise InputError(msg)
    if crs not in (None, "") and crs not in CRS_OK:
        msg = f"Parameter 'filter-crs' has value {str(crs)[:80]!r}: only {CRS84} is supported."
        raise InputError(msg)
    if not raw or not raw.strip():
        raise _bad("empty")
    if len(raw) > MAX_TEXT:
        raise _bad(f"longer than {MAX_TEXT:,} characters")
    if lang == TEXT:
        # The parser recurses: a bound on nesting keeps a hostile filter from exhausting its stack.
        if _text_depth(raw) > MAX_DEPTH:
            raise _bad(f"nested more than {MAX_DEPTH} levels deep")
        try:
            return cql2.parse_text(raw).to_json()
        except (cql2.ParseError, ValueError) as err:
            found = _POSITION.search(str(err))
            where = f"line {found.group(1)}, column {found.group(2)}" if found else None
            detail = str(err).strip().splitlines()[-1].lstrip("= ").strip()
            raise _bad(f"cannot be read as CQL2 text: {detail[:200]}", where) from err
    try:
        tree = json.loads(raw)
    except RecursionError as err:
        raise _bad(f"nested more than {MAX_DEPTH} levels deep") from err
    except ValueError as err:
        raise _bad(f"not valid JSON: {err.msg}", f"line {err.lineno}, column {err.colno}") from err
    _check_depth(tree)
    return tree


def _check_depth(node, depth=0, path="$"):
    if depth > MAX_DEPTH:
        raise _bad(f"nested more than {MAX_DEPTH} levels deep", path)
    if isinstance(node, dict):
        for key, value in node.items():
            _check_depth(value, depth + 1, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_depth(value, depth + 1, f"{path}[{i}]")


def properties_mentioned(tree):
    """Every property name the filter refers to."""
    out = set()

    def walk(node):
        if isinstance(node, dict):
            if set(node) == {"property"}:
                out.add(str(node["property"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return out


def to_sql(tree, queryables, *, raw=None):
    """(SQL condition, bound parameters) for the tree over ``queryables`` ({name: Property})."""
    out = _Out()
    return _Translator(queryables, out, raw).condition(tree, "$"), out.params


class _Translator:
    def __init__(self, queryables, out, raw):
        self.q, self.out, self.raw = queryables, out, raw

    def _count(self, path):
        self.out.nodes += 1
        if self.out.nodes > MAX_NODES:
            raise _bad(f"more than {MAX_NODES:,} terms", path)

    def _where_property(self, name, path):
        # In a text filter, say where the name first appears; in JSON, the path to it.
        if self.raw:
            found = re.search(rf'(?<![\w"]){re.escape(name)}(?![\w"])|"{re.escape(name)}"', self.raw)
            if found:
                return f"character {found.start() + 1}"
        return path

    def condition(self, node, path):
        self._count(path)
        if isinstance(node, bool):
            return "TRUE" if node else "FALSE"
        if not isinstance(node, dict) or "op" not in node or not isinstance(node.get("args", []), list):
            raise _bad("expected a predicate (an object with 'op' and 'args')", path)
        op, args = str(node["op"]).lower(), node.get("args") or []
        where = f"{path}.args"
        if op in ("and", "or"):
            if len(args) < 2:
                raise _bad(f"'{op}' needs at least two conditions", path)
            parts = [self.condition(a, f"{where}[{i}]") for i, a in enumerate(args)]
            return "(" + f" {op.upper()} ".join(parts) + ")"
        if op == "not":
            self._arity(op, args, 1, path)
            return f"(NOT {self.condition(args[0], f'{where}[0]')})"
        if op in _COMPARE:
            self._arity(op, args, 2, path)
            lhs, _ = self.scalar(args[0], f"{where}[0]", self._type_of(args[1]))
            rhs, _ = self.scalar(args[1], f"{where}[1]", self._type_of(args[0]))
            return f"({lhs} {_COMPARE[op]} {rhs})"
        if op == "like":
            self._arity(op, args, 2, path)
            lhs, ltype = self.scalar(args[0], f"{where}[0]")
            if ltype not in ("string", None):
                raise _bad("LIKE compares text", f"{where}[0]")
            rhs, _ = self.scalar(args[1], f"{where}[1]", "string")
            return f"({lhs} LIKE {rhs} ESCAPE '\\')"
        if op == "between":
            self._arity(op, args, 3, path)
            lhs, ltype = self.scalar(args[0], f"{where}[0]")
            low, _ = self.scalar(args[1], f"{where}[1]", ltype)
            high, _ = self.scalar(args[2], f"{where}[2]", ltype)
            return f"({lhs} BETWEEN {low} AND {high})"
        if op == "in":
            self._arity(op, args, 2, path)
            lhs, ltype = self.scalar(args[0], f"{where}[0]")
            if not isinstance(args[1], list) or not args[1]:
                raise _bad("IN needs a list of values", f"{where}[1]")
            if len(args[1]) > MAX_LIST:
                raise _bad(f"IN lists at most {MAX_LIST:,} values", f"{where}[1]")
            values = [self.literal(v, ltype, f"{where}[1][{i}]") for i, v in enumerate(args[1])]
            return f"({lhs} = ANY({self.out.bind(values)}))"
        if op == "isnull":
            self._arity(op, args, 1, path)
            lhs, _ = self.scalar(args[0], f"{where}[0]", allow_array=True)
            return f"({lhs} IS NULL)"
        if op in _SPATIAL or op == "s_dwithin":
            return self.spatial(op, args, path)
        if op.startswith("t_"):
            return self.temporal(op, args, path)
        if op in _ARRAY:
            self._arity(op, args, 2, path)
            prop = self.prop(args[0], f"{where}[0]")
            if prop.type != "array":
                raise _bad(f"{op.upper()} needs an array property; {prop.name!r} is not one", f"{where}[0]")
            if not isinstance(args[1], list) or len(args[1]) > MAX_LIST:
                raise _bad(f"{op.upper()} needs a list of at most {MAX_LIST:,} values", f"{where}[1]")
            values = [self.literal(v, "string", f"{where}[1][{i}]") for i, v in enumerate(args[1])]
            return f"({prop.sql} {_ARRAY[op]} CAST({self.out.bind(values)} AS text[]))"
        raise _bad(f"unknown operator {node['op']!r}", path)

    def _arity(self, op, args, n, path):
        if len(args) != n:
            raise _bad(f"'{op}' takes {n} argument{'s' if n > 1 else ''}, not {len(args)}", path)

    def _type_of(self, node):
        """The type a value compared with ``node`` must have: its property's, or None for a literal."""
        if isinstance(node, dict) and "property" in node and str(node["property"]) in self.q:
            return self.q[str(node["property"])].type
        if isinstance(node, dict) and str(node.get("op", "")).lower() == "casei":
            return "string"
        return None

    def prop(self, node, path):
        if not isinstance(node, dict) or set(node) != {"property"}:
            raise _bad("expected a property", path)
        name = str(node["property"])
        found = self.q.get(name)
        if found is None:
            known = ", ".join(sorted(self.q))
            raise _bad(f"unknown property {name[:64]!r}; the queryables are {known}",
                       self._where_property(name, path))
        return found

    def scalar(self, node, path, expect=None, *, allow_array=False):
        """(SQL, type) of a property, a casei() of one, or a literal of the ``expect``ed type."""
        self._count(path)
        if isinstance(node, dict) and "property" in node:
            prop = self.prop(node, path)
            if prop.type == "geometry" or (prop.type == "array" and not allow_array):
                raise _bad(f"{prop.name!r} cannot be compared this way", path)
            return prop.sql, prop.type
        if isinstance(node, dict) and str(node.get("op", "")).lower() == "casei":
            args = node.get("args") or []
            self._arity("casei", args, 1, path)
            inner, itype = self.scalar(args[0], f"{path}.args[0]", "string")
            if itype not in ("string", None):
                raise _bad("CASEI takes text", path)
            return f"lower({inner})", "string"
        if isinstance(node, dict) and "op" in node:
            raise _bad(f"function or operator {str(node['op'])[:40]!r} is not supported here", path)
        return self.out.bind(self.literal(node, expect, path)), None

    def literal(self, node, expect, path):
        if isinstance(node, dict) and ("date" in node or "timestamp" in node):
            value = _instant(node, path)
            if expect not in (None, "date", "datetime"):
                raise _bad(f"a date compared with a {expect} property", path)
            return value
        if isinstance(node, bool):
            raise _bad("true/false are not values of any queryable", path)
        if isinstance(node, (int, float)):
            if not math.isfinite(node):
                raise _bad("numbers must be finite", path)
            if expect == "integer":
                if float(node) != int(node) or abs(node) > 2**62:
                    raise _bad(f"expected a whole number, not {node!r}", path)
                return int(node)
            if expect in ("string", "date", "datetime"):
                raise _bad(f"expected {'text' if expect == 'string' else 'a date'}, not the number {node!r}", path)
            return float(node)
        if isinstance(node, str):
            if len(node) > 1000:
                raise _bad("text values are at most 1,000 characters", path)
            if expect in ("integer", "number"):
                raise _bad(f"expected a number, not the text {node[:40]!r}", path)
            if expect in ("date", "datetime"):
                return _instant({"timestamp" if "T" in node else "date": node}, path)
            return node
        raise _bad("expected a value (text, number, DATE() or TIMESTAMP())", path)

    def geometry(self, node, path):
        if isinstance(node, dict) and "bbox" in node:
            box = node["bbox"]
            if not isinstance(box, list) or len(box) not in (4, 6) or not all(
                    isinstance(v, (int, float)) and math.isfinite(v) for v in box):
                raise _bad("BBOX takes four numbers", path)
            minx, miny, maxx, maxy = (box[0], box[1], box[3], box[4]) if len(box) == 6 else box
            params = [self.out.bind(float(v)) for v in (minx, miny, maxx, maxy)]
            return f"ST_MakeEnvelope({', '.join(params)}, 4326)"
        if not isinstance(node, dict) or "type" not in node or ("coordinates" not in node and
                                                                  "geometries" not in node):
            raise _bad("expected a geometry (WKT in cql2-text, GeoJSON in cql2-json) or BBOX", path)
        text = json.dumps(node)
        if text.count(",") > MAX_COORDS * 2:
            raise _bad(f"geometries have at most {MAX_COORDS:,} points", path)
        # ST_GeomFromGeoJSON rejects a malformed geometry; it is checked in Python first for a clear 400.
        _check_geojson(node, path)
        return f"ST_SetSRID(ST_GeomFromGeoJSON({self.out.bind(text)}), 4326)"

    def spatial(self, op, args, path):
        where = f"{path}.args"
        if op == "s_dwithin":
            if len(args) not in (3, 4):
                raise _bad("S_DWITHIN takes a geometry property, a geometry, a distance and optionally units", path)
        else:
            self._arity(op, args, 2, path)
        first, second = args[0], args[1]
        if isinstance(second, dict) and "property" in second:
            first, second = second, first  # S_INTERSECTS(POINT(...), geometry) reads the same
        prop = self.prop(first, f"{where}[0]")
        if prop.type != "geometry":
            raise _bad(f"{op.upper()} needs the geometry property; {prop.name!r} is not one", f"{where}[0]")
        geom = self.geometry(second, f"{where}[1]")
        if op != "s_dwithin":
            return f"{_SPATIAL[op]}({prop.sql}, {geom})"
        distance = args[2]
        if isinstance(distance, bool) or not isinstance(distance, (int, float)) or not math.isfinite(distance) \
                or not 0 <= distance:
            raise _bad("S_DWITHIN's distance must be a number of metres, 0 or more", f"{where}[2]")
        unit = args[3] if len(args) == 4 else None
        unit = unit.get("property") if isinstance(unit, dict) else unit
        unit = str(unit).lower() if unit is not None else None
        if unit not in _UNITS:
            raise _bad(f"unknown distance unit {str(unit)[:20]!r}: use metres or kilometres", f"{where}[3]")
        metres = float(distance) * _UNITS[unit]
        if metres > MAX_DISTANCE_M:
            raise _bad(f"S_DWITHIN's distance is at most {MAX_DISTANCE_M // 1000:,} km", f"{where}[2]")
        m = self.out.bind(metres)
        # A box in degrees first (the GiST index), wide enough at any latitude of Great Britain, then the exact
        # distance in metres on the spheroid.
        deg = self.out.bind(metres / 111_000 / math.cos(math.radians(61)) + 1e-6)
        return (f"({prop.sql} && ST_Expand({geom}, {deg}) AND "
                f"ST_DWithin({prop.sql}::geography, {geom}::geography, {m}))")

    def temporal(self, op, args, path):
        where = f"{path}.args"
        self._arity(op, args, 2, path)
        prop = self.prop(args[0], f"{where}[0]")
        if prop.type not in ("date", "datetime"):
            raise _bad(f"{op.upper()} needs a date property; {prop.name!r} is not one", f"{where}[0]")
        node = args[1]
        if isinstance(node, dict) and "interval" in node:
            ends = node["interval"]
            if not isinstance(ends, list) or len(ends) != 2:
                raise _bad("INTERVAL takes a start and an end", f"{where}[1]")
            start, end = (None if e == ".." else _instant(e if isinstance(e, dict) else
                                                         {"timestamp" if "T" in str(e) else "date": e},
                                                         f"{where}[1]") for e in ends)
        else:
            start = end = _instant(node, f"{where}[1]")
        col = prop.sql
        lo = self.out.bind(start) if start is not None else None
        hi = self.out.bind(end) if end is not None else None
        after = f"{col} > {hi}" if hi else "FALSE"
        before = f"{col} < {lo}" if lo else "FALSE"
        inside = " AND ".join([c for c in (f"{col} >= {lo}" if lo else None, f"{col} <= {hi}" if hi else None)
                               if c]) or "TRUE"
        rules = {"t_after": after, "t_before": before, "t_intersects": inside, "t_during": inside,
                 "t_disjoint": f"NOT ({inside})", "t_equals": f"{col} = {lo}" if lo and start == end else None}
        sql = rules.get(op)
        if sql is None:
            raise _bad(f"{op.upper()} is not supported on dates (use T_AFTER, T_BEFORE, T_DURING, T_INTERSECTS, "
                       "T_DISJOINT or T_EQUALS)", path)
        return f"({col} IS NOT NULL AND ({sql}))"


def _instant(node, path):
    if isinstance(node, str):
        node = {"timestamp" if "T" in node else "date": node}
    if not isinstance(node, dict):
        raise _bad("expected DATE('YYYY-MM-DD') or TIMESTAMP('...Z')", path)
    try:
        if "date" in node:
            return date.fromisoformat(str(node["date"]))
        value = datetime.fromisoformat(str(node["timestamp"]).replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    except (KeyError, ValueError) as err:
        raise _bad(f"{str(node)[:60]} is not an ISO 8601 date or timestamp", path) from err


def _check_geojson(node, path):
    kind = node.get("type")
    nesting = {"Point": 1, "MultiPoint": 2, "LineString": 2, "MultiLineString": 3, "Polygon": 3, "MultiPolygon": 4}
    if kind == "GeometryCollection":
        for i, g in enumerate(node.get("geometries") or []):
            _check_geojson(g, f"{path}.geometries[{i}]")
        return
    if kind not in nesting:
        raise _bad(f"unknown geometry type {str(kind)[:30]!r}", path)

    def ok(value, depth):
        if depth == 0:
            return isinstance(value, list) and len(value) in (2, 3) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        return isinstance(value, list) and len(value) > 0 and all(ok(v, depth - 1) for v in value)

    if not ok(node.get("coordinates"), nesting[kind] - 1):
        raise _bad(f"the {kind}'s coordinates are malformed", path)
    for position in _positions(node.get("coordinates"), nesting[kind] - 1):
        lon, lat = position[0], position[1]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise _bad(f"coordinates must be lon/lat in CRS84; ({lon}, {lat}) is not", path)


def _positions(value, depth):
    if depth == 0:
        yield value
        return
    for v in value:
        yield from _positions(v, depth - 1)
