"""Who is asking, and may they: sessions (Flask-Login), bearer API tokens, CSRF (Flask-WTF), the sign-in pages and
the minimum role of each part of the site.

Every request is identified once, in a before_request hook, which sets ``g.asset_map_role`` and
``g.asset_map_actor``; every surface reads them through ``current_role()`` / ``current_actor()``. Without a session
or a token the role is the anonymous public, the safe default every surface is written against.
"""

import re
import time
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import OperationalError

from asset_map import users, vocabulary
from asset_map.errors import AssetMapError, DatabaseUnavailable, Forbidden, Unauthorized
from asset_map.web import extensions

ROLES = vocabulary.ROLES
# The least role each part of the site needs, by path prefix, checked before any view runs, so a page added
# under one of these prefixes is protected even if its view forgets to say so. Views can ask for more with
# ``@require_role``.
PATH_ROLES = (("/admin", "admin"), ("/registers", "officer"), ("/geographies/draw", "officer"),
              ("/moderation", "organiser"))
# Paths whose responses are exports (bulk reads): an API token needs the "export" scope for them, and they are
# audited (who, what, filters, rows), or counted per hour for the anonymous (asset_map.access).
EXPORT_PREFIXES = ("/export",)
EXPORT_PATHS = re.compile(r"^(/export/|/assets\.csv$|/gaps/report\.|/registers/[^/]+/[a-z_-]+\.csv$|"
                          r"/ogc/collections/individual-points/items|/admin/audit\.csv$|/districts/[^/]+/freshness\.csv$)")
# Paths answered as an API (401 rather than a redirect to the sign-in page).
API_PREFIXES = ("/api", "/ogc", "/oruk", "/export", "/healthz")
READ_METHODS = ("GET", "HEAD", "OPTIONS")
# Paths where a token of scope "write" may send POST, PUT, PATCH and DELETE (OGC API - Features Part 4).
WRITE_PREFIXES = ("/ogc/collections/",)

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()


def current_role():
    return getattr(g, "asset_map_role", "public")


def current_user_id():
    """The signed-in user's id (session or token), or None for the public."""
    token = getattr(g, "asset_map_token", None)
    if token is not None:
        return token.user.id
    if current_role() != "public" and current_user.is_authenticated:
        return current_user.user.id
    return None


def current_actor():
    """A name for the audit log: the user's e-mail (and token id), or "anonymous"."""
    return getattr(g, "asset_map_actor", "anonymous")


def audit(action, *, target=None, details=None, rows=None):
    """Log what the current request did (an export, an import) as the current actor, with the client address,
    in its own transaction. Surfaces call it once the work has succeeded: ``auth.audit("export", target="assets",
    details={"format": "gpkg", "filters": flt.as_args()}, rows=len(frame))``."""
    from asset_map import audit as log

    with extensions.engine().begin() as conn:
        log.record(conn, actor=current_actor(), action=action, target=target, details=_request_details(details),
                   rows=rows)


def _request_details(details):
    """``details`` with who asked from where: the client address and the token's id."""
    details = dict(details or {})
    details.setdefault("ip", _client_ip())
    token = getattr(g, "asset_map_token", None)
    if token is not None:
        details.setdefault("token_id", token.token_id)
    return details


def is_bulk_read(path):
    return bool(EXPORT_PATHS.match(path))


def record_read(target, *, details=None, rows=None):
    """Log a bulk read the current request made (asset_map.access): an export event for a signed-in user or a
    token, an hourly count for the anonymous. ``details``: what and with which filters; never the data itself."""
    from asset_map import access

    with extensions.engine().begin() as conn:
        access.record_read(conn, actor=current_actor(), target=target, details=_request_details(details), rows=rows)


def role_at_least(role):
    return vocabulary.role_rank(current_role()) >= vocabulary.role_rank(role)


class SessionUser(UserMixin):
    def __init__(self, user):
        self.user = user

    def get_id(self):
        # The stamp changes with the password, which ends sessions signed in with the old one.
        return f"{self.user.id}:{self.user.session_stamp}"


@login_manager.user_loader
def _load_user(value):
    user_id, _, stamp = str(value).partition(":")
    if not user_id.isdigit():
        return None
    try:
        user = users.get_user(extensions.read_engine(), int(user_id))
    except (OperationalError, DatabaseUnavailable):
        # With the database down, pages (the error page too) render as for the public rather than failing twice.
        return None
    if user is None or user.session_stamp != stamp:
        return None
    return SessionUser(user)


def _is_api():
    return request.path.startswith(API_PREFIXES) or request.accept_mimetypes.best == "application/json"


def _deny(role):
    """Not allowed: the anonymous are sent to sign in (or get 401 from the API); the signed-in get 403."""
    if current_role() == "public" and not getattr(g, "asset_map_token", None):
        if _is_api():
            raise Unauthorized(f"Sign in or send an API token (Authorization: Bearer ...) of a {role} or above.")
        return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
    raise Forbidden(f"This page is for {role}s and above; you are signed in as {current_role()}.")


def require_role(role):
    """Decorator for views that need at least ``role``."""
    users.check_role(role, ROLES)

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not role_at_least(role):
                return _deny(role)
            return view(*args, **kwargs)

        wrapped.asset_map_min_role = role
        return wrapped

    return decorate


def required_role(path):
    for prefix, role in PATH_ROLES:
        if path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + "."):
            return role
    return None


def _bearer():
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Only bearer tokens are accepted: send 'Authorization: Bearer TOKEN'.")
    return token.strip()


def _identify():
    g.asset_map_role, g.asset_map_actor = "public", "anonymous"
    if request.endpoint == "static":
        return None
    token = _bearer()
    if token:
        ident = users.resolve_token(extensions.read_engine(), token, write_engine=extensions.engine())
        g.asset_map_token = ident
        g.asset_map_role = ident.user.role
        g.asset_map_actor = f"{ident.user.email} (token {ident.token_id})"
        if request.method not in READ_METHODS and not _token_may_write(ident):
            raise Forbidden("This token only reads: edits through the OGC API need a token of scope 'write' "
                            "(`asset-map token create EMAIL --scope write`); other changes need a sign-in.")
        if request.path.startswith("/admin"):
            raise Forbidden("API tokens cannot be used for administration: sign in as an admin.")
        if is_bulk_read(request.path) and ident.scope != "export":
            raise Forbidden(f"This token's scope is '{ident.scope}', which does not allow exports; "
                            "create one with `asset-map token create EMAIL --scope export`.")
    elif current_user.is_authenticated:
        hours = current_app.config["ASSET_MAP"]["SESSION_HOURS"]
        if time.time() - session.get("signed_in_at", 0) > hours * 3600:
            logout_user()
            session.clear()
        else:
            g.asset_map_role = current_user.user.role
            g.asset_map_actor = current_user.user.email
    need = required_role(request.path)
    if need and not role_at_least(need):
        return _deny(need)
    if not token:
        # Bearer requests carry no cookies an attacker's page could ride on, and are read-only anyway.
        csrf.protect()
    return None


def _token_may_write(ident):
    """A 'write' token edits features through the OGC API (Part 4), and nothing else; what it may change is then
    the edit path's rule (privacy.may_edit)."""
    return ident.scope == "write" and request.path.startswith(WRITE_PREFIXES)


def _challenge(response):
    if response.status_code == 401:
        error = ' error="invalid_token"' if request.headers.get("Authorization") else ""
        response.headers["WWW-Authenticate"] = f'Bearer realm="asset-map"{error}'
    return response


def _safe_next(value):
    """Only a path on this site: never another host (an open redirect)."""
    if not value:
        return url_for("maps.index")
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return url_for("maps.index")
    return value


def client_ip():
    # Behind a proxy, configure werkzeug's ProxyFix so remote_addr is the client's address.
    return request.remote_addr or "unknown"


_client_ip = client_ip


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("auth/sign_in.html", next_url=next_url, email="", error=None)
    settings = current_app.config["ASSET_MAP"]
    email = request.form.get("email", "")
    try:
        user = users.authenticate(extensions.engine(), email, request.form.get("password", ""), ip=_client_ip(),
                                  max_failures=settings["LOGIN_MAX_FAILURES"],
                                  window_minutes=settings["LOGIN_WINDOW_MINUTES"])
    except AssetMapError as err:
        if err.status not in (401, 429):
            raise
        response = current_app.make_response((render_template(
            "auth/sign_in.html", next_url=next_url, email=email[:254], error=err.user_message), err.status))
        if err.status == 429:
            response.headers["Retry-After"] = str(err.retry_after)
        return response
    # A fresh session on sign-in, so nothing set before it (session fixation) survives.
    session.clear()
    session.permanent = True
    login_user(SessionUser(user))
    session["signed_in_at"] = time.time()
    if user.role == "councillor" and not request.values.get("next"):
        # A councillor comes for their areas: their briefings are their home page.
        next_url = url_for("briefings.mine")
    return redirect(next_url)


@bp.post("/sign-out")
def sign_out():
    if current_user.is_authenticated:
        from asset_map import audit

        with extensions.engine().begin() as conn:
            users.end_sessions(conn, current_user.user.id)
            audit.record(conn, actor=current_actor(), action="sign-out", target=current_actor(),
                         details={"ip": _client_ip()})
    logout_user()
    session.clear()
    return redirect(url_for("maps.index"))


def init_app(app):
    settings = app.config["ASSET_MAP"]
    app.config.update(
        SESSION_COOKIE_NAME="asset_map_session",
        SESSION_COOKIE_SECURE=bool(settings["COOKIE_SECURE"]),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings["SESSION_HOURS"]),
        # No "remember me" cookie: a sign-in ends with its session.
        REMEMBER_COOKIE_DURATION=timedelta(seconds=0),
        # We call csrf.protect() ourselves, after identifying the request, so bearer requests can skip it.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=settings["SESSION_HOURS"] * 3600,
    )
    login_manager.session_protection = "basic"
    login_manager.init_app(app)
    csrf.init_app(app)
    app.before_request(_identify)
    app.after_request(_challenge)
    app.register_blueprint(bp)
