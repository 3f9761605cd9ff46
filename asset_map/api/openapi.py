"""The OpenAPI 3.0 definition of the OGC API (``/ogc/api``): one items path per collection, so each collection's
queryable properties are listed with their types."""

from asset_map.api import layers as layer_defs
from asset_map.api.ogc import CRS84, DEFAULT_LIMIT, GEOJSON, JSON, MAX_LIMIT, SCHEMA_TYPES


def document(engine, *, role, base):
    """The OpenAPI 3.0 definition, with one items path per collection so its queryables are listed."""
    param = {
        "bbox": {"name": "bbox", "in": "query", "required": False, "style": "form", "explode": False,
                 "description": "minLon,minLat,maxLon,maxLat in CRS84",
                 "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}},
        "limit": {"name": "limit", "in": "query", "required": False, "style": "form", "explode": False,
                  "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
        "offset": {"name": "offset", "in": "query", "required": False,
                   "schema": {"type": "integer", "minimum": 0, "default": 0}},
        "datetime": {"name": "datetime", "in": "query", "required": False,
                     "description": "Instant or interval (RFC 3339) on the date last verified",
                     "schema": {"type": "string"}},
        "f": {"name": "f", "in": "query", "required": False, "schema": {"type": "string", "enum": ["json", "html"]}},
        "filter": {"name": "filter", "in": "query", "required": False,
                   "description": "A CQL2 filter on the collection's queryables (OGC API - Features Part 3)",
                   "schema": {"type": "string"}},
        "filter-lang": {"name": "filter-lang", "in": "query", "required": False,
                        "description": "The filter's encoding; cql-text is read as cql2-text",
                        "schema": {"type": "string", "enum": ["cql2-text", "cql2-json", "cql-text"],
                                   "default": "cql2-text"}},
        "filter-crs": {"name": "filter-crs", "in": "query", "required": False,
                       "schema": {"type": "string", "enum": [CRS84, "http://www.opengis.net/def/crs/EPSG/0/4326"]}},
    }
    ok = {"description": "OK"}
    errors = {"400": {"description": "Bad parameter",
                      "content": {JSON: {"schema": {"$ref": "#/components/schemas/exception"}}}},
              "404": {"description": "Not found",
                      "content": {JSON: {"schema": {"$ref": "#/components/schemas/exception"}}}}}
    paths = {
        "/": {"get": {"summary": "Landing page", "operationId": "getLandingPage",
                      "parameters": [{"$ref": "#/components/parameters/f"}], "responses": {"200": ok}}},
        "/conformance": {"get": {"summary": "Conformance classes", "operationId": "getConformanceDeclaration",
                                 "responses": {"200": ok}}},
        "/collections": {"get": {"summary": "Collections", "operationId": "getCollections",
                                 "responses": {"200": ok}}},
    }
    for layer in layer_defs.available(engine, role):
        props = [{"name": c.name, "in": "query", "required": False, "description": c.description or c.name,
                  "schema": SCHEMA_TYPES[c.type]} for c in layer.columns if c.queryable]
        schema = {"type": "object", "properties": {c.name: SCHEMA_TYPES[c.type] for c in layer.columns}}
        paths[f"/collections/{layer.id}"] = {"get": {
            "summary": f"{layer.title}: metadata", "operationId": f"describe-{layer.id}", "tags": [layer.id],
            "responses": {"200": ok, "404": errors["404"]}}}
        paths[f"/collections/{layer.id}/items"] = {"get": {
            "summary": f"{layer.title}: features", "description": layer.description,
            "operationId": f"getFeatures-{layer.id}", "tags": [layer.id],
            "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in ("bbox", "limit", "offset", "datetime",
                                                                               "filter", "filter-lang", "filter-crs",
                                                                               "f")] + props,
            "responses": {"200": {"description": "The features",
                                  "content": {GEOJSON: {"schema": {"type": "object", "properties": {
                                      "type": {"type": "string", "enum": ["FeatureCollection"]},
                                      "features": {"type": "array", "items": {"type": "object", "properties": {
                                          "properties": schema}}}}}}}}, **errors}}}
        paths[f"/collections/{layer.id}/items/{{featureId}}"] = {"get": {
            "summary": f"{layer.title}: one feature", "operationId": f"getFeature-{layer.id}", "tags": [layer.id],
            "parameters": [{"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"}},
                           {"$ref": "#/components/parameters/f"}],
            "responses": {"200": {"description": "The feature", "content": {GEOJSON: {"schema": {"type": "object"}}}},
                          **errors}}}
    return {"openapi": "3.0.3",
            "info": {"title": "asset-map OGC API - Features", "version": "1.0.0",
                     "description": "Community assets, need and districts. Individuals appear only as counts per "
                                    "area to anonymous users.",
                     "license": {"name": "Open Government Licence v3.0",
                                 "url": "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/"}},
            "servers": [{"url": base}],
            "paths": paths,
            "components": {"parameters": param, "schemas": {"exception": {
                "type": "object", "required": ["code"],
                "properties": {"code": {"type": "integer"}, "error": {"type": "string"},
                               "description": {"type": "string"}}}}}}

