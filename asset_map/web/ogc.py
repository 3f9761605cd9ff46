"""/ogc: OGC API - Features, thin routes over asset_map.api.ogc. JSON or HTML by ``f=`` or the Accept header."""

import json
import re

from flask import Blueprint, Response, current_app, render_template, request

from asset_map import disclosure
from asset_map.api import layers, ogc, ogc_edit, openapi
from asset_map.errors import InputError
from asset_map.web import extensions
from asset_map.web.auth import current_actor, current_role, is_bulk_read, record_read

bp = Blueprint("ogc", __name__, url_prefix="/ogc")


def _base():
    # The configured public address when there is one: a Host header is the client's to choose.
    public = current_app.config["ASSET_MAP"].get("PUBLIC_URL")
    if public:
        return public.rstrip("/") + "/ogc"
    # Built from the host header as sent: url_root's IRI round trip costs more than the rest of an items request.
    return f"{request.scheme}://{request.host}{request.script_root}/ogc"


def _html():
    f = request.args.get("f")
    if f:
        if f not in ("json", "html"):
            msg = f"Parameter 'f' has value {f!r}: expected json or html."
            raise InputError(msg)
        return f == "html"
    return request.accept_mimetypes.best_match([ogc.JSON, ogc.GEOJSON, ogc.HTML], default=ogc.JSON) == ogc.HTML


def _reply(doc, template, media_type=ogc.JSON, **context):
    if _html():
        if isinstance(doc, str):
            doc = json.loads(doc)
        return render_template(f"ogc/{template}.html", doc=doc, **context)
    body = doc if isinstance(doc, str) else json.dumps(doc)
    return Response(body, content_type=media_type)


@bp.get("/")
def landing():
    return _reply(ogc.landing(_base()), "landing")


@bp.get("/conformance")
def conformance():
    return _reply(ogc.conformance(), "conformance")


@bp.get("/api")
def api():
    doc = openapi.document(extensions.engine(), role=current_role(), base=_base())
    return _reply(doc, "api", ogc.OPENAPI)


@bp.get("/collections")
def collections():
    return _reply(ogc.collections(extensions.engine(), role=current_role(), base=_base()), "collections")


@bp.get("/collections/<collection_id>")
def collection(collection_id):
    layer = layers.get(extensions.engine(), collection_id, current_role())
    return _reply(ogc.collection(extensions.engine(), layer, base=_base(), role=current_role()), "collection",
                  layer=layer)


@bp.get("/collections/<collection_id>/schema")
def schema(collection_id):
    layer = layers.get(extensions.engine(), collection_id, current_role())
    return Response(json.dumps(ogc.schema(layer, base=_base())), content_type=ogc.SCHEMA)


@bp.get("/collections/<collection_id>/queryables")
def queryables(collection_id):
    layer = layers.get(extensions.engine(), collection_id, current_role())
    return Response(json.dumps(ogc.queryables(layer, base=_base())), content_type=ogc.SCHEMA)


@bp.get("/collections/<collection_id>/items")
def items(collection_id):
    engine = extensions.read_engine()
    layer = layers.get(engine, collection_id, current_role())
    query = ogc.parse_items(layer, request.args)
    body = ogc.items(engine, layer, query, role=current_role(), base=_base(),
                     suppress_below=disclosure.method(current_app.config["ASSET_MAP"]))
    if is_bulk_read(request.path):
        # Individuals' points: every page read is an export (who, which page, how many).
        returned = re.search(r'"numberReturned":(\d+)', body)
        record_read(layer.id, details={"format": "ogc-items", "query": dict(request.args)},
                    rows=int(returned.group(1)) if returned else None)
    return _reply(body, "items", ogc.GEOJSON, layer=layer)


@bp.get("/collections/<collection_id>/items/<feature_id>")
def item(collection_id, feature_id):
    engine = extensions.engine()
    layer = layers.get(engine, collection_id, current_role())
    body = ogc.item(engine, layer, feature_id, role=current_role(), base=_base(),
                    suppress_below=disclosure.method(current_app.config["ASSET_MAP"]))
    response = current_app.make_response(_reply(body, "item", ogc.GEOJSON, layer=layer))
    if layer.kind == "assets":
        # The feature's version: send it back in If-Match to edit it (Part 4); a stale one gets 412.
        response.headers["ETag"] = ogc_edit.etag(ogc_edit.current_version(engine, feature_id))
    return response


# -- Part 4: create, replace, update, delete (a token of scope "write", or a signed-in session with CSRF) ----------
def _feature():
    return ogc_edit.parse_body(request.get_data(cache=False), request.headers.get("Content-Crs"))


def _written(status, feature_url, version):
    response = Response(status=status)
    response.headers["ETag"] = ogc_edit.etag(version)
    if status == 201:
        response.headers["Location"] = feature_url
    return response


@bp.post("/collections/<collection_id>/items")
def create_item(collection_id):
    engine = extensions.engine()
    layer = layers.get(engine, collection_id, current_role())
    asset_id, version, _ = ogc_edit.create(engine, layer, _feature(), role=current_role(), actor=current_actor())
    return _written(201, f"{_base()}/collections/{layer.id}/items/{asset_id}", version)


@bp.route("/collections/<collection_id>/items/<feature_id>", methods=["PUT", "PATCH"])
def change_item(collection_id, feature_id):
    """PUT replaces the feature (writable properties left out are emptied); PATCH changes what it sends."""
    engine = extensions.engine()
    layer = layers.get(engine, collection_id, current_role())
    write = ogc_edit.replace if request.method == "PUT" else ogc_edit.update
    version, _ = write(engine, layer, feature_id, _feature(), role=current_role(), actor=current_actor(),
                       if_match=request.headers.get("If-Match"))
    return _written(204, None, version)


@bp.delete("/collections/<collection_id>/items/<feature_id>")
def delete_item(collection_id, feature_id):
    engine = extensions.engine()
    layer = layers.get(engine, collection_id, current_role())
    version, _ = ogc_edit.delete(engine, layer, feature_id, role=current_role(), actor=current_actor(),
                                 if_match=request.headers.get("If-Match"))
    return _written(204, None, version)
