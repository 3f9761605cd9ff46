"""The vendored JavaScript and CSS at run time: where the copies are served from, and folium pointed at them instead
of its CDNs. The copies are made at install time by the vendoring script, ``asset_map.tools.vendor``.

``use_local_assets()`` points folium's ``default_js`` / ``default_css`` lists at our copies, and ``external_urls()``
lists what a rendered page would still fetch from elsewhere (a test asserts there is nothing).
"""

import re
from pathlib import Path

from asset_map.errors import ConfigError

DEFAULT_DIR = Path(__file__).parent / "static" / "vendor"
# Where DEFAULT_DIR sits under the static dir: use_local_assets() builds URLs as VENDOR_PREFIX + destination.
VENDOR_PREFIX = "vendor/"

# Our own replacement for the one folium file that is on no registry (a GitHub gist-like template), relative to
# the static dir, not the vendor dir: it is our code and is committed.
AWESOME_ROTATE_CSS = "css/awesome-rotate.css"

# The URLs folium 0.20 (and its plugins) put in default_js / default_css -> our file, relative to the static dir.
_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs/"
_JSDELIVR = "https://cdn.jsdelivr.net/"
CDN_URLS = {
    _JSDELIVR + "npm/leaflet@1.9.3/dist/leaflet.js": "vendor/leaflet/dist/leaflet.js",
    _JSDELIVR + "npm/leaflet@1.9.3/dist/leaflet.css": "vendor/leaflet/dist/leaflet.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "vendor/jquery/dist/jquery.min.js",
    _CDNJS + "jquery/3.7.1/jquery.min.js": "vendor/jquery/dist/jquery.min.js",
    _JSDELIVR + "npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js":
        "vendor/bootstrap/dist/js/bootstrap.bundle.min.js",
    _JSDELIVR + "npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": "vendor/bootstrap/dist/css/bootstrap.min.css",
    _JSDELIVR + "npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": "vendor/fontawesome-free/css/all.min.css",
    _CDNJS + "Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js":
        "vendor/leaflet.awesome-markers/dist/leaflet.awesome-markers.js",
    _CDNJS + "Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css":
        "vendor/leaflet.awesome-markers/dist/leaflet.awesome-markers.css",
    _JSDELIVR + "gh/python-visualization/folium/folium/templates/leaflet.awesome.rotate.min.css": AWESOME_ROTATE_CSS,
    _CDNJS + "leaflet.markercluster/1.1.0/leaflet.markercluster.js":
        "vendor/leaflet.markercluster/dist/leaflet.markercluster.js",
    _CDNJS + "leaflet.markercluster/1.1.0/MarkerCluster.css": "vendor/leaflet.markercluster/dist/MarkerCluster.css",
    _CDNJS + "leaflet.markercluster/1.1.0/MarkerCluster.Default.css":
        "vendor/leaflet.markercluster/dist/MarkerCluster.Default.css",
    "https://unpkg.com/leaflet.featuregroup.subgroup@1.0.2/dist/leaflet.featuregroup.subgroup.js":
        "vendor/leaflet.featuregroup.subgroup/dist/leaflet.featuregroup.subgroup.js",
    _JSDELIVR + "npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js":
        "vendor/leaflet.fullscreen/Control.FullScreen.js",
    _JSDELIVR + "npm/leaflet.fullscreen@3.0.0/Control.FullScreen.css":
        "vendor/leaflet.fullscreen/Control.FullScreen.css",
    _JSDELIVR + "npm/leaflet-search@2.9.7/dist/leaflet-search.min.js":
        "vendor/leaflet-search/dist/leaflet-search.min.js",
    _JSDELIVR + "npm/leaflet-search@2.9.7/dist/leaflet-search.min.css":
        "vendor/leaflet-search/dist/leaflet-search.min.css",
    _JSDELIVR + "gh/ardhi/Leaflet.MousePosition/src/L.Control.MousePosition.min.js":
        "vendor/leaflet-mouse-position/src/L.Control.MousePosition.js",
    _JSDELIVR + "gh/ardhi/Leaflet.MousePosition/src/L.Control.MousePosition.min.css":
        "vendor/leaflet-mouse-position/src/L.Control.MousePosition.css",
    _CDNJS + "leaflet-locatecontrol/0.66.2/L.Control.Locate.min.js":
        "vendor/leaflet.locatecontrol/dist/L.Control.Locate.min.js",
    _CDNJS + "leaflet-locatecontrol/0.66.2/L.Control.Locate.min.css":
        "vendor/leaflet.locatecontrol/dist/L.Control.Locate.min.css",
    _CDNJS + "leaflet-groupedlayercontrol/0.6.1/leaflet.groupedlayercontrol.min.js":
        "vendor/leaflet-groupedlayercontrol/dist/leaflet.groupedlayercontrol.min.js",
    _CDNJS + "leaflet-groupedlayercontrol/0.6.1/leaflet.groupedlayercontrol.min.css":
        "vendor/leaflet-groupedlayercontrol/dist/leaflet.groupedlayercontrol.min.css",
    _CDNJS + "leaflet-minimap/3.6.1/Control.MiniMap.js": "vendor/leaflet-minimap/dist/Control.MiniMap.min.js",
    _CDNJS + "leaflet-minimap/3.6.1/Control.MiniMap.css": "vendor/leaflet-minimap/dist/Control.MiniMap.min.css",
}

# Bootstrap 3 glyphicons: we use Font Awesome icons (prefix="fa") only, so folium's link is dropped, not replaced.
DROPPED_URLS = {"https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css"}


# -- folium --------------------------------------------------------------------------------------------------------

# Each folium class's own default_js / default_css as folium shipped them, saved before the first rewrite so that
# use_local_assets() always starts from the CDN URLs (idempotent, and callable again with another url_for_static).
_ORIGINALS = {}


def use_local_assets(url_for_static):
    """Point folium's ``default_js`` / ``default_css`` (Map and every plugin) at our static copies.

    ``url_for_static(relpath)`` turns a path under the static dir ("vendor/leaflet/dist/leaflet.js") into a URL,
    e.g. ``lambda p: "/static/" + p``. URLs we have no copy of are left alone (``external_urls`` reports them).
    Returns the number of URLs rewritten.
    """
    rewritten = 0
    for cls in _asset_classes():
        originals = _ORIGINALS.setdefault(
            cls, {attr: list(vars(cls)[attr]) for attr in ("default_js", "default_css") if attr in vars(cls)})
        for attr, entries in originals.items():
            local = []
            for name, url in entries:
                if url in DROPPED_URLS:
                    continue
                if url in CDN_URLS:
                    url = url_for_static(CDN_URLS[url])
                    rewritten += 1
                local.append((name, url))
            setattr(cls, attr, local)
    return rewritten


def _asset_classes():
    """folium.Map and every class (folium's, its plugins', or ours) that declares its own default_js/css."""
    import folium
    import folium.plugins
    from folium.elements import JSCSSMixin

    found = {folium.Map}
    stack = [JSCSSMixin]
    while stack:
        cls = stack.pop()
        found.add(cls)
        stack.extend(cls.__subclasses__())
    for value in vars(folium.plugins).values():
        if isinstance(value, type):
            found.add(value)
    return sorted((cls for cls in found if "default_js" in vars(cls) or "default_css" in vars(cls)),
                  key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


_URL = re.compile(r"""https?://[^\s"'<>()\\`]+""")
# An anchor's href, raw or JSON-escaped as folium writes attributions: followed, never fetched by the page.
_ANCHOR_BEFORE = re.compile(r"""(?:<|\\u003c)a\s[^<>]*?href=\\?["']?$""", re.IGNORECASE)
_TILE_TEMPLATE = re.compile(r"\{[a-z]\}")
_NAMESPACES = ("http://www.w3.org/",)


def external_urls(html):
    """The http(s) URLs in a rendered page that a browser might fetch, except tile URL templates.

    Links in attributions (``<a href>``) and XML namespaces are not fetched and are left out. An offline page
    returns [].
    """
    urls = []
    for match in _URL.finditer(html):
        url = match.group(0)
        if _TILE_TEMPLATE.search(url) or url.startswith(_NAMESPACES):
            continue
        if _ANCHOR_BEFORE.search(html[max(0, match.start() - 300):match.start()]):
            continue
        if url not in urls:
            urls.append(url)
    return urls


def check_offline(html):
    """Raise ``ConfigError`` if a rendered page would fetch anything from outside our server."""
    urls = external_urls(html)
    if urls:
        msg = ("the map page loads files from other servers: " + ", ".join(urls)
               + ". Vendor them in asset_map/tools/vendor.py (PACKAGES, FILES) and asset_map/web/vendored.py "
               "(CDN_URLS) or drop the plugin.")
        raise ConfigError(msg)
