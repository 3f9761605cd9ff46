"""Every route of the app, as every role, over one synthetic county with XSS payloads in its registers.

Routes come from ``app.url_map``, so pages added later are covered without editing this file: the authorization
matrix, the privacy walk (no individual's name, contact or coordinates below officer), XSS payloads and
SQL-injection strings in every filter parameter.
"""

import html
import itertools
import re
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from werkzeug.routing import AnyConverter, IntegerConverter

from asset_map import users
from asset_map.store import assets
from asset_map.store.assets import FILTER_PARAMS, AssetFilter
from tests import factories
from tests.accounts import PASSWORD, bearer, email_for, sign_in
from tests.conftest import make_app

ROLES = ("public", "organiser", "officer", "admin")
OK = {200, 302, 400, 404, 405}
# Expected status of pages whose answer we know exactly, per role (public, organiser, officer, admin).
EXPECTED = {
    "/": (200, 200, 200, 200),
    "/healthz": (200, 200, 200, 200),
    "/sign-in": (200, 200, 200, 200),
    "/sign-out": (405, 405, 405, 405),
    "/admin/": (302, 403, 403, 302),
    "/admin/audit": (302, 403, 403, 200),
    "/admin/audit.csv": (302, 403, 403, 200),
    "/admin/users": (302, 403, 403, 200),
    "/admin/users/1/role": (405, 405, 405, 405),
    "/admin/users/1/remove": (405, 405, 405, 405),
    # Drawing a neighbourhood is for officers (auth.PATH_ROLES).
    "/geographies/draw": (302, 403, 200, 200),
    # The outbox holds other people's e-mails: officers only (the rest of /moderation: organisers and above).
    "/moderation/outbox": (302, 403, 200, 200),
    "/moderation/outbox/x": (302, 403, 404, 404),
    # People's offers of help are moderated by those who may see individuals (privacy.may_moderate_offers).
    "/moderation/offers": (302, 403, 200, 200),
}

XSS = ["<script>alert('xss-name')</script>", "\"><img src=x onerror=alert('xss-attr')>",
       "</script><script>alert('xss-break')</script>", "<svg onload=alert('xss-svg')>",
       "javascript:alert('xss-url')", "=HYPERLINK(\"http://evil.example\",\"xss-csv\")"]
# What must never appear in an HTML page: the payloads' markup unescaped.
XSS_MARKERS = ["<script>alert(", "<img src=x onerror", "<svg onload", "href=\"javascript:alert"]
SQLI = ["' OR '1'='1", "1; DROP TABLE assets; --", "E07000199') OR 1=1 --", "x' UNION SELECT email FROM users --",
        "\\'; DELETE FROM users; --", "1,2,3,4); DROP TABLE users; --"]


def _default(path, role):
    """The rule for pages not in EXPECTED: /admin for admins, imports (/registers) for officers, else open."""
    rank = users.role_rank(role)
    if path.startswith("/admin"):
        return OK if role == "admin" else ({302, 401} if role == "public" else {403})
    if path.startswith("/registers"):
        return OK if rank >= users.role_rank("officer") else ({302, 401} if role == "public" else {403})
    return OK


@pytest.fixture(scope="module")
def walk(pg_server, template_db, tmp_path_factory):
    """A synthetic county plus an XSS register, a user of each role, signed-in clients."""
    from asset_map.config import load_settings
    from asset_map.store.db import dispose_engines, make_engine

    name = f"am_walk_{uuid.uuid4().hex[:8]}"
    url = pg_server.create(name, template=template_db)
    tmp = tmp_path_factory.mktemp("walk")
    engine = make_engine(url, load_settings())
    county = factories.load_synthetic(engine, tmp, areas=40, assets_n=240, seed=3)
    _add_xss_register(engine, county)
    for role in ROLES[1:]:
        users.add_user(engine, email_for(role), PASSWORD, role, actor="test")
    app = make_app(url, tmp)
    clients = {"public": app.test_client()}
    for role in ROLES[1:]:
        clients[role] = app.test_client()
        assert sign_in(clients[role], email_for(role)).status_code == 302
    yield {"app": app, "engine": engine, "clients": clients, "county": county}
    engine.dispose()
    dispose_engines()
    pg_server.drop(name)


def _add_xss_register(engine, county):
    frame = factories.placed_assets(county)
    picked = []
    for tier in ("association", "organisation", "individual"):
        rows = frame[(frame["tier"] == tier) & (frame["consent"] == True)].head(len(XSS)).copy()  # noqa: E712
        picked.append(rows)
    import pandas as pd

    rows = pd.concat(picked, ignore_index=True)
    register = "xss <script>alert('xss-register')</script>"
    for i in range(len(rows)):
        payload = XSS[i % len(XSS)]
        for col in ("name", "description", "address", "email", "phone", "source_key"):
            rows.loc[i, col] = f"{payload} {col} {i}"
        rows.loc[i, "url"] = XSS[4] if i % 2 else f"https://example.org/{payload}"
        rows.loc[i, "category"] = XSS[i % 4][:60]
        rows.loc[i, "offers"] = f"{payload};time"
    rows["register"] = register
    rows["match_key"] = [f"xss-{i}" for i in range(len(rows))]
    rows["visibility"] = "public"
    with engine.begin() as conn:
        assets.ensure_register(conn, register)
        assets.upsert(conn, rows)


def _samples(walk):
    with walk["engine"].connect() as conn:
        ids = conn.execute(text("SELECT id FROM assets WHERE tier = 'individual' ORDER BY id LIMIT 2")).scalars().all()
        restricted = conn.execute(text("SELECT id FROM assets WHERE visibility <> 'public' AND tier <> 'individual' "
                                       "ORDER BY id LIMIT 1")).scalars().all()
        district = conn.execute(text("SELECT code FROM districts ORDER BY code LIMIT 1")).scalar()
    layer_ids = [layer.id for layer in walk["app"].extensions["asset_map.layers"]]
    strings = ["synth-individuals", "assets", "individuals", *layer_ids, district, "x"]
    return {"int": [*ids, *restricted, 1], "str": list(dict.fromkeys(strings))}


def _urls(app, samples, method="GET"):
    """Every route answering ``method`` with its arguments filled from samples (a few combinations each)."""
    out = []
    for rule in app.url_map.iter_rules():
        if method not in rule.methods or rule.endpoint == "static":
            continue
        choices = []
        for arg in sorted(rule.arguments):
            converter = rule._converters[arg]
            if isinstance(converter, AnyConverter):
                values = sorted(converter.items)
            else:
                values = samples["int" if isinstance(converter, IntegerConverter) else "str"]
            choices.append([(arg, v) for v in values])
        for combo in itertools.islice(itertools.product(*choices), 40):
            out.append(rule.build(dict(combo), append_unknown=False)[1])
    return sorted(set(out))


def test_authorization_matrix(walk):
    app, clients = walk["app"], walk["clients"]
    samples = {"int": [1], "str": ["x"]}
    failures = []
    for path in _urls(app, samples):
        for i, role in enumerate(ROLES):
            status = clients[role].get(path).status_code
            allowed = {EXPECTED[path][i]} if path in EXPECTED else _default(path, role)
            if status not in allowed:
                failures.append(f"{role:9} GET {path}: {status}, expected {sorted(allowed)}")
    assert not failures, "\n".join(failures)
    assert set(EXPECTED) <= set(_urls(app, samples, "GET")) | set(_urls(app, samples, "POST"))


# -- privacy -----------------------------------------------------------------------------------------------------
def _secrets(engine):
    """What must not reach a role below officer: individuals' names, e-mails, phones and points, and restricted
    assets' names; organisations' and associations' e-mails and phones only from organiser up."""
    with engine.connect() as conn:
        people = conn.execute(text(
            "SELECT name, email, phone, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM assets "
            "WHERE tier = 'individual'")).mappings().all()
        restricted = conn.execute(text("SELECT name FROM assets WHERE visibility <> 'public' AND "
                                       "tier <> 'individual'")).scalars().all()
        contacts = conn.execute(text("SELECT email, phone FROM assets WHERE tier <> 'individual' "
                                     "AND visibility = 'public'")).all()
        public_points = conn.execute(text("SELECT DISTINCT round(ST_X(geom)::numeric, 4), "
                                          "round(ST_Y(geom)::numeric, 4) FROM assets WHERE tier <> 'individual' "
                                          "AND visibility = 'public'")).all()
    shared = {(float(x), float(y)) for x, y in public_points}
    texts = set()
    for p in people:
        texts.update(v for v in (p["name"], p["email"], p["phone"]) if v)
    texts.update(restricted)
    points = [(p["lon"], p["lat"]) for p in people
              if p["lon"] is not None and (round(p["lon"], 4), round(p["lat"], 4)) not in shared]
    contact = {v for row in contacts for v in row if v}
    return texts, points, contact


def _coordinate_pattern(lon, lat):
    """lon,lat (GeoJSON) or lat,lon (Leaflet) to at least 4 decimals, truncated or rounded."""
    def forms(v):
        return {re.escape(f"{v:.6f}"[:-2]), re.escape(f"{v:.4f}")}

    lons, lats = "|".join(forms(lon)), "|".join(forms(lat))
    return re.compile(rf"(?:{lons})\d*\s*,\s*(?:{lats})|(?:{lats})\d*\s*,\s*(?:{lons})")


def body_text(res, tmp_dir):
    """A response as text to search: GeoPackages are read back (names and points are inside the binary), anything
    else decoded leniently."""
    data = res.get_data()
    if data.startswith(b"SQLite format 3"):
        import pyogrio

        path = tmp_dir / f"walk-{uuid.uuid4().hex[:8]}.gpkg"
        path.write_bytes(data)
        parts = []
        for name, _ in pyogrio.list_layers(path):
            frame = pyogrio.read_dataframe(path, layer=name)
            parts.append(frame.to_json(default=str) if hasattr(frame, "geometry") else frame.to_json())
        return "\n".join(parts)
    return data.decode("utf-8", errors="replace")


def leaks(body, texts, points):
    found = [t for t in texts if t in body or html.escape(t) in body]
    found += [f"point {lon:.5f},{lat:.5f}" for lon, lat in points if _coordinate_pattern(lon, lat).search(body)]
    return found


def test_the_leak_detector_finds_what_officers_may_see(walk):
    texts, points, _ = _secrets(walk["engine"])
    officer_view = assets.select(walk["engine"], AssetFilter(tier=("individual",)), role="officer",
                                 columns=["name", "email", "phone"]).to_json()
    assert len(texts) > 20 and len(points) > 5
    assert len(leaks(officer_view, texts, points)) > 20


def test_privacy_walk_no_individual_reaches_a_role_below_officer(walk, tmp_path):
    texts, points, contacts = _secrets(walk["engine"])
    urls = _urls(walk["app"], _samples(walk))
    queries = ["", "?tier=individual", "?status=all&tier=individual,association,organisation"]
    checked = 0
    failures = []
    token = bearer(walk["engine"], "organiser", scope="export")
    for role in ("public", "organiser", "organiser-token"):
        client = walk["clients"].get(role, walk["clients"]["public"])
        headers = token if role == "organiser-token" else {}
        for path, query in itertools.product(urls, queries):
            res = client.get(path + query, headers=headers)
            body = body_text(res, tmp_path)
            found = leaks(body, texts, points)
            if role == "public":
                found += [c for c in contacts if c in body]
            if found:
                failures.append(f"{role} GET {path}{query} ({res.status_code}): {found[:5]}")
            checked += 1
    assert checked >= len(urls) * 9
    assert not failures, "\n".join(failures)


def test_below_officer_individuals_are_counts_with_small_numbers_suppressed(walk):
    engine = walk["engine"]
    rows = assets.individual_counts(engine, by="district_code", suppress_below=5)
    assert rows and all(n is None or n >= 5 for _, n, _ in rows)
    small = assets.individual_counts(engine, by="lsoa21_code", suppress_below=5)
    assert any(n is None for _, n, _ in small)
    assert all(label == "fewer than 5" for _, n, label in small if n is None)
    assert assets.count(engine, AssetFilter(tier=("individual",)), role="organiser") == 0
    assert assets.count(engine, AssetFilter(tier=("individual",)), role="officer") > 0
    public = assets.select(engine, AssetFilter(), role="public")
    assert "email" not in public.columns and "phone" not in public.columns
    organiser = assets.select(engine, AssetFilter(), role="organiser")
    assert organiser["email"].notna().any()


# -- XSS ---------------------------------------------------------------------------------------------------------
def test_xss_payloads_are_escaped_on_every_page(walk):
    urls = _urls(walk["app"], _samples(walk))
    failures = []
    for role in ("public", "officer"):
        for path in urls:
            for query in ("", "?status=all"):
                res = walk["clients"][role].get(path + query)
                body = res.get_data().decode("utf-8", errors="replace")
                kind = res.mimetype
                if kind == "text/html":
                    bad = [m for m in XSS_MARKERS if m in body]
                elif kind == "text/csv":
                    bad = [line for line in body.splitlines() if line.startswith("=") or ",=" in line]
                else:
                    bad = []
                if bad:
                    failures.append(f"{role} GET {path}{query} ({kind}): {bad[:3]}")
    assert not failures, "\n".join(failures)


# -- SQL injection -----------------------------------------------------------------------------------------------
def _snapshot(engine):
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).scalars()
        out = {}
        for table in tables:
            if table in ("audit_log", "spatial_ref_sys"):
                continue
            out[table] = conn.execute(text(f'SELECT md5(string_agg(t::text, \'|\' ORDER BY t::text)) '
                                           f'FROM "{table}" t')).scalar()
    return out


def test_sql_injection_in_every_filter_parameter(walk):
    engine = walk["engine"]
    before = _snapshot(engine)
    outcomes = {}
    for param, value in itertools.product(FILTER_PARAMS, SQLI):
        try:
            flt = AssetFilter.from_args({param: value})
        except Exception as err:  # noqa: BLE001 - the kind of error is what we check
            assert type(err).__name__ == "InputError", (param, value, err)
            outcomes[(param, value)] = 400
            continue
        for role in ROLES:
            assets.select(engine, flt, role=role)
            assets.count(engine, flt, role=role)
        outcomes[(param, value)] = 200
    # Only free text is accepted (and found nothing); everything with a shape rejects these strings.
    accepted = {p for (p, _), status in outcomes.items() if status == 200}
    assert accepted <= {"q", "category", "offer"}
    assert _snapshot(engine) == before


def test_sql_injection_over_http_is_never_a_500(walk):
    engine = walk["engine"]
    before = _snapshot(engine)
    failures = []
    urls = [u for u in _urls(walk["app"], {"int": [1], "str": ["x"]}) if "/x" not in u and "/1" not in u]
    client = walk["clients"]["officer"]
    for path in urls:
        for param, value in itertools.product(FILTER_PARAMS + ("need", "page", "action", "since"), SQLI[:3]):
            res = client.get(path, query_string={param: value})
            if res.status_code >= 500:
                failures.append(f"GET {path}?{param}={value!r}: {res.status_code}")
    assert not failures, "\n".join(failures)
    assert _snapshot(engine) == before
    res = client.get("/admin/audit", query_string={"action": SQLI[0]})
    assert res.status_code == 403  # officers may not; as admin it would be the 400 below
    res = walk["clients"]["admin"].get("/admin/audit", query_string={"since": SQLI[1]})
    assert res.status_code == 400 and "Parameter &#39;since&#39;" in res.get_data(as_text=True)


def test_the_walk_catches_a_page_that_leaks(walk, tmp_path):
    """The walk's checks can fail: a page that shows officers' view to everybody is caught."""
    from flask import Response

    app = make_app(str(walk["engine"].url.render_as_string(hide_password=False)), tmp_path)

    @app.get("/leaky")
    def leaky():
        frame = assets.select(walk["engine"], AssetFilter(), role="officer", columns=["name", "email", "phone"])
        return Response(frame.to_json(), mimetype="application/json")

    texts, points, _ = _secrets(walk["engine"])
    assert "/leaky" in _urls(app, {"int": [1], "str": ["x"]})
    body = app.test_client().get("/leaky").get_data(as_text=True)
    assert len(leaks(body, texts, points)) > 20


def test_names_that_cannot_be_bound_parameters_are_checked(walk):
    from asset_map.errors import InputError
    from asset_map.store import writes

    engine = walk["engine"]
    before = _snapshot(engine)
    for order in ("id; DROP TABLE assets", "name DESC; --", "(SELECT email FROM users)", "name, id --",
                  "name DESC NULLS LAST; SELECT 1"):
        with pytest.raises(InputError, match="Cannot sort by"):
            assets.select(engine, AssetFilter(), order=order)
    named = assets.select(engine, AssetFilter(), order="name desc nulls last, id", limit=3, columns=["name"])
    assert list(named["name"]) == sorted(named["name"], reverse=True) and len(named) == 3
    with pytest.raises(InputError, match="not a usable column"):
        with engine.begin() as conn:
            writes.upsert(conn, assets.select(engine, AssetFilter(), limit=1), "districts", keys=["code"],
                          columns=['name" = \'x\'; DROP TABLE users; --'])
    assert _snapshot(engine) == before
