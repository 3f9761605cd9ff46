"""The web app: ``create_app`` is the only thing here; blueprints live in their own modules."""

import secrets
from pathlib import Path

from flask import Flask

from asset_map.config import PROJECT_DIR, load_settings


def _secret_key(settings):
    if settings["SECRET_KEY"]:
        return settings["SECRET_KEY"]
    path = Path(settings["VAR_DIR"]) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(test_config=None):
    """Defaults in code, then the instance config file, then the environment (which wins, as in Flask's own
    pattern); or the test config when given."""
    app = Flask(__name__, template_folder=str(PROJECT_DIR / "templates"), instance_relative_config=True)
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        instance = {k[len("ASSET_MAP_"):]: v for k, v in app.config.items() if k.startswith("ASSET_MAP_")}
        settings = load_settings(instance=instance)
    else:
        settings = load_settings(dict(test_config))
    app.config["ASSET_MAP"] = settings
    app.config["SECRET_KEY"] = _secret_key(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings["MAX_UPLOAD_MB"] * 1024 * 1024
    app.config["TESTING"] = bool(settings.get("TESTING"))

    from asset_map.web import (admin, asset_pages, auth, briefings, changes, community, errors, explorer, exports,
                               extensions, filters, freshness, gaps, gate, health, layout, limits, maps, moderation,
                               ogc, oruk, pages, reach, registers, security, serving, tables, tiles)

    gate.init_app(app)  # first: every request's own work counts against the map's threads
    extensions.init_app(app)
    errors.init_app(app)
    serving.init_app(app)
    security.init_app(app)
    auth.init_app(app)
    layout.init_app(app)
    app.jinja_env.globals["filter_form"] = filters.form_html
    app.register_blueprint(admin.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(maps.bp)
    app.register_blueprint(registers.bp)
    app.register_blueprint(explorer.bp)
    app.register_blueprint(tables.bp)
    app.register_blueprint(asset_pages.bp)
    app.register_blueprint(exports.bp)
    app.register_blueprint(ogc.bp)
    app.register_blueprint(oruk.bp)
    app.register_blueprint(gaps.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(tiles.bp)
    app.register_blueprint(reach.bp)
    app.register_blueprint(briefings.bp)
    app.register_blueprint(community.bp)
    app.register_blueprint(moderation.bp)
    app.register_blueprint(freshness.bp)
    app.register_blueprint(changes.bp)
    limits.init_app(app)
    return app
