"""Rate limits on what the public may send (suggestions, offers, corrections), per client address, with
Flask-Limiter. Storage is the app's memory (``RATE_LIMIT_STORAGE`` = ``memory://``): PostGIS is the only server we
run and the ``limits`` library has no PostgreSQL backend; with several server processes each keeps its own counts, so
the effective limit is the setting times the number of processes (``WORKERS``).
"""

from flask import current_app
from flask_limiter import Limiter

from asset_map.web.auth import client_ip

MESSAGE = ("You have sent a lot of suggestions from this address in a short time, so we have paused them. "
           "Nothing you sent before was lost. Please wait a few minutes and try again.")


def init_app(app):
    settings = app.config["ASSET_MAP"]
    # One limiter per app (its storage is its own), so each test app starts with clean counts.
    app.extensions["asset_map.limiter"] = Limiter(
        key_func=client_ip, app=app, storage_uri=settings["RATE_LIMIT_STORAGE"], headers_enabled=True,
        strategy="moving-window", key_prefix="asset-map")


def public_write():
    """A context manager around what the public writes (a suggestion, an offer, a correction): every form of
    them counts against one limit per address; beyond it, a 429 with a polite message and Retry-After.

        with limits.public_write():
            suggestions.submit(...)
    """
    limiter = current_app.extensions["asset_map.limiter"]
    return limiter.limit(current_app.config["ASSET_MAP"]["PUBLIC_WRITE_LIMIT"], error_message=MESSAGE,
                         scope="public-writes")
