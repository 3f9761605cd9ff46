"""/oruk: the Open Referral UK 3.0 API, thin routes over asset_map.oruk.publish. Open to every origin for reading
(CORS), no key needed; what each caller sees is the store's privacy rule for their role."""

import json

from flask import Blueprint, Response, current_app, request

from asset_map.config import attribution_lines
from asset_map.oruk import openapi, publish
from asset_map.web import extensions
from asset_map.web.auth import current_role

bp = Blueprint("oruk", __name__, url_prefix="/oruk")
JSON = "application/json"


def _base():
    return f"{request.scheme}://{request.host}{request.script_root}/oruk"


def _meta():
    settings = current_app.config["ASSET_MAP"]
    return {"attribution": attribution_lines(settings), "licence": settings["LICENCE"]}


def _json(doc, content_type=JSON):
    return Response(json.dumps(doc, ensure_ascii=False), content_type=content_type)


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
    return _json(publish.services(extensions.read_engine(), request.args, role=current_role(), **_meta()))


@bp.get("/services/<service_id>")
def service(service_id):
    return _json(publish.service(extensions.engine(), service_id, role=current_role()))


@bp.get("/service_at_locations")
def service_at_locations():
    return _json(publish.service_at_locations(extensions.read_engine(), request.args, role=current_role(),
                                              **_meta()))


@bp.get("/service_at_locations/<sal_id>")
def service_at_location(sal_id):
    return _json(publish.service_at_location(extensions.engine(), sal_id, role=current_role()))


@bp.get("/taxonomies")
def taxonomies():
    return _json(publish.taxonomies(extensions.engine(), request.args, **_meta()))


@bp.get("/taxonomies/<taxonomy_id>")
def taxonomy(taxonomy_id):
    return _json(publish.taxonomy(extensions.engine(), taxonomy_id))


@bp.get("/taxonomy_terms")
def taxonomy_terms():
    return _json(publish.taxonomy_terms(extensions.engine(), request.args, **_meta()))


@bp.get("/taxonomy_terms/<term_id>")
def taxonomy_term(term_id):
    return _json(publish.taxonomy_term(extensions.engine(), term_id))
