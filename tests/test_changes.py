"""The public feed of accepted changes: new, changed and closed associations and organisations per district, as a
page, Atom and JSON; nothing about individuals; contact values never shown."""

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from sqlalchemy import text

from asset_map import changes, moderation, suggestions
from asset_map.registers import edits
from tests.community_data import community_app, community_engine, community_template, community_url  # noqa: F401

ATOM = "{http://www.w3.org/2005/Atom}"


def _since():
    return datetime.now(timezone.utc).isoformat()


def _make_changes(engine):
    new_id = moderation.accept(engine, suggestions.submit(engine, {"name": "Glascote Youth Club",
                                                                   "category": "youth_club", "postcode": "B77 2ED"}),
                               actor="organiser@example.org", role="organiser")
    with engine.connect() as conn:
        lib = conn.execute(text("SELECT id, version FROM assets WHERE name = 'Glascote Library'")).one()
        hall = conn.execute(text("SELECT id, version FROM assets WHERE district_code = 'E07000199' AND "
                                 "name <> 'Glascote Library' AND tier <> 'individual' ORDER BY id LIMIT 1")).one()
    edits.update_asset(engine, lib.id, {"phone": "01827 475645", "url": "https://glascote.example.org"},
                       version=lib.version, actor="officer@example.org", role="officer", reason="secret reason")
    edits.close_asset(engine, hall.id, version=hall.version, actor="officer@example.org", role="officer",
                      reason="the building closed")
    return new_id, lib.id, hall.id


def test_the_feed_lists_new_changed_and_closed_without_private_values(community_app, community_engine):
    since = _since()
    new_id, lib_id, hall_id = _make_changes(community_engine)
    # An individual offering help never appears.
    with community_engine.begin() as conn:
        conn.execute(text("UPDATE assets SET tier = 'individual', category = 'skill_share', consent = TRUE, "
                          "name = 'Priya Helper' WHERE id = :i"), {"i": new_id})
        conn.execute(text("INSERT INTO asset_versions (asset_id, version, register, action, changes) "
                          "SELECT id, version + 1, register, 'edit', '{\"name\": [\"a\", \"Priya Helper\"]}' "
                          "FROM assets WHERE id = :i"), {"i": new_id})
    items = changes.feed(community_engine, since=changes.parse_since(since), districts=("E07000199",))
    kinds = {(i["asset_id"], i["kind"]) for i in items}
    assert (lib_id, "changed") in kinds and (hall_id, "closed") in kinds
    assert all(i["asset_id"] != new_id for i in items)
    [changed] = [i for i in items if i["asset_id"] == lib_id]
    assert changed["fields"]["phone"] is None and changed["fields"]["url"][1] == "https://glascote.example.org"
    client = community_app.test_client()
    for path in (f"/changes?since={since}&district=E07000199", f"/changes.atom?since={since}",
                 f"/changes.json?since={since}"):
        body = client.get(path.replace("+", "%2B")).get_data(as_text=True)
        assert "Glascote Library" in body and "01827 475645" not in body and "Priya" not in body, path
        assert "secret reason" not in body and "officer@example.org" not in body, path


def test_a_new_asset_accepted_from_a_suggestion_is_new_in_atom_and_json(community_app, community_engine):
    since = _since().replace("+", "%2B")
    _make_changes(community_engine)
    client = community_app.test_client()
    atom = ET.fromstring(client.get(f"/changes.atom?since={since}&district=E07000199").get_data())
    entries = atom.findall(f"{ATOM}entry")
    titles = [e.find(f"{ATOM}title").text for e in entries]
    assert "New on the map: Glascote Youth Club." in titles
    assert {e.find(f"{ATOM}category").get("term") for e in entries} == {"new", "changed", "closed"}
    data = json.loads(client.get(f"/changes.json?since={since}").get_data())
    assert [c["kind"] for c in data["changes"]].count("new") == 1


def test_bad_parameters_are_clear(community_app):
    client = community_app.test_client()
    assert "ISO 8601" in client.get("/changes.json?since=yesterday").get_json()["description"]
    assert client.get("/changes.json?district=nowhere").status_code == 400
    assert client.get("/changes.json?since=2999-01-01").status_code == 400
