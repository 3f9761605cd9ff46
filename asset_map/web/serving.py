"""What production serving adds to every response: compression and cache headers for static files.

Compression is Flask-Compress (gzip, brotli, zstd as the client accepts) for HTML, CSS, JS, JSON and GeoJSON above
1 KB; small answers are not worth the CPU. Static files keep Flask's ETag and Last-Modified (so a revalidation is a
304) and get a max-age: long for the vendored libraries, whose versions are pinned, short for our own CSS.
"""

from flask import Response, request
from flask_compress import Compress

from asset_map.web.security import csp_nonce
from asset_map.web.vendored import VENDOR_PREFIX

GEOJSON_TYPES = ["application/geo+json", "application/vnd.geo+json"]
MIN_COMPRESS_BYTES = 1024

compress = Compress()


def init_app(app):
    settings = app.config["ASSET_MAP"]
    app.config.setdefault("COMPRESS_MIN_SIZE", MIN_COMPRESS_BYTES)
    app.config.setdefault("COMPRESS_MIMETYPES", _mimetypes())
    # Static files and exports are streamed; Flask-Compress leaves gzip out of its streaming list by default, but
    # gzip is the one encoding every client (curl, GDAL, QGIS, old browsers) accepts.
    app.config.setdefault("COMPRESS_ALGORITHM_STREAMING", ["zstd", "br", "gzip", "deflate"])
    compress.init_app(app)
    vendor_prefix = f"{app.static_url_path}/{VENDOR_PREFIX}"

    def max_age(filename):
        # Flask's static view asks this for every file it serves; None would mean "revalidate every time".
        if request.path.startswith(vendor_prefix):
            return settings["VENDOR_MAX_AGE_S"]
        return settings["STATIC_MAX_AGE_S"]

    app.get_send_file_max_age = max_age


def send_kept(page):
    """A page kept rendered (maps.page_cache.Page) with this response's CSP nonce, gzip-compressed already when the
    client takes gzip (the compression above leaves a response that has its encoding alone)."""
    nonce = csp_nonce()
    if request.accept_encodings["gzip"]:
        return Response(page.gzipped(nonce), mimetype="text/html",
                        headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(page.served(nonce), mimetype="text/html", headers={"Vary": "Accept-Encoding"})


def _mimetypes():
    # Not vector tiles: web.tiles compresses each once, when it is rendered, and keeps it so.
    return ["text/html", "text/css", "text/plain", "text/csv", "text/javascript", "application/javascript",
            "application/json", "application/xml", "image/svg+xml", *GEOJSON_TYPES]
