"""Build the map of the layers: query each layer, draw it with Folium, and hand back the page's parts.

The parts (head, body, script) go into the app's own template, so the map page shares the site's layout and its
self-hosted assets instead of being a separate folium document. Boundaries and need are drawn by Folium; assets are
NOT embedded: ``explorer`` (the page's config, read by static/js/explorer.js) tells the browser where to fetch them
for the visible area and zoom, so the page weighs the same with 700 or 50,000 assets.
"""

from dataclasses import dataclass, field

from asset_map.config import attribution_lines
from asset_map.layers import choices, folium_, queries, styles
from asset_map.reference.need import INDICATOR_LABELS
from asset_map.store.assets import AssetFilter, role_rank

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


def _categories(engine, role):
    table = styles.load()
    out = []
    for tier, category, n in choices.categories(engine, role=role):
        style = styles.style_for(category, table)
        out.append({"tier": tier, "category": category, "label": style["label"], "color": style["color"],
                    "icon": style["icon"], "assets": n})
    return out


def build(engine, layers, settings, *, need=None, flt=None, role="public", focus=None, urls=None):
    """The map page's parts. ``flt`` is the shared asset filter (its districts also limit the choropleth);
    ``focus`` an optional {lon, lat, zoom, label} to open on (a postcode); ``urls`` the API addresses."""
    flt = flt or AssetFilter()
    options = queries.need_options(engine)
    indicator, vintage = queries.parse_need(need or _default_need(settings, options), options if need else [])
    districts = queries.districts(engine)
    shown = districts[districts["code"].isin(flt.district)] if flt.district else districts
    bounds = shown.total_bounds if len(shown) else (districts.total_bounds if len(districts) else None)
    m = folium_.new_map(bounds, tiles=settings["TILES"], tiles_attribution=settings["TILES_ATTRIBUTION"])
    drawn, overlays = {}, []
    for layer in sorted(layers, key=lambda lyr: _DRAW_ORDER[lyr.kind]):
        if layer.visible_to != "public" and role_rank(role) < role_rank(layer.visible_to):
            continue
        if layer.kind == "outline":
            overlays.append({"var": folium_.add_outline(m, layer, districts).get_name(), "title": layer.title,
                             "shown": layer.shown})
            drawn[layer.id] = len(districts)
        elif layer.kind == "choropleth":
            frame = queries.choropleth(engine, indicator=indicator, vintage=vintage, district=flt.district or None)
            title = f"{need_label(indicator, vintage)} ({layer.value})"
            overlays.insert(0, {"var": folium_.add_choropleth(m, layer, frame, title=title).get_name(),
                                "title": title, "shown": layer.shown})
            # Bottom left, under the asset legend: the layer control takes the right-hand side.
            folium_.decile_legend(layer, title, position="bottomleft").add_to(m)
            drawn[layer.id] = len(frame)
    folium_.Attribution(attribution_lines(settings)).add_to(m)
    root = m.get_root()
    root.render()
    explorer = {
        "map": m.get_name(),
        "overlays": overlays,
        "categories": _categories(engine, role),
        "tiers": styles.TIER_LABELS,
        "filter": flt.as_args(),
        "urls": urls or {},
        "stale_months": settings["STALE_MONTHS"],
        "suppress_below": settings["SUPPRESS_BELOW"],
        # Below officer the browser never receives individuals as points, only as counts per area.
        "individuals": "points" if role_rank(role) >= role_rank("officer") else "counts",
        "focus": focus,
        "fit": None if bounds is None else [[bounds[1], bounds[0]], [bounds[3], bounds[2]]],
    }
    return MapPage(header=root.header.render(), html=root.html.render(), script=root.script.render(),
                   need=(indicator, vintage), need_options=options, counts=drawn, explorer=explorer)
