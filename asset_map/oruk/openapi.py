"""The OpenAPI 3.0 document of ``/oruk``: the ORUK API profile's endpoints and parameters as this server answers
them, with schemas self-contained (the HSDS-UK 3.0 fields asset-map fills; the profile's own document refers to
schemas on the web), every status code and its body."""

from asset_map.oruk.publish import DEFAULT_PER_PAGE, MAX_PER_PAGE, MAX_PROXIMITY_M

MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"
JSON = "application/json"
UUID = {"type": "string", "format": "uuid"}
TEXT = {"type": "string"}


def _obj(required, **props):
    return {"type": "object", "required": list(required), "properties": props}


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _array(schema):
    return {"type": "array", "items": schema}


def schemas():
    term = _obj(["id", "name", "description"], id=UUID, name=TEXT, description=TEXT, parent_id=UUID, taxonomy=TEXT,
                taxonomy_id=UUID, term_uri={"type": "string", "format": "uri"}, term=TEXT)
    attribute = _obj(["id"], id=UUID, link_id=UUID, link_type=TEXT, taxonomy_term_id=UUID,
                     taxonomy_term=_ref("taxonomy_term"))
    address = _obj(["id", "address_1", "city", "state_province", "postal_code", "country", "address_type"],
                   id=UUID, location_id=UUID, address_1=TEXT, city=TEXT, state_province=TEXT, postal_code=TEXT,
                   country=TEXT, address_type={"type": "string", "enum": ["physical", "postal", "virtual"]})
    location = _obj(["id", "location_type"], id=UUID,
                    location_type={"type": "string", "enum": ["physical", "postal", "virtual"]}, name=TEXT,
                    latitude={"type": "number"}, longitude={"type": "number"}, external_identifier=TEXT,
                    external_identifier_type=TEXT, addresses=_array(_ref("address")),
                    attributes=_array(_ref("attribute")))
    organization = _obj(["id", "name", "description"], id=UUID, name=TEXT, description=TEXT,
                        website={"type": "string", "format": "uri"}, email=TEXT)
    basic = dict(id=UUID, organization_id=UUID, name=TEXT, description=TEXT, url=TEXT, email=TEXT,
                 status={"type": "string", "enum": ["active", "inactive", "defunct", "temporarily closed"]},
                 last_modified={"type": "string", "format": "date-time"})
    service_list = _obj(["id", "name", "status"], **basic)
    sal = _obj(["id", "service_id", "location_id", "location"], id=UUID, service_id=UUID, location_id=UUID,
               location=_ref("location"), service=_ref("service_list"))
    service = _obj(["id", "name", "status"], **basic, organization=_ref("organization"),
                   service_at_locations=_array(_obj(["id"], id=UUID, service_id=UUID, location_id=UUID,
                                                    location=_ref("location"))),
                   attributes=_array(_ref("attribute")))
    sal_full = _obj(["id", "service_id", "location_id", "location", "service"], id=UUID, service_id=UUID,
                    location_id=UUID, location=_ref("location"), service=_ref("service"))
    taxonomy = _obj(["id", "name", "description"], id=UUID, name=TEXT, description=TEXT,
                    uri={"type": "string", "format": "uri"}, taxonomy_terms=_array(_ref("taxonomy_term")))
    return {"taxonomy_term": term, "attribute": attribute, "address": address, "location": location,
            "organization": organization, "service_list": service_list, "service": service,
            "service_at_location_list": sal, "service_at_location": sal_full, "taxonomy": taxonomy,
            "error": _obj(["code", "error", "description"], code={"type": "integer"}, error=TEXT, description=TEXT)}


def _page(item):
    return {"type": "object",
            "required": ["total_items", "total_pages", "page_number", "size", "first_page", "last_page", "empty",
                         "contents"],
            "properties": {"total_items": {"type": "integer", "minimum": 0},
                           "total_pages": {"type": "integer", "minimum": 0},
                           "page_number": {"type": "integer", "minimum": 1},
                           "size": {"type": "integer", "minimum": 0}, "first_page": {"type": "boolean"},
                           "last_page": {"type": "boolean"}, "empty": {"type": "boolean"},
                           "attribution": _array(TEXT), "licence": TEXT, "contents": _array(_ref(item))}}


def _reply(description, schema):
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _param(name, schema, description):
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def document(base):
    error = _ref("error")
    bad = _reply("A parameter has a value that cannot be used; the description names it.", error)
    missing = _reply("No such item.", error)
    unavailable = _reply("The database is not available; try again shortly.", error)
    params = {
        "page": _param("page", {"type": "integer", "minimum": 1, "maximum": 10**6, "default": 1},
                       "Page number (from 1)."),
        "per_page": _param("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE,
                                        "default": DEFAULT_PER_PAGE}, "Items per page."),
        "search": _param("search", TEXT, "Text the service's name contains (case does not matter)."),
        "taxonomy_term_id": _param("taxonomy_term_id", TEXT, "Only services with this taxonomy term."),
        "taxonomy_id": _param("taxonomy_id", TEXT, "Only services with a term of this taxonomy."),
        "minimum_age": _param("minimum_age", {"type": "number", "minimum": 0, "maximum": 150},
                              "Accepted; services here have no age limits, so none is excluded."),
        "maximum_age": _param("maximum_age", {"type": "number", "minimum": 0, "maximum": 150},
                              "Accepted; services here have no age limits, so none is excluded."),
        "postcode": _param("postcode", TEXT, "A postcode of the loaded gazetteer to measure 'proximity' from."),
        "proximity": _param("proximity", {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": MAX_PROXIMITY_M},
                            "Metres from the postcode (default 1000; needs 'postcode')."),
    }
    refs = {name: {"$ref": f"#/components/parameters/{name}"} for name in params}
    service_filters = [refs[n] for n in ("search", "page", "per_page", "taxonomy_term_id", "taxonomy_id",
                                         "minimum_age", "maximum_age")]
    listing = {"200": None, "400": bad, "503": unavailable}

    def get(summary, op, ok, parameters=(), *, by_id=False):
        responses = {**listing, "200": ok}
        if by_id:
            responses = {"200": ok, "404": missing, "503": unavailable}
            parameters = [{"name": "id", "in": "path", "required": True, "schema": TEXT}]
        return {"get": {"summary": summary, "operationId": op, "parameters": list(parameters),
                        "responses": responses}}

    paths = {
        "/": {"get": {"summary": "About this API", "operationId": "getRoot", "responses": {"200": _reply(
            "HSDS version, profile and this document's address.",
            _obj(["version", "profile", "openapi_url"], version=TEXT, profile={"type": "string", "format": "uri"},
                 openapi_url={"type": "string", "format": "uri"}, attribution=_array(TEXT), licence=TEXT))}}},
        "/services": get("Services, paged", "getServices", _reply("A page of services.", _page("service_list")),
                         service_filters),
        "/services/{id}": get("One service, fully nested", "getService", _reply("The service.", _ref("service")),
                              by_id=True),
        "/service_at_locations": get(
            "Services at their locations, paged", "getServiceAtLocations",
            _reply("A page of services at locations.", _page("service_at_location_list")),
            [*service_filters, refs["postcode"], refs["proximity"]]),
        "/service_at_locations/{id}": get("One service at a location, fully nested", "getServiceAtLocation",
                                          _reply("The service at its location.", _ref("service_at_location")),
                                          by_id=True),
        "/taxonomies": get("Taxonomies, paged", "getTaxonomies", _reply("A page of taxonomies.", _page("taxonomy")),
                           [refs["page"], refs["per_page"]]),
        "/taxonomies/{id}": get("One taxonomy with its terms", "getTaxonomy", _reply("The taxonomy.",
                                                                                       _ref("taxonomy")), by_id=True),
        "/taxonomy_terms": get("Taxonomy terms, paged", "getTaxonomyTerms",
                               _reply("A page of taxonomy terms.", _page("taxonomy_term")),
                               [refs["page"], refs["per_page"], refs["taxonomy_id"]]),
        "/taxonomy_terms/{id}": get("One taxonomy term", "getTaxonomyTerm", _reply("The term.",
                                                                                   _ref("taxonomy_term")), by_id=True),
    }
    paths["/service_at_locations"]["get"]["responses"]["404"] = _reply("The postcode is not in the gazetteer.", error)
    return {"openapi": "3.0.3",
            "info": {"title": "asset-map Open Referral UK API", "version": "3.0",
                     "description": "Community associations and organisations as HSDS-UK 3.0 services. Human "
                                    "Services Data Specification: an Open Referral resource (https://openreferral.org/).",
                     "license": {"name": "Open Government Licence v3.0",
                                 "url": "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/"}},
            "servers": [{"url": base}], "paths": paths,
            "components": {"schemas": schemas(), "parameters": params}}
