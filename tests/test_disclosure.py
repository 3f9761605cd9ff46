"""Disclosure control (asset_map.disclosure) and the attack suite: the public and an organiser try to recover small
counts of individuals from every route, filter, geography and format, against a database seeded with individuals in
small groups. With the protection on nothing below the threshold is recovered; switched off, the same attacks
recover them (so the suite can fail)."""

import csv
import io
import itertools
import json
import re
import uuid
from collections import defaultdict

import pytest
from sqlalchemy import text

from asset_map import disclosure
from asset_map.config import load_settings
from asset_map.disclosure import Cell, Method, protect, total
from asset_map.registers import importer
from asset_map.store.db import dispose_engines, make_engine
from tests.accounts import signed_in_client
from tests.conftest import make_app
from tests.test_consent import SIX

STAFFORD = "E07000197"
# The seeded small groups live in Cannock Chase; Stafford holds the six (five in one LSOA, one in another).
CANNOCK = "E07000192"
DISTRICTS = (STAFFORD, CANNOCK)
THRESHOLD, BASE = 5, 5
OFFERS = ("skills", "time", "knowledge", "care", "networks")


# -- the rule ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,value,label", [
    (0, None, "fewer than 5"), (1, None, "fewer than 5"), (4, None, "fewer than 5"), (5, 5, "5"), (6, 5, "5"),
    (7, 5, "5"), (8, 10, "10"), (12, 10, "10"), (13, 15, "15"), (1234, 1235, "1,235"),
])
def test_small_counts_are_suppressed_and_the_rest_rounded(n, value, label):
    assert protect(n, Method()) == Cell(value, label)


def test_totals_are_built_from_the_protected_cells():
    how = Method()
    cells = [protect(n, how) for n in (6, 1, 0, 13)]
    assert total(cells, how) == Cell(20, "at least 20")  # 5 + 15: agrees with its parts exactly
    assert total([protect(3, how), protect(0, how)], how) == Cell(None, "fewer than 5 in each")
    assert total([protect(8, how)], how) == Cell(10, "10")


def test_sql_and_python_apply_the_same_rule(engine):
    how = Method(threshold=5, base=5)
    with engine.connect() as conn:
        for n in range(0, 40):
            value = conn.execute(text(f"SELECT {disclosure.sql_value(':n')}"),
                                 {"n": n, **disclosure.sql_params(how)}).scalar()
            label = conn.execute(text(f"SELECT {disclosure.sql_label(':n')}"),
                                 {"n": n, **disclosure.sql_params(how)}).scalar()
            assert (value, label.replace(",", "")) == (protect(n, how).value, protect(n, how).label.replace(",", "")), n


def test_only_the_fixed_tables_exist():
    from werkzeug.datastructures import MultiDict

    geo, districts, offer, ignored = disclosure.table_request(MultiDict(
        {"geography": "lsoa11", "district": STAFFORD, "offer": "skills", "category": "mentor", "status": "all",
         "verified_within": "3", "q": "Alice"}))
    assert (geo, districts, offer) == ("lsoa11", (STAFFORD,), "skills")
    assert set(ignored) == {"category", "status", "verified_within", "q"}
    assert disclosure.table_request(MultiDict({"offer": "skills,time"}))[2] is None  # two groups: no such table
    with pytest.raises(Exception, match="geography"):
        disclosure.table_request(MultiDict({"geography": "postcode"}))


# -- the seeded database ---------------------------------------------------------------------------------------------
def _people_csv(engine):
    """Individuals in small groups across Stafford's LSOAs (1, 2, 3, 4, 6 and 7 people), with varied offers,
    categories, statuses and verification dates, plus the six-person register of the issue."""
    with engine.connect() as conn:
        postcodes = conn.execute(text("SELECT postcode FROM postcodes WHERE district_code = :d ORDER BY postcode"),
                                 {"d": CANNOCK}).scalars().all()
    sizes = [1, 2, 3, 4, 6, 7, 1, 2, 3, 1]
    categories = ("volunteer", "skill_share", "mentor", "carer", "community_champion")
    rows, k = [], 0
    for group, (size, postcode) in enumerate(zip(sizes, postcodes[17::151])):
        for j in range(size):
            k += 1
            offers = ";".join(OFFERS[(group + j + i) % len(OFFERS)] for i in range(1 + j % 2))
            rows.append({"source_key": f"S-{k:03d}", "tier": "individual", "category": categories[(group + j) % 5],
                         "name": f"Seeded Person {k}", "offers": offers, "postcode": postcode,
                         "email": f"seeded{k}@example.org", "consent": "yes",
                         "status": "temporarily closed" if k % 7 == 0 else "open",
                         "last_verified": "2019-01-01" if k % 3 == 0 else "2026-10-01"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


@pytest.fixture(scope="module")
def seeded(pg_server, pack_db, tmp_path_factory):
    """The whole Staffordshire pack (IMD 2019 and 2025 for gap reports) with the seeded individuals."""
    dispose_engines()  # a template database may have no other connection
    name = f"am_attack_{uuid.uuid4().hex[:8]}"
    url = pg_server.create(name, template=pack_db.rsplit("/", 1)[1])
    engine = make_engine(url, load_settings())
    folder = tmp_path_factory.mktemp("attack")
    (folder / "seeded.csv").write_text(_people_csv(engine), encoding="utf-8")
    importer.import_register(engine, folder / "seeded.csv", register="seeded")
    importer.import_register(engine, SIX, register="six")
    yield url, engine, folder
    engine.dispose()
    dispose_engines()
    pg_server.drop(name)


def _truth(engine):
    """The true counts the attacker is after: {(geography, code, offer or None): n} for every area of Stafford, and
    the partitions an attacker knows (district into LSOAs; LSOA 2011 into LSOA 2021)."""
    truth = defaultdict(int)
    with engine.connect() as conn:
        people = conn.execute(text(
            "SELECT district_code, lsoa11_code, lsoa21_code, offers FROM assets WHERE tier = 'individual' "
            "AND consent AND erased_at IS NULL AND withdrawn_at IS NULL "
            "AND status IN ('open', 'temporarily closed')")).all()
        areas = {(v, d): set(conn.execute(text("SELECT code FROM areas WHERE vintage = :v AND district_code = :d"),
                                          {"v": v, "d": d}).scalars().all()) for v in (2011, 2021) for d in DISTRICTS}
    for d, l11, l21, offers in people:
        for offer in (None, *[o for o in offers if o in OFFERS]):
            truth[("district", d, offer)] += 1
            truth[("lsoa11", l11, offer)] += 1
            truth[("lsoa21", l21, offer)] += 1
    children = defaultdict(set)
    for _, l11, l21, _ in people:
        children[l11].add(l21)
    partitions = [("district", d, f"lsoa{v % 100}", areas[(v, d)]) for v in (2011, 2021) for d in DISTRICTS]
    partitions += [("lsoa11", l11, "lsoa21", kids) for l11, kids in children.items()]
    return truth, partitions, {(f"lsoa{v % 100}", d): codes for (v, d), codes in areas.items()}


# -- the attacker ----------------------------------------------------------------------------------------------------
FILTERS = ["", "category=mentor", "status=open", "verified_within=12", "q=Seeded", "offer=skills", "offer=care",
           "offer=skills,time", "category=volunteer&offer=time"]
BBOXES = ["-2.3,52.7,-2.0,52.9", "-2.2,52.75,-2.05,52.85", "-2.15,52.78,-2.1,52.82", "-2.1,52.65,-1.9,52.75"]


def _number(value):
    if value in (None, "", "None") or not re.fullmatch(r"[0-9,]+", str(value)):
        return None
    return int(str(value).replace(",", ""))


def _offer_of(query):
    offers = re.findall(r"offer=([a-z,]+)", query)
    return offers[0] if offers and "," not in offers[0] else None


def _observe(client):
    """Every public count of individuals the client can get: [(route, geography, code, offer, filter, value)] with
    value an int or None (suppressed), and the areas each table response listed."""
    seen, listed = [], []

    def record(route, geography, query, pairs, district=None):
        offer = _offer_of(query)
        codes = set()
        for code, value in pairs:
            seen.append((route, geography, code, offer, query, _number(value)))
            codes.add(code)
        listed.append((route, geography, district, query, codes))

    for geography, query, district in itertools.product(("lsoa21", "lsoa11", "district"), FILTERS, DISTRICTS):
        q = f"geography={geography}&district={district}&{query}"
        fc = client.get(f"/api/individuals.geojson?{q}").get_json()
        record("api", geography, query, [(f["properties"]["area_code"], f["properties"]["count"])
                                         for f in fc["features"]], district)
    for bbox, query in itertools.product(BBOXES, ("", "offer=skills", "category=carer")):
        fc = client.get(f"/api/individuals.geojson?bbox={bbox}&{query}").get_json()
        record("api-bbox", "lsoa21", query, [(f["properties"]["area_code"], f["properties"]["count"])
                                              for f in fc["features"]])
        res = client.get(f"/ogc/collections/individuals/items?f=json&limit=1000&bbox={bbox}&{query}")
        if res.status_code != 400:  # OGC API refuses parameters that are not queryables
            record("ogc-bbox", "lsoa21", query, [(f["id"], f["properties"]["individuals"])
                                                 for f in res.get_json()["features"]])
    for query, district in itertools.product(FILTERS, DISTRICTS):
        html = client.get(f"/districts/{district}?{query}").get_data(as_text=True)
        found = re.search(r"Individuals \(count only\)</th><td[^>]*>([^<]*)</td>", html)
        assert found, "the district page shows individuals' count"
        record("district-page", "district", query, [(district, found.group(1).strip())])
        res = client.get(f"/ogc/collections/individuals/items?f=json&limit=1000&district_code={district}&{query}")
        if res.status_code != 400:
            record("ogc", "lsoa21", query, [(f["id"], f["properties"]["individuals"])
                                            for f in res.get_json()["features"]], district)
        body = client.get(f"/export/individuals.csv?comments=0&district={district}&{query}").get_data(as_text=True)
        rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
        record("export-csv", "lsoa21", query, [(r["code"], r["individuals"]) for r in rows], district)
        fc = json.loads(client.get(f"/export/individuals.geojson?district={district}&{query}").get_data())
        record("export-geojson", "lsoa21", query, [(f["properties"]["code"], f["properties"]["individuals"])
                                                   for f in fc["features"]], district)
    for need, geography in (("imd:2019", "lsoa11"), ("imd:2025", "lsoa21")):
        for query, district in itertools.product(("", "offer=skills", "category=mentor"), DISTRICTS):
            if query and need == "imd:2019":
                continue  # each gap report takes a while: the filters are tried on one vintage
            args = f"district={district}&need={need}&{query}"
            res = client.get(f"/gaps/report.csv?{args}")
            assert res.status_code == 200, res.get_data(as_text=True)[:300]
            rows = list(csv.DictReader(io.StringIO(res.get_data(as_text=True).lstrip("\ufeff"))))
            if rows and "individuals" in rows[0]:
                record("gap-csv", geography, query, [(r["code"], r["individuals"]) for r in rows], district)
            if query:
                continue  # GeoJSON carries the same column as the CSV: once per vintage
            fc = json.loads(client.get(f"/gaps/report.geojson?{args}").get_data())
            pairs = [(f["properties"]["code"], f["properties"]["individuals"]) for f in fc["features"]
                     if "individuals" in f["properties"]]
            if pairs:
                record("gap-geojson", geography, query, pairs, district)
    return seen, listed


def _attack(seen, listed, truth, partitions, universes):
    """What the attacker recovers: small counts (1 to 4) read directly, found by differencing a total and its shown
    parts (district vs LSOAs, LSOA 2011 vs LSOA 2021), by differencing two filters of one area, or "none" told from
    "a few" by an area left out of a table that lists its neighbours."""
    recovered = set()
    values = defaultdict(set)
    for route, geography, code, offer, query, value in seen:
        values[(geography, code, offer)].add(value)
        if value is not None and 0 < value < THRESHOLD and value == truth.get((geography, code, offer), 0):
            recovered.add(("read", geography, code, offer))
    for pgeo, pcode, cgeo, kids in partitions:
        for offer in (None, *OFFERS):
            for parent in values.get((pgeo, pcode, offer), set()) - {None}:
                shown = {k: max(v for v in values.get((cgeo, k, offer), {None}) if v is not None)
                         for k in kids if any(v is not None for v in values.get((cgeo, k, offer), set()))}
                hidden = [k for k in kids if k not in shown]
                true_hidden = sum(truth.get((cgeo, k, offer), 0) for k in hidden)
                if hidden and 0 < true_hidden < THRESHOLD and parent - sum(shown.values()) == true_hidden:
                    recovered.add(("difference", pgeo, pcode, cgeo, offer))
    by_area = defaultdict(set)
    for route, geography, code, offer, query, value in seen:
        by_area[(route, geography, code)].add((query, value))
    for (route, geography, code), answers in by_area.items():
        numbers = {v for _, v in answers if v is not None}
        for a, b in itertools.combinations(sorted(numbers), 2):
            if 0 < b - a < THRESHOLD:
                recovered.add(("filters", route, geography, code, b - a))
    for route, geography, district, query, codes in listed:
        universe = universes.get((geography, district))
        if universe and codes and codes < universe:
            # Left out = nobody; listed as suppressed = somebody: "none" and "a few" told apart.
            few = [c for c in codes if truth.get((geography, c, _offer_of(query)), 0) > 0]
            if few and any(v is None for r, g, c, o, q, v in seen if (r, g, q) == (route, geography, query)
                           and c in few):
                recovered.add(("none-vs-few", route, geography, query))
    return recovered


@pytest.mark.parametrize("role", ["public", "organiser"])
def test_no_small_count_can_be_recovered_from_any_route(seeded, tmp_path, role):
    url, engine, _ = seeded
    app = make_app(url, tmp_path)
    client = signed_in_client(app, engine, role)
    truth, partitions, universes = _truth(engine)
    assert any(0 < n < THRESHOLD for n in truth.values()), "the seed has small groups to find"
    seen, listed = _observe(client)
    assert len(seen) > 2000
    numbers = [v for *_, v in seen if v is not None]
    assert numbers and all(v % BASE == 0 and v >= THRESHOLD for v in numbers)
    # One value per cell of the fixed tables, whatever the route, filter, format or role.
    cells = defaultdict(set)
    for route, geography, code, offer, query, value in seen:
        cells[(geography, code, offer)].add(value)
    assert all(len(v) == 1 for v in cells.values()), {k: v for k, v in cells.items() if len(v) > 1}
    # Every table lists every area of its scope (bbox views list the areas they cover).
    for route, geography, district, query, codes in listed:
        if district and geography != "district":
            assert codes == universes[(geography, district)], (route, geography, district, query)
    assert _attack(seen, listed, truth, partitions, universes) == set()


def test_the_same_attacks_succeed_without_the_protection(seeded, tmp_path):
    url, engine, _ = seeded
    app = make_app(url, tmp_path, DISCLOSURE_CONTROL=0)
    truth, partitions, universes = _truth(engine)
    seen, listed = _observe(app.test_client())
    recovered = _attack(seen, listed, truth, partitions, universes)
    kinds = {r[0] for r in recovered}
    assert {"difference", "filters", "none-vs-few"} <= kinds, kinds
    # The issue's own case: Stafford's district total minus the shown LSOA counts gives the hidden ones.
    assert ("difference", "district", STAFFORD, "lsoa21", None) in recovered


def test_grid_cells_and_tables_never_count_individuals_below_officer(seeded, tmp_path):
    url, engine, _ = seeded
    client = make_app(url, tmp_path).test_client()
    for zoom in (6, 9, 12, 15):
        doc = client.get(f"/api/assets.geojson?tier=individual&zoom={zoom}&bbox=-2.5,52.6,-1.8,53.0").get_json()
        assert doc["features"] == [], zoom
    body = client.get("/assets?tier=individual").get_data(as_text=True)
    assert "Seeded Person" not in body and "Alice" not in body
