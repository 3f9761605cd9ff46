"""/oruk: the Open Referral UK 3.0 feed, validated against the published HSDS-UK schemas and OpenAPI document."""

import json

import pytest
from sqlalchemy import text

from asset_map.oruk import ids
from tests.accounts import bearer
from tests.conftest import make_app
from tests.export_data import STAFFORD, export_db, export_engine, oapp, oclient  # noqa: F401
from tests.standards import problems, response_validator, validator


def _all_pages(client, path, per_page=7, headers=None):
    out, page = [], 1
    while True:
        res = client.get(f"{path}{'&' if '?' in path else '?'}page={page}&per_page={per_page}", headers=headers)
        assert res.status_code == 200, res.get_data(as_text=True)
        doc = res.get_json()
        out.extend(doc["contents"])
        if doc["last_page"] or doc["empty"]:
            return out, doc
        page += 1


def test_every_endpoint_passes_the_published_schemas(oclient):
    root = oclient.get("/oruk/")
    assert root.status_code == 200 and root.headers["Access-Control-Allow-Origin"] == "*"
    assert not problems(response_validator("/"), root.get_json())
    assert root.get_json()["attribution"] and "Open Government Licence" in root.get_json()["licence"]
    for path, item_schema, detail, detail_schema in (
            ("/services", "compiled/service_list.json", "/services/{id}", "compiled/service.json"),
            ("/service_at_locations", "compiled/service_at_location_list.json", "/service_at_locations/{id}",
             "compiled/service_at_location.json"),
            ("/taxonomies", "taxonomy.json", "/taxonomies/{id}", "taxonomy.json"),
            ("/taxonomy_terms", "taxonomy_term.json", "/taxonomy_terms/{id}", "taxonomy_term.json")):
        res = oclient.get(f"/oruk{path}?per_page=5")
        doc = res.get_json()
        # The page as the ORUK OpenAPI document describes it (paging object and items), and each item again.
        assert not problems(response_validator(path), doc), path
        assert set(doc) >= {"total_items", "total_pages", "page_number", "size", "first_page", "last_page",
                            "empty", "contents"}
        assert doc["size"] == len(doc["contents"]) == min(5, doc["total_items"]) and doc["first_page"]
        item_check = validator(item_schema)
        for item in doc["contents"]:
            assert not problems(item_check, item), (path, item)
        one = oclient.get(f"/oruk{detail.replace('{id}', doc['contents'][0]['id'])}")
        assert one.status_code == 200, one.get_data(as_text=True)
        assert not problems(validator(detail_schema), one.get_json()), detail
        if detail != "/service_at_locations/{id}":  # the profile's document refers that one to service.json
            assert not problems(response_validator(detail), one.get_json()), detail


def test_a_schema_violation_is_caught():
    # The validators can fail: a service without a status, a page whose total is text.
    assert problems(validator("compiled/service.json"), {"id": ids.asset_uuid("service", 1), "name": "x"})
    assert problems(response_validator("/services"), {"total_items": "7", "contents": []})
    assert problems(validator("compiled/service_list.json"), {"id": "not-a-uuid", "name": "x", "status": "active"})


def test_services_are_the_offers_of_public_associations_and_organisations(oclient, export_engine):
    services, last = _all_pages(oclient, "/oruk/services")
    assert last["last_page"] and last["total_items"] == len(services)
    with export_engine.connect() as conn:
        public = conn.execute(text(
            "SELECT id, name, offers FROM assets WHERE tier <> 'individual' AND visibility = 'public' "
            "AND status IN ('open', 'temporarily closed')")).all()
    expected = {(ids.asset_uuid("service", r.id, n + 1), f"{r.name}: {o}") for r in public
                for n, o in enumerate(r.offers)}
    assert {(s["id"], s["name"]) for s in services} == expected
    text_ = json.dumps(services)
    assert "Volunteer" not in text_ and "Restricted Library" not in text_ and "Old Closed Library" not in text_
    assert "@example.org" not in text_  # e-mail is for organisers and above
    assert len({s["id"] for s in services}) == len(services)
    assert all(s["status"] == "active" for s in services)


def test_service_detail_location_taxonomy_and_district_name(oclient, export_engine):
    with export_engine.connect() as conn:
        asset = conn.execute(text("SELECT id, name, postcode, uprn FROM assets WHERE name = 'Baswich Library'")).one()
    doc = oclient.get(f"/oruk/services/{ids.asset_uuid('service', asset.id, 2)}").get_json()
    assert doc["name"] == "Baswich Library: buildings/space"
    assert doc["organization"]["name"] == "Baswich Library" and doc["organization_id"] == doc["organization"]["id"]
    loc = doc["service_at_locations"][0]["location"]
    assert 52.6 < loc["latitude"] < 53.0 and -2.5 < loc["longitude"] < -1.9
    assert loc["addresses"][0]["postal_code"] == asset.postcode and loc["addresses"][0]["country"] == "GB"
    district = [a["taxonomy_term"] for a in loc["attributes"] if a["taxonomy_term"]["term"] == STAFFORD]
    assert district and district[0]["name"] == "Stafford"
    terms = {a["taxonomy_term"]["term"] for a in doc["attributes"]}
    assert {"community_run_library", "buildings/space"} <= terms
    assert "description" in doc and "fees" not in doc  # empty optional fields are left out, filled ones kept


def test_filters_paging_and_errors(oclient):
    terms = {t["term"]: t["id"] for t in _all_pages(oclient, "/oruk/taxonomy_terms", per_page=100)[0]}
    libs = oclient.get(f"/oruk/services?taxonomy_term_id={terms['community_run_library']}&per_page=100").get_json()
    # Five open public ones in Stafford and one in Tamworth, two offers each.
    assert libs["total_items"] == 12 and all("Library" in s["name"] or "Tamworth asset 0" in s["name"]
                                             for s in libs["contents"])
    space = oclient.get(f"/oruk/services?taxonomy_term_id={terms['buildings/space']}&per_page=100").get_json()
    assert space["total_items"] and all(s["name"].endswith("buildings/space") for s in space["contents"])
    tamworth = oclient.get(f"/oruk/services?taxonomy_term_id={terms['E07000199']}").get_json()
    assert tamworth["total_items"] and all("Tamworth" in s["name"] for s in tamworth["contents"])
    assert oclient.get("/oruk/services?search=gnosall").get_json()["total_items"] == 2
    assert oclient.get("/oruk/services?taxonomy_term_id=nothing").get_json()["empty"] is True
    page2 = oclient.get("/oruk/services?page=2&per_page=3").get_json()
    assert page2["page_number"] == 2 and not page2["first_page"] and page2["size"] == 3
    assert page2["total_pages"] == -(-page2["total_items"] // 3)
    for bad in ("page=0", "per_page=100000", "page=x", "minimum_age=-4", "maximum_age=nan"):
        res = oclient.get(f"/oruk/services?{bad}")
        assert res.status_code == 400 and res.content_type == "application/json", bad
        assert res.get_json()["description"]
    assert oclient.get("/oruk/services/" + ids.asset_uuid("organization", 1)).status_code == 404
    assert oclient.get("/oruk/services/' OR 1=1 --").status_code == 404
    assert oclient.get("/oruk/taxonomies/none").status_code == 404


def test_near_a_postcode(oclient, export_engine):
    with export_engine.connect() as conn:
        pc = conn.execute(text("SELECT postcode FROM assets WHERE name = 'Stafford Library'")).scalar()
    near = oclient.get(f"/oruk/service_at_locations?postcode={pc}&proximity=50").get_json()
    assert {c["service"]["name"].split(":")[0] for c in near["contents"]} == {"Stafford Library"}
    assert oclient.get("/oruk/service_at_locations?proximity=50").status_code == 400
    assert oclient.get("/oruk/service_at_locations?postcode=ST99 9ZZ").status_code == 404
    assert oclient.get("/oruk/service_at_locations?postcode=nonsense").status_code == 400


def test_roles_see_what_the_store_lets_them(oapp, oclient, export_engine):
    """Privacy: the restricted asset and e-mails only for those allowed; individuals never, even for officers."""
    officer = bearer(export_engine, "officer")
    officer_text = json.dumps(_all_pages(oclient, "/oruk/services", per_page=100, headers=officer)[0])
    assert "Restricted Library" in officer_text and "@example.org" in officer_text
    assert "Volunteer" not in officer_text
    public_text = json.dumps(_all_pages(oclient, "/oruk/services", per_page=100)[0])
    assert "Restricted Library" not in public_text
    with export_engine.connect() as conn:
        restricted = conn.execute(text("SELECT id FROM assets WHERE name = 'Restricted Library'")).scalar()
        volunteer = conn.execute(text("SELECT id FROM assets WHERE tier = 'individual' LIMIT 1")).scalar()
    assert oclient.get(f"/oruk/services/{ids.asset_uuid('service', restricted, 1)}").status_code == 404
    assert oclient.get(f"/oruk/services/{ids.asset_uuid('service', restricted, 1)}",
                       headers=officer).status_code == 200
    assert oclient.get(f"/oruk/services/{ids.asset_uuid('service', volunteer, 1)}",
                       headers=officer).status_code == 404


def test_privacy_rule_is_what_hides_them(oapp, monkeypatch):
    """The test above can fail: with the store's rule switched off, the restricted asset reaches the public."""
    from asset_map.store import assets

    monkeypatch.setattr(assets, "visibility_condition", lambda role, alias="a": ("TRUE", {}))
    text_ = oapp.test_client().get("/oruk/services?per_page=1000").get_data(as_text=True)
    assert "Restricted Library" in text_


def test_cors_preflight(oclient):
    res = oclient.options("/oruk/services", headers={"Origin": "https://partner.example",
                                                      "Access-Control-Request-Method": "GET"})
    assert res.status_code == 200 and res.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in res.headers["Access-Control-Allow-Methods"]


def test_totals_follow_the_assets(oclient, export_engine):
    """The total of a page is kept between requests, and changes as soon as the assets do."""
    before = oclient.get("/oruk/services?page=2&per_page=2").get_json()["total_items"]
    assert oclient.get("/oruk/services?page=3&per_page=2").get_json()["total_items"] == before
    with export_engine.begin() as conn:
        offers = conn.execute(text("UPDATE assets SET status = 'closed' WHERE name = 'Stone Library' "
                                   "RETURNING cardinality(offers)")).scalar()
    assert oclient.get("/oruk/services?page=2&per_page=2").get_json()["total_items"] == before - offers


def test_answers_are_kept_until_the_data_changes(oapp, oclient, export_engine, monkeypatch):
    """A feed page asked again is sent from memory, without building it; a write to the assets makes it fresh."""
    from asset_map.oruk import publish

    built = []
    real = publish.services
    monkeypatch.setattr(publish, "services", lambda *a, **k: built.append(1) or real(*a, **k))
    first = oclient.get("/oruk/services?per_page=5").get_data()
    assert oclient.get("/oruk/services?per_page=5").get_data() == first and len(built) == 1
    with export_engine.begin() as conn:
        conn.execute(text("UPDATE assets SET name = 'Stafford Town Library' WHERE name = 'Stafford Library'"))
    fresh = json.dumps(_all_pages(oclient, "/oruk/services", per_page=100)[0])
    assert "Stafford Town Library" in fresh and len(built) > 1
    with export_engine.begin() as conn:
        conn.execute(text("UPDATE assets SET name = 'Stafford Library' WHERE name = 'Stafford Town Library'"))


def test_kept_answers_go_out_gzipped_to_those_who_accept_it_and_plain_to_the_rest(oclient):
    """A kept answer is compressed once: gzip to a client that accepts it (with Vary), plain JSON otherwise, the
    same document both ways."""
    import gzip

    path = "/oruk/services?per_page=7"
    plain = oclient.get(path)
    zipped = oclient.get(path, headers={"Accept-Encoding": "gzip"})
    again = oclient.get(path, headers={"Accept-Encoding": "gzip"})
    refused = oclient.get(path, headers={"Accept-Encoding": "identity, gzip;q=0"})
    assert plain.headers.get("Content-Encoding") is None and refused.headers.get("Content-Encoding") is None
    assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
    assert json.loads(gzip.decompress(zipped.get_data())) == plain.get_json() == refused.get_json()
    assert again.get_data() == zipped.get_data()


def test_kept_answers_are_per_role(oapp, monkeypatch, export_engine):
    """An officer's page (with e-mail addresses and the restricted asset) is never sent to the public from the
    cache; with the role left out of the key (the protection off) it would be."""
    from asset_map.web import oruk as oruk_routes

    officer = bearer(export_engine, "officer")

    def leak_check(app):
        client = app.test_client()
        assert "@example.org" in client.get("/oruk/services?per_page=1000", headers=officer).get_data(as_text=True)
        return client.get("/oruk/services?per_page=1000").get_data(as_text=True)

    public = leak_check(oapp)
    assert "@example.org" not in public and "Restricted Library" not in public
    real_key = oruk_routes.answer_key
    monkeypatch.setattr(oruk_routes, "answer_key", lambda: real_key()[:-1])
    leaked = leak_check(make_app(oapp.config["ASSET_MAP"]["DATABASE_URL"], oapp.config["ASSET_MAP"]["VAR_DIR"]))
    assert "@example.org" in leaked and "Restricted Library" in leaked
