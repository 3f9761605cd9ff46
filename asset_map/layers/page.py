"""Build the map of the layers: query each layer, draw it with Folium, and hand back the page's parts.

The parts (head, body, script) go into the app's own template, so the map page shares the site's layout and its
self-hosted assets instead of being a separate folium document.
"""

from dataclasses import dataclass, field

import folium

from asset_map.config import attribution_lines
from asset_map.layers import folium_, queries
from asset_map.reference.need import INDICATOR_LABELS

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


def need_label(indicator, vintage):
    return f"{INDICATOR_LABELS.get(indicator, indicator)} {vintage}"


def _default_need(settings, options):
    """The configured default, or the newest loaded IMD when that one is not loaded."""
    default = settings["DEFAULT_NEED"]
    loaded = [f"{i}:{v}" for i, v, _ in options]
    if not loaded or default in loaded:
        return default
    return next((n for n in loaded if n.startswith("imd:")), loaded[0])


def build(engine, layers, settings, *, need=None):
    options = queries.need_options(engine)
    indicator, vintage = queries.parse_need(need or _default_need(settings, options), options if need else [])
    districts = queries.districts(engine)
    bounds = districts.total_bounds if len(districts) else None
    m = folium_.new_map(bounds, tiles=settings["TILES"], tiles_attribution=settings["TILES_ATTRIBUTION"])
    drawn = {}
    for layer in sorted(layers, key=lambda lyr: _DRAW_ORDER[lyr.kind]):
        if layer.kind == "outline":
            folium_.add_outline(m, layer, districts)
            drawn[layer.id] = len(districts)
        elif layer.kind == "choropleth":
            frame = queries.choropleth(engine, indicator=indicator, vintage=vintage)
            title = f"{need_label(indicator, vintage)} ({layer.value})"
            folium_.add_choropleth(m, layer, frame, title=title)
            folium_.decile_legend(layer, title).add_to(m)
            drawn[layer.id] = len(frame)
    folium.LayerControl(collapsed=False).add_to(m)
    folium_.Attribution(attribution_lines(settings)).add_to(m)
    root = m.get_root()
    root.render()
    return MapPage(header=root.header.render(), html=root.html.render(), script=root.script.render(),
                   need=(indicator, vintage), need_options=options, counts=drawn)
