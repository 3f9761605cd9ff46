"""What access control costs: the per-request price of identifying a request (session, bearer token) and of the
security headers, against the same route in a bare Flask app in the same run; and the price of one password check.

Figures (all per request, median of many, via Flask's test client so the network is not measured):
- anonymous request through the whole security layer vs. a bare app answering the same route;
- signed-in (session cookie: one user lookup) and bearer-token requests (one token lookup) vs. anonymous;
- one scrypt password check (deliberately slow: a stolen hash must be expensive to attack, a sign-in cheap).
"""

import statistics
import time

from flask import Flask, jsonify

from asset_map.tools.bench.core import Figure

_N = 300
_PASSWORD = "benchmark password 1"


def _median_ms(call, n=None):
    n = n or _N
    for _ in range(min(20, n)):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _bare_app():
    app = Flask("bare")

    @app.get("/ping")
    def ping():
        return jsonify(ok=True)

    return app


def run(ctx):
    from asset_map import users
    from asset_map.store.db import make_engine
    from asset_map.web import create_app

    app = create_app({"DATABASE_URL": ctx.database_url, "VAR_DIR": str(ctx.workdir), "SECRET_KEY": "bench",
                      "TILES": "none", "TESTING": 1})

    @app.get("/bench-ping")
    def ping():
        return jsonify(ok=True)

    engine = make_engine(ctx.database_url)
    email = "bench-officer@example.org"
    with engine.connect() as conn:
        if users.find_user(conn, email) is None:
            users.add_user(engine, email, _PASSWORD, "officer", actor="bench")
    token, _ = users.create_token(engine, email, scope="read", actor="bench")

    bare = _bare_app().test_client()
    anonymous = app.test_client()
    session = app.test_client()
    csrf = session.get("/sign-in").get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    session.post("/sign-in", data={"email": email, "password": _PASSWORD, "csrf_token": csrf})
    bearer = {"Authorization": f"Bearer {token}"}

    # Read at run time, so a test can make the run short.
    ref = _median_ms(lambda: bare.get("/ping"))
    anon = _median_ms(lambda: anonymous.get("/bench-ping"))
    signed = _median_ms(lambda: session.get("/bench-ping"))
    tok = _median_ms(lambda: anonymous.get("/bench-ping", headers=bearer))
    user = users.get_user(engine, users.list_users(engine)[0]["id"])
    from werkzeug.security import check_password_hash

    scrypt = _median_ms(lambda: check_password_hash(user.password_hash, _PASSWORD), n=max(3, _N // 20))
    engine.dispose()
    return [
        Figure("security", "anonymous request through the security layer (headers, CSP nonce)", anon, "ms",
               reference="bare Flask app, same route", reference_value=ref, target="< 1 ms over reference",
               met=anon - ref < 1.0),
        Figure("security", "signed-in request (session: one user lookup)", signed, "ms",
               reference="anonymous request, same app", reference_value=anon, target="< 5 ms over reference",
               met=signed - anon < 5.0),
        Figure("security", "bearer-token request (one token lookup)", tok, "ms",
               reference="anonymous request, same app", reference_value=anon, target="< 5 ms over reference",
               met=tok - anon < 5.0),
        Figure("security", "one scrypt password check (sign-in)", scrypt, "ms", reference=None,
               target="20-500 ms: costly to attack offline, quick to sign in", met=20 <= scrypt <= 500,
               notes="werkzeug scrypt defaults (n=2^15, r=8, p=1)"),
    ]
