"""What the app holds between requests: the database engine and the layer definitions, made on first use so
the app starts (and answers 503) while the database is down."""

from flask import current_app, g

from asset_map.maps.spec import LAYERS_DIR, load_layers
from asset_map.store import change_stamps
from asset_map.store.db import get_engine
from asset_map.web import vendored


def init_app(app):
    settings = app.config["ASSET_MAP"]
    # Layer files are checked at start-up: a broken file stops the app with every problem listed.
    app.extensions["asset_map.layers"] = load_layers(settings.get("LAYERS_DIR") or LAYERS_DIR)



def folium_assets():
    """Point folium's asset lists (class attributes, so for the whole process) at our static files, once per app,
    before its first Folium map. Not at start-up: importing folium costs every worker memory it may never use."""
    app = current_app
    if not app.extensions.get("asset_map.folium_local"):
        vendored.use_local_assets(lambda rel: f"{app.static_url_path}/{rel}")
        app.extensions["asset_map.folium_local"] = True


def kept(name, make):
    """What the app keeps under ``name`` (an engine, a cache), made by ``make(settings)`` on first use."""
    app = current_app
    if name not in app.extensions:
        app.extensions[name] = make(app.config["ASSET_MAP"])
    return app.extensions[name]


def engine():
    return kept("asset_map.engine", get_engine)


def stamps():
    """The change stamps (store.change_stamps), read once per request for everything kept under them."""
    if "asset_map_stamps" not in g:
        with read_engine().connect() as conn:
            g.asset_map_stamps = change_stamps.stamps(conn)
    return g.asset_map_stamps


def layers():
    return current_app.extensions["asset_map.layers"]


def read_engine():
    """For reads at a high rate (tiles, the OGC API and ORUK feed, who is asking, the moderation pages, the asset
    table): store.db.get_engine's read engine, disposed with the others (tests copy databases that must have no
    sessions)."""
    return kept("asset_map.read_engine", lambda settings: get_engine(settings, reads=True))
