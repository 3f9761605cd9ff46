"""Users, passwords, tokens and the append-only audit log, in the core (no Flask)."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from asset_map import audit, users
from asset_map.errors import Forbidden, InputError, NotFound, TooManyRequests, Unauthorized
from tests.accounts import PASSWORD


def _log(engine, action=None):
    sql = "SELECT actor, action, target, details FROM audit_log"
    params = {}
    if action:
        sql += " WHERE action = :a"
        params["a"] = action
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql + " ORDER BY id"), params).mappings()]


def test_users_are_added_with_a_scrypt_hash_and_audited(engine):
    user = users.add_user(engine, " Officer@Example.ORG ", PASSWORD, "officer", actor="cli:root")
    assert user.email == "officer@example.org" and user.role == "officer"
    assert user.password_hash.startswith("scrypt:") and PASSWORD not in user.password_hash
    assert _log(engine, "user-add") == [{"actor": "cli:root", "action": "user-add", "target": "officer@example.org",
                                         "details": {"role": "officer"}}]
    with pytest.raises(InputError, match="already exists"):
        users.add_user(engine, "officer@example.org", PASSWORD, "admin", actor="cli:root")


@pytest.mark.parametrize("email,password,role,message", [
    ("not-an-email", PASSWORD, "officer", "is not an e-mail address"),
    ("a@example.org", "short", "officer", "at least 10 characters"),
    ("a@example.org", PASSWORD, "superuser", "is not one of organiser, councillor, officer, admin"),
    ("a@example.org", PASSWORD, "public", "is not one of organiser, councillor, officer, admin"),
])
def test_bad_users_are_refused_and_nothing_is_written(engine, email, password, role, message):
    with pytest.raises(InputError, match=message):
        users.add_user(engine, email, password, role, actor="t")
    assert users.list_users(engine) == [] and _log(engine) == []


def test_roles_change_and_the_last_admin_is_kept(engine):
    users.add_user(engine, "boss@example.org", PASSWORD, "admin", actor="t")
    users.add_user(engine, "ann@example.org", PASSWORD, "organiser", actor="t")
    assert users.set_role(engine, "ann@example.org", "officer", actor="boss@example.org").role == "officer"
    change = _log(engine, "role-change")[-1]
    assert change["target"] == "ann@example.org" and change["details"] == {"from": "organiser", "to": "officer"}
    with pytest.raises(Forbidden, match="last admin"):
        users.set_role(engine, "boss@example.org", "officer", actor="t")
    with pytest.raises(Forbidden, match="last admin"):
        users.remove_user(engine, "boss@example.org", actor="t")
    users.remove_user(engine, "ann@example.org", actor="boss@example.org")
    assert [u["email"] for u in users.list_users(engine)] == ["boss@example.org"]
    assert _log(engine, "user-remove")[-1]["target"] == "ann@example.org"
    with pytest.raises(NotFound):
        users.set_role(engine, "ann@example.org", "officer", actor="t")


def test_authenticate_audits_success_and_failure_and_limits_attempts(engine):
    users.add_user(engine, "o@example.org", PASSWORD, "officer", actor="t")
    assert users.authenticate(engine, "O@example.org", PASSWORD, ip="10.0.0.1").role == "officer"
    for _ in range(3):
        with pytest.raises(Unauthorized, match="not right"):
            users.authenticate(engine, "o@example.org", "wrong password!", ip="10.0.0.2", max_failures=3)
    # The 4th try from that address is refused before the password is even checked, right or wrong.
    with pytest.raises(TooManyRequests) as err:
        users.authenticate(engine, "o@example.org", PASSWORD, ip="10.0.0.2", max_failures=3, window_minutes=15)
    assert 0 < err.value.retry_after <= 15 * 60
    # Another address is not blocked by the first one's failures.
    assert users.authenticate(engine, "o@example.org", PASSWORD, ip="10.0.0.3", max_failures=3)
    failures = _log(engine, "sign-in-failed")
    # Issue 12: refused attempts are counted per hour and address rather than logged one by one.
    assert len(failures) == 3
    with engine.connect() as conn:
        refused = conn.execute(text("SELECT target, n FROM access_counts WHERE kind = 'sign-in-refused'")).all()
    assert [tuple(r) for r in refused] == [("10.0.0.2", 1)]
    assert all(PASSWORD not in str(f) for f in _log(engine))
    # An unknown e-mail fails the same way.
    with pytest.raises(Unauthorized, match="not right"):
        users.authenticate(engine, "nobody@example.org", PASSWORD, ip="10.0.0.4")


def test_tokens_resolve_until_revoked_or_expired(engine):
    users.add_user(engine, "o@example.org", PASSWORD, "officer", actor="t")
    token, row = users.create_token(engine, "o@example.org", scope="export", expires_days=30, label="QGIS",
                                    actor="t")
    assert token.startswith("amt_") and len(token) > 40 and row["prefix"] == token[:12]
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM api_tokens")).scalar_one()
    assert stored == users.token_hash(token) and token not in stored
    ident = users.resolve_token(engine, token)
    assert ident.user.email == "o@example.org" and ident.scope == "export"
    with pytest.raises(Unauthorized, match="not valid"):
        users.resolve_token(engine, token[:-1] + ("A" if token[-1] != "A" else "B"))
    users.revoke_token(engine, row["prefix"], actor="t")
    with pytest.raises(Unauthorized, match="revoked"):
        users.resolve_token(engine, token)
    old, old_row = users.create_token(engine, "o@example.org", actor="t")
    with engine.begin() as conn:
        conn.execute(text("UPDATE api_tokens SET expires_at = :x WHERE id = :i"),
                     {"x": datetime.now(timezone.utc) - timedelta(seconds=1), "i": old_row["id"]})
    with pytest.raises(Unauthorized, match="expired"):
        users.resolve_token(engine, old)
    assert [e["action"] for e in _log(engine) if e["action"].startswith("token")] == [
        "token-create", "token-revoke", "token-create"]
    with pytest.raises(InputError, match="Scope 'admin'"):
        users.create_token(engine, "o@example.org", scope="admin", actor="t")


def test_a_token_s_last_use_is_written_once_per_interval_not_per_request(engine):
    users.add_user(engine, "o@example.org", PASSWORD, "officer", actor="t")
    token, row = users.create_token(engine, "o@example.org", actor="t")
    writes = []

    def seen(conn, cursor, statement, *args):
        if statement.startswith("UPDATE"):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", seen)

    def last_used():
        with engine.connect() as conn:
            return conn.execute(text("SELECT last_used_at FROM api_tokens WHERE id = :i"), {"i": row["id"]}).scalar()

    assert last_used() is None
    for _ in range(5):
        users.resolve_token(engine, token)
    first = last_used()
    assert first is not None and len(writes) == 1
    with engine.begin() as conn:  # the interval has passed
        conn.execute(text("UPDATE api_tokens SET last_used_at = last_used_at - make_interval(mins => :m) "
                          "WHERE id = :i"), {"m": users.TOKEN_TOUCH_MINUTES + 1, "i": row["id"]})
    writes.clear()
    users.resolve_token(engine, token)
    event.remove(engine, "before_cursor_execute", seen)
    assert len(writes) == 1 and last_used() > first - timedelta(minutes=users.TOKEN_TOUCH_MINUTES + 1)


def test_a_new_password_changes_the_session_stamp(engine):
    before = users.add_user(engine, "o@example.org", PASSWORD, "officer", actor="t")
    after = users.set_password(engine, "o@example.org", "another long password", actor="t")
    assert before.session_stamp != after.session_stamp


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log",
                                       "TRUNCATE audit_log"])
def test_the_audit_log_is_append_only_in_the_database(engine, statement):
    with engine.begin() as conn:
        audit.record(conn, actor="o@example.org", action="export", target="assets", details={"tier": "x"}, rows=3)
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(text(statement))
    assert [e["actor"] for e in _log(engine)] == ["o@example.org"]


def test_audit_events_filter_and_csv_neutralises_formulas(engine):
    with engine.begin() as conn:
        audit.record(conn, actor="=HYPERLINK(\"http://x\")", action="sign-in-failed", target="=cmd|' /C calc'!A0")
        audit.record(conn, actor="o@example.org", action="export", target="assets", rows=12,
                     details={"filters": {"tier": ["association"]}})
    total, rows = audit.events(engine, {"action": "export"})
    assert total == 1 and rows[0]["rows"] == 12
    total, _ = audit.events(engine, {"actor": "O@EXAMPLE"})
    assert total == 1
    csv_text = "".join(audit.csv_lines(engine))
    assert "'=HYPERLINK" in csv_text and "'=cmd" in csv_text
    assert csv_text.splitlines()[0] == "id,at,actor,action,target,rows,details"
    with pytest.raises(InputError, match="Parameter 'action'"):
        audit.events(engine, {"action": "drop table"})
    with pytest.raises(InputError, match="Parameter 'since'"):
        audit.events(engine, {"since": "yesterday'; --"})


def test_the_sign_in_limit_holds_under_concurrent_attempts(engine):
    """Twenty wrong passwords at once from one address: only the allowed number are even checked."""
    from concurrent.futures import ThreadPoolExecutor

    users.add_user(engine, "c@example.org", PASSWORD, "officer", actor="t")

    def attempt(_):
        try:
            users.authenticate(engine, "c@example.org", "wrong password!", ip="10.9.9.9", max_failures=3)
        except TooManyRequests:
            return "limited"
        except Unauthorized:
            return "checked"
        return "in"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    assert outcomes.count("checked") == 3 and outcomes.count("limited") == 17


def test_ending_sessions_changes_the_session_stamp(engine):
    user = users.add_user(engine, "s@example.org", PASSWORD, "officer", actor="t")
    with engine.begin() as conn:
        users.end_sessions(conn, user.id)
    assert users.get_user(engine, user.id).session_stamp != user.session_stamp
