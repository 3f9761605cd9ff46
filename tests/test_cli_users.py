"""`asset-map users ...` and `asset-map token ...` as an admin would type them."""

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from asset_map import users
from asset_map.cli import cli

PASSWORD = "a long enough password"


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSET_MAP_DATABASE_URL", db_url)
    monkeypatch.setenv("ASSET_MAP_VAR_DIR", str(tmp_path))
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def test_first_admin_from_a_prompt_with_confirmation(run, engine):
    res = run("users", "add", "Boss@Example.org", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert res.exit_code == 0, res.output
    assert "added boss@example.org as admin" in res.output
    with engine.connect() as conn:
        assert users.find_user(conn, "boss@example.org").role == "admin"
    res = run("users", "add", "two@example.org", "--role", "officer", input=f"{PASSWORD}\nsomething else\n")
    assert res.exit_code != 0 and "do not match" in res.output
    assert users.list_users(engine)[0]["email"] == "boss@example.org" and len(users.list_users(engine)) == 1


def test_users_lifecycle_from_stdin_and_audited(run, engine):
    assert run("users", "add", "boss@example.org", "--role", "admin", "--password-stdin",
               input=PASSWORD + "\n").exit_code == 0
    assert run("users", "add", "ann@example.org", "--role", "organiser", "--password-stdin",
               input=PASSWORD + "\n").exit_code == 0
    res = run("users", "list")
    assert "ann@example.org" in res.output and "organiser" in res.output and "never" in res.output
    assert "ann@example.org is now officer" in run("users", "set-role", "ann@example.org", "officer").output
    res = run("users", "set-role", "boss@example.org", "officer")
    assert res.exit_code == 1 and "last admin" in res.output
    assert "removed ann@example.org" in run("users", "remove", "ann@example.org").output
    res = run("users", "add", "x@example.org", "--role", "officer", "--password-stdin", input="short\n")
    assert res.exit_code == 1 and "at least 10 characters" in res.output
    with engine.connect() as conn:
        log = conn.execute(text("SELECT actor, action, target FROM audit_log ORDER BY id")).all()
    assert [a for _, a, _ in log] == ["user-add", "user-add", "role-change", "user-remove"]
    assert all(actor.startswith("cli") for actor, _, _ in log)


def test_tokens_are_printed_once_listed_by_prefix_and_revoked(run, engine):
    run("users", "add", "o@example.org", "--role", "officer", "--password-stdin", input=PASSWORD + "\n")
    res = run("token", "create", "o@example.org", "--scope", "export", "--expires-days", "7", "--label", "QGIS")
    assert res.exit_code == 0
    token = res.stdout.strip().splitlines()[-1]
    assert token.startswith("amt_")
    assert users.resolve_token(engine, token).scope == "export"
    listing = run("token", "list").output
    assert token[:12] in listing and token not in listing and "live" in listing and "QGIS" in listing
    res = run("token", "revoke", token[:12])
    assert res.exit_code == 0 and "revoked" in res.output
    assert "revoked" in run("token", "list", "o@example.org").output
    res = run("token", "revoke", "amt")
    assert res.exit_code == 1 and "neither a token id nor a token prefix" in res.output
