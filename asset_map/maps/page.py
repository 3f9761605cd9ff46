"""Build the map of the layers: query each layer, draw it with Folium, and hand back the page's parts.

The parts (head, body, script) go into the app's own template, so the map page shares the site's layout and its
self-hosted assets instead of being a separate folium document. Boundaries and need are drawn by Folium; assets are
NOT embedded: ``explorer`` (the page's config, read by static/js/explorer.js) tells the browser where to fetch them
for the visible area and zoom, so the page weighs the same with 700 or 50,000 assets.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy import text

from asset_map import privacy
from asset_map.config import attribution_lines
from asset_map.maps import choices, folium_, queries, styles
from asset_map.reference.need import INDICATOR_LABELS
from asset_map.store import change_stamps
from asset_map.store.assets import AssetFilter
from asset_map.vocabulary import TIER_LABELS, role_rank

# Boundaries and need change only when reference data is loaded, so their rendered parts are kept per (database,
# reference version, need, districts, role, settings); the assets are never part of them.
_CACHE = OrderedDict()
_CACHE_SIZE = 32
_LOCK = threading.Lock()

# Lower draws first: polygons under outlines under points.
_DRAW_ORDER = {"choropleth": 0, "outline": 1, "counts": 2, "points": 3}


@dataclass
class MapPage:
    header: str
    html: str
    script: str
    need: tuple
    need_options: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    explorer: dict = field(default_factory=dict)


def need_label(indicator, vintage):
    return f"{INDICATOR_LABELS.get(indicator, indicator)} {vintage}"


def _default_need(settings, options):
    """The configured default, or the newest loaded IMD when that one is not loaded."""
    default = settings["DEFAULT_NEED"]
    loaded = [f"{i}:{v}" for i, v, _ in options]
    if not loaded or default in loaded:
        return default
    return next((n for n in loaded if n.startswith("imd:")), loaded[0])


def _categories(engine, role, version):
    table = styles.load()
    out = []
    for tier, category, n in choices.categories(engine, role=role, version=version):
        style = styles.style_for(category, table)
        out.append({"tier": tier, "category": category, "label": style["label"], "color": style["color"],
                    "icon": style["icon"], "assets": n})
    return out


def _reference_version(engine):
    with engine.connect() as conn:
        return tuple(conn.execute(text("SELECT count(*), coalesce(max(id), 0) FROM reference_loads")).one())


def _extent(engine, district_codes):
    """(minx, miny, maxx, maxy) of the districts shown (all when none is named), or None; in SQL, so a national
    map does not read every district's polygon to find it."""
    sql = ("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM districts "
           "WHERE cardinality(CAST(:codes AS text[])) = 0 OR code = ANY(:codes)) s")
    with engine.connect() as conn:
        box = conn.execute(text(sql), {"codes": list(district_codes)}).one()
    if box[0] is None and district_codes:
        return _extent(engine, ())
    return None if box[0] is None else box


def _tile_layers(layers, role, indicator, vintage, district_codes):
    """What explorer.js needs to draw the need and boundary layers from vector tiles (/tiles/...)."""
    out = []
    for layer in sorted(layers, key=lambda lyr: _DRAW_ORDER[lyr.kind]):
        if layer.visible_to != "public" and role_rank(role) < role_rank(layer.visible_to):
            continue
        if layer.kind == "choropleth":
            query = {"need": f"{indicator}:{vintage}"}
            if district_codes:
                query["district"] = ",".join(district_codes)
            out.append({"id": "need", "title": f"{need_label(indicator, vintage)} ({layer.value})",
                        "kind": "choropleth",
                        "value": layer.value, "colors": layer.colors, "no_data": folium_.NO_DATA_COLOR,
                        "style": layer.style, "popup": layer.popup, "labels": folium_.FIELD_LABELS,
                        "shown": layer.shown, "query": query})
        elif layer.kind == "outline":
            out.append({"id": "districts", "title": layer.title, "kind": "outline", "style": layer.style,
                        "popup": layer.popup, "labels": folium_.FIELD_LABELS, "shown": layer.shown, "query": {}})
    return out


def _boundaries(engine, layers, settings, indicator, vintage, district_codes, role, *, tiled=False):
    """(header, html, script, map name, overlays, drawn, bounds, tile layers) of the Folium map of boundaries and
    need; ``tiled``: the need and boundary layers come from vector tiles, drawn by explorer.js, not in the page."""
    key = (str(engine.url), _reference_version(engine), indicator, vintage, district_codes, role,
           tuple(lyr.path for lyr in layers), settings["TILES"], settings["TILES_ATTRIBUTION"],
           settings["ATTRIBUTION"], tiled)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    if tiled:
        districts = None
        bounds = _extent(engine, district_codes)
    else:
        districts = queries.districts(engine)
        shown = districts[districts["code"].isin(district_codes)] if district_codes else districts
        bounds = shown.total_bounds if len(shown) else (districts.total_bounds if len(districts) else None)
    m = folium_.new_map(bounds, tiles=settings["TILES"], tiles_attribution=settings["TILES_ATTRIBUTION"])
    folium_.StartExplorer().add_to(m)
    drawn, overlays = {}, []
    tile_layers = _tile_layers(layers, role, indicator, vintage, district_codes) if tiled else []
    for layer in sorted(layers, key=lambda lyr: _DRAW_ORDER[lyr.kind]):
        if layer.visible_to != "public" and role_rank(role) < role_rank(layer.visible_to):
            continue
        if tiled:
            if layer.kind == "choropleth":
                title = f"{need_label(indicator, vintage)} ({layer.value})"
                folium_.decile_legend(layer, title, position="bottomleft").add_to(m)
            continue
        if layer.kind == "outline":
            outline = folium_.add_outline(m, layer, districts)
            if outline is not None:
                overlays.append({"var": outline.get_name(), "title": layer.title, "shown": layer.shown})
            drawn[layer.id] = len(districts)
        elif layer.kind == "choropleth":
            frame = queries.choropleth(engine, indicator=indicator, vintage=vintage, district=list(district_codes)
                                       or None)
            title = f"{need_label(indicator, vintage)} ({layer.value})"
            choropleth = folium_.add_choropleth(m, layer, frame, title=title)
            if choropleth is not None:
                overlays.insert(0, {"var": choropleth.get_name(), "title": title, "shown": layer.shown})
            # Bottom left, under the asset legend: the layer control takes the right-hand side.
            folium_.decile_legend(layer, title, position="bottomleft").add_to(m)
            drawn[layer.id] = len(frame)
    folium_.Attribution(attribution_lines(settings)).add_to(m)
    root = m.get_root()
    root.render()
    fit = None if bounds is None else [[bounds[1], bounds[0]], [bounds[3], bounds[2]]]
    parts = (root.header.render(), root.html.render(), root.script.render(), m.get_name(), overlays, drawn, fit,
             tile_layers)
    with _LOCK:
        _CACHE[key] = parts
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return parts


def _outline(engine, values):
    """The areas a view is filtered to (?area=...), as GeoJSON with their bounds, or None."""
    if not values:
        return None
    import shapely

    from asset_map.store import geographies

    shapes = [geographies.area(engine, *value.split(":", 1))["geometry"] for value in values]
    union = shapely.union_all(shapes)
    minx, miny, maxx, maxy = union.bounds
    return {"geojson": shapely.geometry.mapping(union), "bounds": [[miny, minx], [maxy, maxx]]}


def build(engine, layers, settings, *, need=None, flt=None, role="public", focus=None, urls=None, stamps=None):
    """The map page's parts. ``flt`` is the shared asset filter (its districts also limit the choropleth);
    ``focus`` an optional {lon, lat, zoom, label} to open on (a postcode); ``urls`` the API addresses; ``stamps``
    the change stamps when the caller has read them (store.change_stamps), read once for everything kept under
    them (a page read them four times)."""
    flt = flt or AssetFilter()
    if stamps is None:
        with engine.connect() as conn:
            stamps = change_stamps.stamps(conn)
    options = queries.need_options(engine, stamp=stamps["reference"])
    indicator, vintage = queries.parse_need(need or _default_need(settings, options), options if need else [])
    areas = next((n for i, v, n in options if (i, v) == (indicator, vintage)), 0)
    tiled = areas > settings["MAP_INLINE_AREAS"]
    header, body, script, map_name, overlays, drawn, fit, tile_layers = _boundaries(
        engine, layers, settings, indicator, vintage, tuple(sorted(flt.district)), role, tiled=tiled)
    if tiled:
        for spec in tile_layers:
            spec["query"] = {**spec["query"], "v": str(stamps["reference"])}
        # At the same scale the assets come as vector tiles too (grouped per cell at low zooms, from the prepared
        # grid for the public): the same filter, seen as the same role, so the same privacy rule as the map API.
        asset_tiles = {"query": {**{k: v for k, v in flt.as_args().items() if k != "bbox"},
                                 "v": str(stamps["assets"])}}
    else:
        asset_tiles = None
    explorer = {
        "map": map_name,
        "overlays": overlays,
        "categories": _categories(engine, role, stamps["assets"]),
        "tiers": TIER_LABELS,
        "filter": flt.as_args(),
        "urls": urls or {},
        "stale_months": settings["STALE_MONTHS"],
        "suppress_below": settings["SUPPRESS_BELOW"],
        # Below officer the browser never receives individuals as points, only as counts per area.
        "individuals": "points" if privacy.sees_individual_points(role) else "counts",
        "focus": focus,
        "fit": fit,
        "outline": _outline(engine, flt.area),
        # Need and boundaries as vector tiles (England scale), drawn by explorer.js; empty when in the page.
        "tile_layers": tile_layers,
        "asset_tiles": asset_tiles,
    }
    return MapPage(header=header, html=body, script=script, need=(indicator, vintage), need_options=options,
                   counts=dict(drawn), explorer=explorer)
