"""Test helpers for signed-in requests (not a test module): users of each role, sign-in through the real form
with its CSRF token, and API tokens.

    client = signed_in_client(app, engine, "officer")
    client.post("/registers/upload", data={"csrf_token": csrf_token(client), ...})
"""

import re

from asset_map import users

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def email_for(role):
    return f"{role}@example.org"


def make_user(engine, role, email=None, password=PASSWORD):
    return users.add_user(engine, email or email_for(role), password, role, actor="test")


def csrf_token(client, path="/sign-in"):
    """A CSRF token valid for this client's session (taken from the sign-in form)."""
    html = client.get(path).get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, f"no csrf_token field on {path}"
    return match.group(1)


def sign_in(client, email, password=PASSWORD, *, follow=False):
    return client.post("/sign-in", data={"email": email, "password": password, "csrf_token": csrf_token(client)},
                       follow_redirects=follow)


def signed_in_client(app, engine, role):
    """A test client of ``role`` ("public" is a client that is not signed in); creates the user when needed."""
    client = app.test_client()
    if role == "public":
        return client
    with engine.connect() as conn:
        if users.find_user(conn, email_for(role)) is None:
            make_user(engine, role)
    res = sign_in(client, email_for(role))
    assert res.status_code == 302, res.get_data(as_text=True)[:500]
    return client


def bearer(engine, role, scope="read", expires_days=None):
    """An Authorization header for a new token of a user of ``role``."""
    with engine.connect() as conn:
        if users.find_user(conn, email_for(role)) is None:
            make_user(engine, role)
    token, _ = users.create_token(engine, email_for(role), scope=scope, expires_days=expires_days, actor="test")
    return {"Authorization": f"Bearer {token}"}
