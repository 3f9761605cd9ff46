"""The OpenAPI 3.0 definition of the OGC API (``/ogc/api``): one set of paths per collection, so each collection's
queryable properties and feature properties are listed with their types.

It is meant to be exact (a schema fuzzer checks it in the tests): every parameter with the values the server
accepts, every status code with its body, every content type (JSON, GeoJSON, HTML, JSON Schema), and ``nullable``
wherever a null can come back.
"""

from asset_map.api import layers as layer_defs
from asset_map.api.ogc import CRS84, DEFAULT_LIMIT, GEOJSON, HTML, JSON, MAX_LIMIT, OPENAPI, SCHEMA, SCHEMA_TYPES
from asset_map.store.assets import STATUSES, TIERS

# What the server accepts for the asset filters it parses itself (asset_map.store.assets.AssetFilter).
_ASSET_PARAM_SCHEMAS = {
    "tier": {"type": "string", "enum": list(TIERS)},
    "status": {"type": "string", "enum": [*STATUSES, "all"]},
    "district_code": {"type": "string", "pattern": "^[EWSN][0-9]{8}$"},
    "category": {"type": "string", "pattern": "^[A-Za-z0-9_/ -]{1,64}$"},
}
_DATE = r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
_INSTANT = rf"{_DATE}(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z)?"
_DATETIME_PATTERN = rf"^({_INSTANT}|{_INSTANT}/(\.\.|{_INSTANT})|\.\./{_INSTANT})$"
_TEXT = {"type": "string"}


def _ref(kind, name):
    return {"$ref": f"#/components/{kind}/{name}"}


def _content(*pairs):
    return {media: {"schema": schema} for media, schema in pairs}


def _errors(*codes):
    described = {"400": "A parameter, header or body the server cannot use (or, without a token, no CSRF token); "
                        "the description names it.",
                 "401": "A token is needed (Authorization: Bearer ...), or the one sent is unknown or expired.",
                 "403": "The token's scope or the user's role does not allow this.",
                 "404": "No such collection or feature.",
                 "405": "This collection cannot be edited.",
                 "412": "If-Match names a version of the feature that is no longer current; nothing was saved.",
                 "422": "The values do not pass the register checks (unknown category, point out of area, ...).",
                 "503": "The database is not available; try again shortly (Retry-After).",
                 "504": "The request took too long and was stopped."}
    return {code: {"description": described[code], "content": _content((JSON, _ref("schemas", "exception")))}
            for code in codes}


def _nullable(schema):
    return {**schema, "nullable": True}


def _feature_schema(layer):
    properties = {c.name: _nullable(SCHEMA_TYPES[c.type]) for c in layer.columns}
    return {"type": "object", "required": ["type", "id", "geometry", "properties"],
            "properties": {"type": {"type": "string", "enum": ["Feature"]},
                           "id": {"type": "integer" if layer.id_type == "integer" else "string"},
                           "geometry": _nullable(_ref("schemas", "geometry")),
                           "properties": {"type": "object", "properties": properties},
                           "links": {"type": "array", "items": _ref("schemas", "link")}}}


def _query_param(layer, column):
    schema = SCHEMA_TYPES[column.type]
    if layer.kind == "assets" and column.name in _ASSET_PARAM_SCHEMAS:
        schema = _ASSET_PARAM_SCHEMAS[column.name]
    return {"name": column.name, "in": "query", "required": False, "description": column.description or column.name,
            "schema": schema}


def _parameters():
    return {
        "bbox": {"name": "bbox", "in": "query", "required": False, "style": "form", "explode": False,
                 "description": "minLon,minLat,maxLon,maxLat in CRS84 (a 3D box of six numbers is also read)",
                 "schema": {"type": "array", "minItems": 4, "maxItems": 4,
                            "items": {"type": "number", "minimum": -90, "maximum": 90}}},
        "bbox-crs": {"name": "bbox-crs", "in": "query", "required": False, "schema": {"type": "string",
                                                                                      "enum": [CRS84]}},
        "limit": {"name": "limit", "in": "query", "required": False, "style": "form", "explode": False,
                  "description": f"Features per page; more than {MAX_LIMIT:,} is read as {MAX_LIMIT:,}",
                  "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
        "offset": {"name": "offset", "in": "query", "required": False,
                   "schema": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000, "default": 0}},
        "after": {"name": "after", "in": "query", "required": False,
                  "description": "The id of the last feature of the page before, as the next links give it: the "
                                 "page starts after that feature (with offset numbering the page)",
                  "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,64}$"}},
        "datetime": {"name": "datetime", "in": "query", "required": False,
                     "description": "Instant or interval (RFC 3339) on the date last verified",
                     "schema": {"type": "string", "pattern": _DATETIME_PATTERN}},
        "f": {"name": "f", "in": "query", "required": False, "schema": {"type": "string", "enum": ["json", "html"]}},
        "filter": {"name": "filter", "in": "query", "required": False,
                   "description": "A CQL2 filter on the collection's queryables (OGC API - Features Part 3); a "
                                  "malformed filter or an unknown property is a 400 saying where",
                   "schema": {"type": "string"}},
        "filter-lang": {"name": "filter-lang", "in": "query", "required": False,
                        "description": "The filter's encoding; cql-text is read as cql2-text",
                        "schema": {"type": "string", "enum": ["cql2-text", "cql2-json", "cql-text"],
                                   "default": "cql2-text"}},
        "filter-crs": {"name": "filter-crs", "in": "query", "required": False,
                       "schema": {"type": "string", "enum": [CRS84, "http://www.opengis.net/def/crs/EPSG/0/4326"]}},
    }


def _schemas():
    link = {"type": "object", "required": ["href", "rel"],
            "properties": {"href": _TEXT, "rel": _TEXT, "type": _TEXT, "title": _TEXT}}
    geometry = {"type": "object", "required": ["type"],
                "properties": {"type": {"type": "string", "enum": ["Point", "MultiPoint", "LineString",
                                                                   "MultiLineString", "Polygon", "MultiPolygon"]},
                               "coordinates": {"type": "array"}}}
    collection = {"type": "object", "required": ["id", "links"],
                  "properties": {"id": _TEXT, "title": _TEXT, "description": _TEXT, "itemType": _TEXT,
                                 "crs": {"type": "array", "items": _TEXT},
                                 "extent": {"type": "object"},
                                 "links": {"type": "array", "items": _ref("schemas", "link")}}}
    return {
        "exception": {"type": "object", "required": ["code", "description"],
                      "properties": {"code": {"type": "integer"}, "error": _TEXT, "description": _TEXT}},
        "link": link, "geometry": geometry, "collection": collection,
        "landing": {"type": "object", "required": ["links"],
                    "properties": {"title": _TEXT, "description": _TEXT,
                                   "links": {"type": "array", "items": _ref("schemas", "link")}}},
        "conformance": {"type": "object", "required": ["conformsTo"],
                        "properties": {"conformsTo": {"type": "array", "items": _TEXT}}},
        "collections": {"type": "object", "required": ["links", "collections"],
                        "properties": {"links": {"type": "array", "items": _ref("schemas", "link")},
                                       "collections": {"type": "array", "items": _ref("schemas", "collection")}}},
        "jsonSchema": {"type": "object", "required": ["type", "properties"],
                       "properties": {"$schema": _TEXT, "$id": _TEXT, "type": _TEXT, "title": _TEXT,
                                      "properties": {"type": "object"}}},
    }


def _get(summary, op, responses, parameters=(), tags=None, description=None):
    out = {"summary": summary, "operationId": op, "parameters": list(parameters), "responses": responses}
    if tags:
        out["tags"] = tags
    if description:
        out["description"] = description
    return {"get": out}


def _edit_body(layer):
    writable = {c.name: _nullable(SCHEMA_TYPES[c.type]) for c in layer.columns}
    schema = {"type": "object", "required": ["type"],
              "properties": {"type": {"type": "string", "enum": ["Feature"]},
                             "geometry": _nullable(_ref("schemas", "geometry")),
                             "properties": {"type": "object", "properties": writable}}}
    return {"required": True, "content": _content((GEOJSON, schema), (JSON, schema))}


def _add_writes(paths, root, layer, tags):
    """Part 4 on an asset collection: a token of scope 'write' (or a signed-in session with its CSRF token)."""
    etag = {"ETag": {"description": "The new version of the feature", "schema": _TEXT}}
    if_match = {"name": "If-Match", "in": "header", "required": False, "schema": _TEXT,
                "description": "The ETag read; an older one is refused with 412 (without it, the last write wins)"}
    crs = {"name": "Content-Crs", "in": "header", "required": False, "schema": {"type": "string",
                                                                                 "enum": [f"<{CRS84}>"]}}
    feature_id = {"name": "featureId", "in": "path", "required": True, "schema": _TEXT}
    security = [{"bearer": []}]
    refused = _errors("400", "401", "403", "404", "405", "412", "422", "503")
    paths[f"{root}/items"]["post"] = {
        "summary": f"{layer.title}: add a feature", "operationId": f"createFeature-{layer.id}", "tags": tags,
        "security": security, "parameters": [crs], "requestBody": _edit_body(layer),
        "responses": {"201": {"description": "Created", "headers": {
            **etag, "Location": {"description": "The new feature", "schema": _TEXT}}}, **refused}}
    item = paths[f"{root}/items/{{featureId}}"]
    for method, verb, params in (("put", "replace", [feature_id, if_match, crs]),
                                 ("patch", "update", [feature_id, if_match, crs]),
                                 ("delete", "delete", [feature_id, if_match])):
        op = {"summary": f"{layer.title}: {verb} a feature", "operationId": f"{verb}Feature-{layer.id}",
              "tags": tags, "security": security, "parameters": params,
              "responses": {"204": {"description": "Done", "headers": etag}, **refused}}
        if method != "delete":
            op["requestBody"] = _edit_body(layer)
        item[method] = op


def document(engine, *, role, base):
    """The OpenAPI 3.0 definition, with one items path per collection so its queryables are listed."""
    html = (HTML, _TEXT)
    f = _ref("parameters", "f")
    meta_errors = _errors("400", "503")

    def ok(description, *content):
        return {"200": {"description": description, "content": _content(*content)}}

    paths = {
        "/": _get("Landing page", "getLandingPage",
                  {**ok("The landing page", (JSON, _ref("schemas", "landing")), html), **meta_errors}, [f]),
        "/conformance": _get("Conformance classes", "getConformanceDeclaration",
                             {**ok("The conformance classes", (JSON, _ref("schemas", "conformance")), html),
                              **meta_errors}, [f]),
        "/api": _get("This document", "getAPI", {**ok("The OpenAPI definition", (OPENAPI, {"type": "object"}), html),
                                                  **meta_errors}, [f]),
        "/collections": _get("Collections", "getCollections",
                             {**ok("The collections", (JSON, _ref("schemas", "collections")), html),
                              **meta_errors}, [f]),
    }
    common = [_ref("parameters", p) for p in ("bbox", "bbox-crs", "limit", "offset", "after", "datetime", "filter",
                                              "filter-lang", "filter-crs", "f")]
    for layer in layer_defs.available(engine, role):
        tags = [layer.id]
        feature = _feature_schema(layer)
        page = {"type": "object", "required": ["type", "features", "numberMatched", "numberReturned", "links"],
                "properties": {"type": {"type": "string", "enum": ["FeatureCollection"]},
                               "numberMatched": {"type": "integer", "minimum": 0},
                               "numberReturned": {"type": "integer", "minimum": 0},
                               "timeStamp": {"type": "string", "format": "date-time"},
                               "links": {"type": "array", "items": _ref("schemas", "link")},
                               "features": {"type": "array", "items": feature}}}
        root = f"/collections/{layer.id}"
        paths[root] = _get(f"{layer.title}: metadata", f"describe-{layer.id}",
                           {**ok("The collection", (JSON, _ref("schemas", "collection")), html), **meta_errors},
                           [f], tags)
        for part, op, title in (("schema", "getSchema", "JSON Schema of the features"),
                                ("queryables", "getQueryables", "What a filter may name")):
            paths[f"{root}/{part}"] = _get(f"{layer.title}: {title}", f"{op}-{layer.id}",
                                           {**ok(title, (SCHEMA, _ref("schemas", "jsonSchema"))),
                                            **_errors("503")}, [], tags)
        params = common + [_query_param(layer, c) for c in layer.columns if c.queryable]
        paths[f"{root}/items"] = _get(f"{layer.title}: features", f"getFeatures-{layer.id}",
                                      {**ok("A page of features", (GEOJSON, page), html),
                                       **_errors("400", "503", "504")}, params, tags, layer.description)
        one = {**ok("The feature", (GEOJSON, feature), html), **_errors("400", "404", "503")}
        if layer.kind == "assets":
            one["200"]["headers"] = {"ETag": {"description": "The feature's version, for If-Match",
                                              "schema": _TEXT}}
        paths[f"{root}/items/{{featureId}}"] = _get(
            f"{layer.title}: one feature", f"getFeature-{layer.id}", one,
            [{"name": "featureId", "in": "path", "required": True, "schema": _TEXT}, f], tags)
        if layer.kind == "assets":
            _add_writes(paths, root, layer, tags)
    return {"openapi": "3.0.3",
            "info": {"title": "asset-map OGC API - Features", "version": "1.0.0",
                     "description": "Community assets, need and districts. Individuals appear only as counts per "
                                    "area to anonymous users.",
                     "license": {"name": "Open Government Licence v3.0",
                                 "url": "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/"}},
            "servers": [{"url": base}],
            "paths": paths,
            "components": {"parameters": _parameters(), "schemas": _schemas(),
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                          "description": "asset-map token create EMAIL --scope "
                                                                         "write"}}}}


def map_document(base):
    """The OpenAPI 3.0 definition of the map's JSON API (``/api``): the visible assets, the counts of individuals
    and the postcode lookup, with the shared filter parameters as the server checks them."""
    text_ = {"type": "string"}

    def q(name, schema, description):
        return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}

    word = {"type": "string", "pattern": "^[A-Za-z0-9_/ -]{1,64}$"}
    filters = [
        q("district", {"type": "string", "pattern": "^[A-Z][0-9]{8}$"}, "ONS district code"),
        q("area", {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,63}:[A-Za-z0-9_.-]{1,64}$"},
          "An area of a loaded geography, geography:code"),
        q("tier", {"type": "string", "enum": list(TIERS)}, "ABCD tier"),
        q("category", word, "Category"), q("offer", word, "What the asset offers"),
        q("status", {"type": "string", "enum": [*STATUSES, "all"]}, "Status (closed ones only when asked)"),
        q("verified_within", {"type": "integer", "minimum": 1, "maximum": 1200}, "Months"),
        q("q", text_, "Text the name contains"),
        q("updated_since", {"type": "string", "format": "date"}, "Changed on or after (ISO 8601)"),
        _parameters()["bbox"],
    ]
    collection = {"type": "object", "required": ["type", "features"],
                  "properties": {"type": {"type": "string", "enum": ["FeatureCollection"]},
                                 "features": {"type": "array", "items": {
                                     "type": "object", "required": ["type", "properties"],
                                     "properties": {"type": {"type": "string", "enum": ["Feature"]},
                                                    "geometry": _nullable(_ref("schemas", "geometry")),
                                                    "properties": {"type": "object"}}}}}}
    refused = _errors("400", "503")

    def get(summary, op, ok, params, extra=None):
        return {"get": {"summary": summary, "operationId": op, "parameters": params,
                        "responses": {"200": ok, **refused, **(extra or {})}}}

    paths = {
        "/assets.geojson": get(
            "Assets of the visible area: points, or counts per grid cell and category when too many", "mapAssets",
            {"description": "The assets", "content": _content((GEOJSON, collection))},
            [*filters, q("zoom", {"type": "integer", "minimum": 0, "maximum": 19}, "The map's zoom")]),
        "/individuals.geojson": get(
            "Individuals as protected counts per area", "mapIndividuals",
            {"description": "Counts per area", "content": _content((GEOJSON, collection))},
            [*filters, q("geography", {"type": "string", "enum": ["district", "lsoa21", "lsoa11"]}, "Areas")]),
        "/postcode": get(
            "A postcode's point from the gazetteer", "postcode",
            {"description": "The postcode", "content": _content((JSON, {
                "type": "object", "required": ["postcode", "lon", "lat"],
                "properties": {"postcode": text_, "lon": {"type": "number"}, "lat": {"type": "number"},
                               "district_code": _nullable(text_)}}))},
            [{"name": "postcode", "in": "query", "required": True, "schema": text_}], _errors("404")),
    }
    return {"openapi": "3.0.3", "info": {"title": "asset-map map API", "version": "1.0.0",
                                         "description": "What the map reads. Individuals only as protected counts "
                                                        "to anyone below officer."},
            "servers": [{"url": base}], "paths": paths,
            "components": {"schemas": _schemas()}}
