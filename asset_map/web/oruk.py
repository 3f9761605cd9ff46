"""/oruk: the Open Referral UK 3.0 API, thin routes over asset_map.oruk.publish. Open to every origin for reading
(CORS), no key needed; what each caller sees is the store's privacy rule for their role."""

import gzip
import json

from flask import Blueprint, Response, current_app, request

from asset_map.config import attribution_lines
from asset_map.store.change_stamps import StampedCache
from asset_map.web import extensions
from asset_map.web.auth import current_role
from asset_map.web.lazy import lazy

# The feed's postcode search brings pandas and geopandas: loaded by the first ORUK request, not at start-up.
openapi = lazy("asset_map.oruk.openapi")
publish = lazy("asset_map.oruk.publish")

bp = Blueprint("oruk", __name__, url_prefix="/oruk")
JSON = "application/json"


def _base():
    return f"{request.scheme}://{request.host}{request.script_root}/oruk"


def _meta():
    settings = current_app.config["ASSET_MAP"]
    return {"attribution": attribution_lines(settings), "licence": settings["LICENCE"]}


def _json(doc, content_type=JSON):
    return Response(json.dumps(doc, ensure_ascii=False), content_type=content_type)


def _answers():
    return extensions.kept("asset_map.oruk_answers", lambda settings: StampedCache(
        settings["FEED_CACHE_MB"] * 2**20, weigh=lambda kept: len(kept[0]) + len(kept[1])))


def answer_key():
    """All that an answer depends on besides the data: path, arguments, address (its links) and the role, which
    decides what the privacy rule lets it see (an officer's page carries e-mail addresses the public's does not)."""
    return request.path, tuple(sorted(request.args.items(multi=True))), _base(), current_role()


def _encoded(doc):
    """(JSON, the same gzipped): a kept answer is compressed once, not on every read (compressing was a third of
    a read's time)."""
    body = json.dumps(doc, ensure_ascii=False).encode()
    return body, gzip.compress(body, compresslevel=6, mtime=0)


def _feed(engine, answer):
    """``answer()``'s JSON, kept until the data changes: a feed is read page by page, over and over, by partners'
    crawlers."""
    if not current_app.config["ASSET_MAP"]["FEED_CACHE_MB"]:
        return _json(answer())
    body, gzipped = _answers().get(engine, answer_key(), lambda: _encoded(answer()))
    if request.accept_encodings["gzip"] <= 0:
        return Response(body, content_type=JSON)
    # Already encoded: Flask-Compress leaves a response with a Content-Encoding alone.
    response = Response(gzipped, content_type=JSON, headers={"Content-Encoding": "gzip"})
    response.vary.add("Accept-Encoding")
    return response


@bp.after_request
def _cors(response):
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Accept, Authorization, Content-Type"
    response.headers["Access-Control-Max-Age"] = "86400"
    return response


@bp.get("/")
def root():
    meta = _meta()
    return _json(publish.root(f"{_base()}/openapi.json", **meta))


@bp.get("/openapi.json")
def api():
    return _json(openapi.document(_base()), openapi.MEDIA_TYPE)


@bp.get("/services")
def services():
    # The read-only engine (autocommit, no ping), as the OGC items: a directory is read far more than written.
    engine = extensions.read_engine()
    return _feed(engine, lambda: publish.services(engine, request.args, role=current_role(), **_meta()))


@bp.get("/services/<service_id>")
def service(service_id):
    engine = extensions.read_engine()
    return _feed(engine, lambda: publish.service(engine, service_id, role=current_role()))


@bp.get("/service_at_locations")
def service_at_locations():
    engine = extensions.read_engine()
    return _feed(engine, lambda: publish.service_at_locations(engine, request.args, role=current_role(), **_meta()))


@bp.get("/service_at_locations/<sal_id>")
def service_at_location(sal_id):
    engine = extensions.read_engine()
    return _feed(engine, lambda: publish.service_at_location(engine, sal_id, role=current_role()))


@bp.get("/taxonomies")
def taxonomies():
    return _json(publish.taxonomies_page(extensions.engine(), request.args, **_meta()))


@bp.get("/taxonomies/<taxonomy_id>")
def taxonomy(taxonomy_id):
    return _json(publish.taxonomy(extensions.engine(), taxonomy_id))


@bp.get("/taxonomy_terms")
def taxonomy_terms():
    return _json(publish.taxonomy_terms_page(extensions.engine(), request.args, **_meta()))


@bp.get("/taxonomy_terms/<term_id>")
def taxonomy_term(term_id):
    return _json(publish.taxonomy_term(extensions.engine(), term_id))
