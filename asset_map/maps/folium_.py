"""Turn layers and their frames into a Folium map.

Text from the data is escaped here, in Python, before it reaches Leaflet: Leaflet writes popups, tooltips and
attribution as HTML, so an asset called ``<img src=x onerror=...>`` must arrive as entities to show as text.
"""

import html
import json

import folium
from branca.element import MacroElement
from jinja2 import Template

NO_DATA_COLOR = "#bdbdbd"
PAGE_JS = ("leaflet",)
PAGE_CSS = ("leaflet_css", "awesome_markers_font_css")
FIELD_LABELS = {
    "name": "Name", "code": "Code", "district_code": "District", "population": "Population", "score": "Score",
    "rank": "Rank (1 = most deprived)", "decile": "Decile (1 = most deprived 10%)",
}


def _escaped(frame, fields):
    """A GeoJSON-ready copy with only ``fields`` and every text value escaped."""
    out = frame[[*fields, "geometry"]].copy()
    for col in fields:
        if out[col].dtype == object or str(out[col].dtype).startswith("str"):
            out[col] = out[col].map(lambda v: html.escape(str(v)) if v is not None and v == v else "")
        else:
            out[col] = out[col].astype(object).where(out[col].notna(), "")
    return out


def new_map(bounds=None, *, tiles=None, tiles_attribution=None):
    # folium leaves maxZoom unset without tiles, and MarkerCluster then refuses to draw: set it always.
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=False, zoom_control=True, **{"maxZoom": 19})
    # Only Leaflet and Font Awesome are used: jQuery, Bootstrap and awesome-markers would add ~300 kB to parse.
    m.default_js = [(n, u) for n, u in type(m).default_js if n in PAGE_JS]
    m.default_css = [(n, u) for n, u in type(m).default_css if n in PAGE_CSS]
    if tiles and tiles.lower() != "none":
        folium.TileLayer(tiles=tiles, attr=tiles_attribution or "", name="Base map", max_zoom=19,
                         control=False).add_to(m)
    if bounds is not None:
        minx, miny, maxx, maxy = bounds
        m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def add_outline(m, layer, frame):
    if frame.empty:  # folium's tooltip refuses a layer without features; nothing loaded yet means nothing to draw
        return None
    style = layer.style
    fields = [f for f in layer.popup if f in frame.columns]
    data = _escaped(frame, fields)
    return folium.GeoJson(
        data.to_geo_dict(na="null", show_bbox=False, drop_id=True),
        name=layer.title,
        show=layer.shown,
        style_function=lambda _f, s=style: {"color": s.get("color", "#000000"), "weight": s.get("weight", 2),
                                             "fillOpacity": s.get("fill_opacity", 0), "fill": False},
        tooltip=folium.GeoJsonTooltip(fields=fields[:1], labels=False) if fields else None,
        popup=folium.GeoJsonPopup(fields=fields, aliases=[FIELD_LABELS.get(f, f) for f in fields]) if fields
        else None,
    ).add_to(m)


def class_color(layer, value):
    if value is None or value != value or value == "":
        return NO_DATA_COLOR
    colors = layer.colors
    index = min(max(int(value) - 1, 0), len(colors) - 1)
    return colors[index]


def add_choropleth(m, layer, frame, *, title):
    if frame.empty:
        return None
    style = layer.style
    fields = [f for f in layer.popup if f in frame.columns]
    data = _escaped(frame, fields)
    data["fill"] = [class_color(layer, v) for v in frame[layer.value]]
    return folium.GeoJson(
        data.to_geo_dict(na="null", show_bbox=False, drop_id=True),
        name=title,
        show=layer.shown,
        style_function=lambda f, s=style: {"fillColor": f["properties"]["fill"], "color": s.get("color", "#636363"),
                                            "weight": s.get("weight", 0.5),
                                            "fillOpacity": s.get("fill_opacity", 0.65)},
        highlight_function=lambda _f: {"weight": 2, "color": "#0b0c0c"},
        tooltip=folium.GeoJsonTooltip(fields=["name", layer.value], aliases=["Area", layer.value.title()]),
        popup=folium.GeoJsonPopup(fields=fields, aliases=[FIELD_LABELS.get(f, f) for f in fields]),
    ).add_to(m)


def _script_json(value):
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class Legend(MacroElement):
    """A legend box in the map's corner: a title and (colour, label) rows, all escaped."""

    _template = Template("""
    {% macro script(this, kwargs) %}
    (function () {
      var legend = L.control({position: {{ this.position_json }}});
      legend.onAdd = function () {
        var div = L.DomUtil.create("div", "asset-map-legend");
        div.setAttribute("role", "region");
        div.setAttribute("aria-label", {{ this.title_json }});
        div.innerHTML = {{ this.body_json }};
        return div;
      };
      legend.addTo({{ this._parent.get_name() }});
    })();
    {% endmacro %}
    """)

    def __init__(self, title, rows, *, position="bottomright"):
        super().__init__()
        self._name = "Legend"
        self.position_json = json.dumps(position)
        body = [f"<strong>{html.escape(title)}</strong>"]
        for color, label in rows:
            body.append(f'<div><i style="background:{html.escape(color)}"></i>{html.escape(label)}</div>')
        # Inside a <script> block: "<" is escaped too, so no text can close the block.
        self.title_json = _script_json(title)
        self.body_json = _script_json("".join(body))


class Attribution(MacroElement):
    """Data attribution lines added to Leaflet's attribution control."""

    _template = Template("""
    {% macro script(this, kwargs) %}
    {% for line in this.lines %}{{ this._parent.get_name() }}.attributionControl.addAttribution({{ line }});
    {% endfor %}
    {% endmacro %}
    """)

    def __init__(self, lines):
        super().__init__()
        self._name = "Attribution"
        self.lines = [json.dumps(html.escape(line)) for line in lines]


def decile_legend(layer, title, *, position="bottomright"):
    rows = [(c, f"{i}{' (most deprived)' if i == 1 else ' (least deprived)' if i == len(layer.colors) else ''}")
            for i, c in enumerate(layer.colors, start=1)]
    rows.append((NO_DATA_COLOR, "no data"))
    return Legend(title, rows, position=position)


class StartExplorer(MacroElement):
    """Runs right after the map is made and fitted, before its layers are drawn: static/js/explorer-view.js sets
    the opening view and starts fetching the assets, so the request overlaps the drawing of the polygons."""

    _template = Template("""
    {% macro script(this, kwargs) %}
    if (window.assetMapView) { window.assetMapView.start({{ this._parent.get_name() }}); }
    {% endmacro %}
    """)

    def __init__(self):
        super().__init__()
        self._name = "StartExplorer"
