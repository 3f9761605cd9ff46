"""Users, passwords and API tokens: the core the CLI and the web sign-in share. Nothing here imports Flask.

Passwords are stored as werkzeug scrypt hashes; tokens as SHA-256 hashes of a random secret that is shown once.
Every change of who may do what (users added or removed, roles, passwords, tokens) is written to the audit log in
the same transaction as the change itself.
"""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import text
from werkzeug.security import check_password_hash, generate_password_hash

from asset_map import audit
from asset_map.errors import Forbidden, InputError, NotFound, TooManyRequests, Unauthorized
from asset_map.vocabulary import ACCOUNT_ROLES, ROLES, role_rank  # noqa: F401 - users.ROLES and role_rank are read by callers

SCOPES = ("read", "export", "write")
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "amt_"
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
_DUMMY_HASH = []


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: str
    password_hash: str
    created_at: datetime | None = None
    last_sign_in_at: datetime | None = None
    session_version: int = 0

    @property
    def session_stamp(self):
        """Changes whenever the password or the session version does (a sign-out moves it), so a new password or a
        sign-out ends every session signed in before, server-side: a copied cookie is worthless after it."""
        return hashlib.sha256(f"{self.password_hash}:{self.session_version}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TokenIdentity:
    user: User
    token_id: int
    scope: str


def normalise_email(email):
    value = str(email or "").strip().lower()
    if not _EMAIL.match(value):
        msg = f"{str(email)[:100]!r} is not an e-mail address."
        raise InputError(msg)
    return value


def check_role(role, allowed=ACCOUNT_ROLES):
    if role not in allowed:
        msg = f"Role {role!r} is not one of {', '.join(allowed)}."
        raise InputError(msg)
    return role


def check_password(password):
    if password is None or len(password) < MIN_PASSWORD_LENGTH:
        msg = f"A password needs at least {MIN_PASSWORD_LENGTH} characters."
        raise InputError(msg)
    if password.strip() != password or not password.strip():
        msg = "A password may not start or end with spaces."
        raise InputError(msg)
    return password


def hash_password(password):
    return generate_password_hash(check_password(password), method="scrypt")


def _user(row):
    return User(id=row.id, email=row.email, role=row.role, password_hash=row.password_hash,
                created_at=row.created_at, last_sign_in_at=row.last_sign_in_at,
                session_version=row.session_version)


# How often a token's last-used time is written (it says whether a token is still in use, not how much).
TOKEN_TOUCH_MINUTES = 5
_USER_COLUMNS = "id, email, role, password_hash, created_at, last_sign_in_at, session_version"


def end_sessions(conn, user_id):
    """End every session of the user (sign-out): their cookies no longer match the stored session version."""
    conn.execute(text("UPDATE users SET session_version = session_version + 1 WHERE id = :i"), {"i": int(user_id)})


def get_user(engine, user_id):
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT {_USER_COLUMNS} FROM users WHERE id = :i"), {"i": int(user_id)}).first()
    return _user(row) if row else None


def find_user(conn, email):
    row = conn.execute(text(f"SELECT {_USER_COLUMNS} FROM users WHERE email = :e"),
                       {"e": normalise_email(email)}).first()
    return _user(row) if row else None


def _require_user(conn, email):
    user = find_user(conn, email)
    if user is None:
        msg = f"There is no user {normalise_email(email)}."
        raise NotFound(msg)
    return user


def list_users(engine):
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT u.id, u.email, u.role, u.created_at, u.last_sign_in_at, "
            "count(t.id) FILTER (WHERE t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())) "
            "AS live_tokens FROM users u LEFT JOIN api_tokens t ON t.user_id = u.id GROUP BY u.id "
            "ORDER BY u.email")).mappings().all()
    return [dict(r) for r in rows]


def add_user(engine, email, password, role, *, actor):
    email = normalise_email(email)
    check_role(role)
    hashed = hash_password(password)
    with engine.begin() as conn:
        if find_user(conn, email):
            msg = f"User {email} already exists; use `asset-map users set-role` to change the role."
            raise InputError(msg)
        user_id = conn.execute(text("INSERT INTO users (email, password_hash, role) VALUES (:e, :h, :r) "
                                    "RETURNING id"), {"e": email, "h": hashed, "r": role}).scalar_one()
        audit.record(conn, actor=actor, action="user-add", target=email, details={"role": role})
    return get_user(engine, user_id)


def _admins_left(conn, without_id):
    return conn.execute(text("SELECT count(*) FROM users WHERE role = 'admin' AND id <> :i"),
                        {"i": without_id}).scalar_one()


def remove_user(engine, email, *, actor):
    with engine.begin() as conn:
        user = _require_user(conn, email)
        if user.role == "admin" and not _admins_left(conn, user.id):
            msg = f"{user.email} is the last admin; add another admin before removing this one."
            raise Forbidden(msg)
        # api_tokens go with the user (ON DELETE CASCADE); the audit log keeps the e-mail, not a foreign key.
        conn.execute(text("DELETE FROM users WHERE id = :i"), {"i": user.id})
        audit.record(conn, actor=actor, action="user-remove", target=user.email, details={"role": user.role})
    return user


def set_role(engine, email, role, *, actor):
    check_role(role)
    with engine.begin() as conn:
        user = _require_user(conn, email)
        if user.role == role:
            return user
        if user.role == "admin" and not _admins_left(conn, user.id):
            msg = f"{user.email} is the last admin; make another user admin first."
            raise Forbidden(msg)
        conn.execute(text("UPDATE users SET role = :r WHERE id = :i"), {"r": role, "i": user.id})
        audit.record(conn, actor=actor, action="role-change", target=user.email,
                     details={"from": user.role, "to": role})
    return get_user(engine, user.id)


def set_password(engine, email, password, *, actor):
    hashed = hash_password(password)
    with engine.begin() as conn:
        user = _require_user(conn, email)
        conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :i"), {"h": hashed, "i": user.id})
        audit.record(conn, actor=actor, action="password-change", target=user.email)
    return get_user(engine, user.id)


# -- sign-in -----------------------------------------------------------------------------------------------------
def _dummy_hash():
    # Unknown e-mails still cost one scrypt check, so response times do not tell which accounts exist.
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(generate_password_hash(secrets.token_hex(16), method="scrypt"))
    return _DUMMY_HASH[0]


def _recent_failures(conn, email, ip, window_minutes):
    """Failures for this e-mail from this address since the window opened or the last success, whichever is later,
    and failures from the address for any e-mail (password spraying). Read from the audit log itself."""
    row = conn.execute(text(
        "SELECT count(*) FILTER (WHERE f.target = :e) AS pair, count(*) AS address, "
        "min(f.at) FILTER (WHERE f.target = :e) AS oldest FROM audit_log f "
        "WHERE f.action = 'sign-in-failed' AND f.details->>'ip' = :ip "
        "AND f.at > now() - make_interval(mins => :w) "
        "AND f.at > COALESCE((SELECT max(s.at) FROM audit_log s WHERE s.action = 'sign-in' AND s.target = f.target "
        "AND s.details->>'ip' = :ip), '-infinity')"),
        {"e": email, "ip": ip, "w": int(window_minutes)}).one()
    return row.pair, row.address, row.oldest


def authenticate(engine, email, password, *, ip, max_failures=5, window_minutes=15):
    """The user whose e-mail and password these are, or Unauthorized (same message whatever was wrong), or
    TooManyRequests after ``max_failures`` failures for this e-mail from this address within the window (ten times
    as many for any e-mail from one address). Success and failure are both audited."""
    raw = str(email or "").strip().lower()[:254]
    ip = str(ip or "unknown")[:64]
    limited, user, good = None, None, False
    with engine.begin() as conn:
        # Attempts from one address take turns: counting the failures and logging this one happen as one step,
        # so concurrent attempts cannot all pass the check before any is logged.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": "sign-in:" + ip})
        pair, address, oldest = _recent_failures(conn, raw, ip, window_minutes)
        if pair >= max_failures or address >= max_failures * 10:
            limited = window_minutes * 60
            if oldest is not None and pair >= max_failures:
                age = (datetime.now(timezone.utc) - oldest).total_seconds()
                limited = max(1, int(window_minutes * 60 - age))
            # Refused attempts are counted per hour and address, not logged one by one: a flood of them cannot
            # flood the audit log (the failures that led to the limit are logged).
            from asset_map import access

            access.count(conn, "sign-in-refused", ip)
        else:
            try:
                user = find_user(conn, raw)
            except InputError:
                user = None
            good = check_password_hash(user.password_hash if user else _dummy_hash(), password or "")
            if user and good:
                conn.execute(text("UPDATE users SET last_sign_in_at = now() WHERE id = :i"), {"i": user.id})
                audit.record(conn, actor=user.email, action="sign-in", target=user.email,
                             details={"ip": ip, "role": user.role})
            else:
                audit.record(conn, actor="anonymous", action="sign-in-failed", target=raw,
                             details={"ip": ip, "reason": "wrong e-mail or password"})
    # Raised only after the commit, so every failure counts towards the limit.
    if limited is not None:
        minutes = max(1, round(limited / 60))
        msg = f"Too many failed sign-ins. Try again in about {minutes} minute{'s' if minutes != 1 else ''}."
        raise TooManyRequests(msg, retry_after=limited)
    if not (user and good):
        raise Unauthorized("The e-mail address or password is not right.")
    return user


# -- API tokens --------------------------------------------------------------------------------------------------
def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine, email, *, scope="read", expires_days=None, label=None, actor):
    """A new token for the user: returns (token, row). The token itself is not stored and cannot be shown again."""
    if scope not in SCOPES:
        msg = f"Scope {scope!r} is not one of {', '.join(SCOPES)}."
        raise InputError(msg)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    prefix = token[:12]
    expires = None
    if expires_days:
        if int(expires_days) < 0:
            msg = f"--expires-days must be positive, got {expires_days}."
            raise InputError(msg)
        expires = datetime.now(timezone.utc) + timedelta(days=int(expires_days))
    with engine.begin() as conn:
        user = _require_user(conn, email)
        row = conn.execute(text(
            "INSERT INTO api_tokens (user_id, token_hash, scope, expires_at, prefix, label) "
            "VALUES (:u, :h, :s, :x, :p, :l) RETURNING id, prefix, scope, created_at, expires_at"),
            {"u": user.id, "h": token_hash(token), "s": scope, "x": expires, "p": prefix,
             "l": label}).mappings().one()
        audit.record(conn, actor=actor, action="token-create", target=user.email,
                     details={"token_id": row["id"], "prefix": prefix, "scope": scope,
                              "expires_at": expires.isoformat() if expires else None})
    return token, dict(row, email=user.email)


def list_tokens(engine, email=None):
    sql = ("SELECT t.id, t.prefix, u.email, t.scope, t.label, t.created_at, t.expires_at, t.revoked_at, "
           "t.last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id")
    params = {}
    if email:
        sql += " WHERE u.email = :e"
        params["e"] = normalise_email(email)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql + " ORDER BY t.id"), params).mappings()]


def revoke_token(engine, ident, *, actor):
    """Revoke by id, by the prefix shown in listings, or by the whole token."""
    ident = str(ident or "").strip()
    if ident.isdigit():
        where, params = "t.id = :v", {"v": int(ident)}
    elif ident.startswith(TOKEN_PREFIX) and len(ident) > 20:
        where, params = "t.token_hash = :v", {"v": token_hash(ident)}
    elif len(ident) >= 8:
        where, params = "t.prefix LIKE :v", {"v": ident.replace("\\", "").replace("%", "").replace("_", "\\_") + "%"}
    else:
        msg = f"{ident!r} is neither a token id nor a token prefix (at least 8 characters)."
        raise InputError(msg)
    with engine.begin() as conn:
        rows = conn.execute(text(f"SELECT t.id, t.prefix, t.revoked_at, u.email FROM api_tokens t "
                                 f"JOIN users u ON u.id = t.user_id WHERE {where}"), params).mappings().all()
        if not rows:
            msg = f"No token matches {ident!r}."
            raise NotFound(msg)
        if len(rows) > 1:
            msg = f"{len(rows)} tokens match {ident!r}; give the token id (see `asset-map token list`)."
            raise InputError(msg)
        row = rows[0]
        if row["revoked_at"] is None:
            conn.execute(text("UPDATE api_tokens SET revoked_at = now() WHERE id = :i"), {"i": row["id"]})
            audit.record(conn, actor=actor, action="token-revoke", target=row["email"],
                         details={"token_id": row["id"], "prefix": row["prefix"]})
    return dict(row)


def resolve_token(engine, token, *, write_engine=None):
    """Who a bearer token speaks for, or Unauthorized when it is unknown, revoked or expired. ``engine`` may be an
    autocommit one (the lookup is one statement); the last-used time is written through ``write_engine`` (default:
    ``engine``) only when it is due, so a busy script costs one read per request."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthorized("The API token is not valid.")
    with engine.connect() as conn:
        row = conn.execute(text(
            f"SELECT t.id AS token_id, t.scope, t.expires_at, t.revoked_at, "
            f"t.last_used_at IS NULL OR t.last_used_at < now() - interval '{TOKEN_TOUCH_MINUTES} minutes' AS due, "
            f"{', '.join('u.' + c for c in _USER_COLUMNS.split(', '))} "
            "FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = :h"),
            {"h": token_hash(token)}).first()
    if row is None:
        raise Unauthorized("The API token is not valid.")
    if row.revoked_at is not None:
        raise Unauthorized("The API token has been revoked.")
    if row.expires_at is not None and row.expires_at <= datetime.now(timezone.utc):
        raise Unauthorized("The API token has expired; ask for a new one.")
    if row.due:
        # At most one write per token every few minutes, however busy a script is (the condition is asked again
        # in the UPDATE, so workers racing here write once).
        with (write_engine or engine).begin() as conn:
            conn.execute(text(f"UPDATE api_tokens SET last_used_at = now() WHERE id = :i AND (last_used_at IS NULL "
                              f"OR last_used_at < now() - interval '{TOKEN_TOUCH_MINUTES} minutes')"),
                         {"i": row.token_id})
    return TokenIdentity(user=_user(row), token_id=row.token_id, scope=row.scope)
