"""Rate limits on what the public may send (suggestions, offers, corrections), per client address, with
Flask-Limiter. Counts live in the app's database (``RATE_LIMIT_STORAGE`` = ``asset-map-database://``,
asset_map.store.rate_limits), so every server process counts against one limit; ``memory://`` keeps them in each
process (then the effective limit is the setting times ``WORKERS``). The sliding window counter is the strategy:
two counters per address and limit, each hit one atomic upsert.
"""

from flask import current_app
from flask_limiter import Limiter

from asset_map.store import rate_limits
from asset_map.store.db import get_engine
from asset_map.web.auth import client_ip

MESSAGE = ("You have sent a lot of suggestions from this address in a short time, so we have paused them. "
           "Nothing you sent before was lost. Please wait a few minutes and try again.")


def init_app(app):
    settings = app.config["ASSET_MAP"]
    uri, options = settings["RATE_LIMIT_STORAGE"], {}
    if uri.startswith(rate_limits.SCHEME + ":"):
        # The engine is made on first use: building the app connects to nothing.
        options["engine"] = lambda: get_engine(settings)
    app.extensions["asset_map.limiter"] = Limiter(
        key_func=client_ip, app=app, storage_uri=uri, storage_options=options, headers_enabled=True,
        strategy="sliding-window-counter", key_prefix="asset-map")


def public_write():
    """A context manager around what the public writes (a suggestion, an offer, a correction): every form of
    them counts against one limit per address; beyond it, a 429 with a polite message and Retry-After.

        with limits.public_write():
            suggestions.submit(...)
    """
    limiter = current_app.extensions["asset_map.limiter"]
    return limiter.limit(current_app.config["ASSET_MAP"]["PUBLIC_WRITE_LIMIT"], error_message=MESSAGE,
                         scope="public-writes")
