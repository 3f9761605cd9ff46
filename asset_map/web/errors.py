"""The one error handler: JSON for API paths, an HTML page otherwise. Users see only safe messages; the details
go to the log."""

import logging
from http import HTTPStatus

from flask import current_app, jsonify, make_response, render_template, request
from psycopg.errors import QueryCanceled
from sqlalchemy.exc import OperationalError, TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from asset_map.errors import AssetMapError, DatabaseUnavailable, QueryTimeout
from asset_map.store.db import failure_cause

log = logging.getLogger(__name__)
API_PREFIXES = ("/api", "/ogc", "/oruk", "/healthz", "/export", "/tiles", "/changes.json")


def _wants_json():
    return request.path.startswith(API_PREFIXES) or request.accept_mimetypes.best == "application/json"


def _respond(status, title, message):
    # A 503 tells clients and proxies when to try again rather than hammering a database that is away.
    headers = {"Retry-After": "5"} if status == 503 else {}
    if _wants_json():
        return jsonify({"code": status, "error": title, "description": message}), status, headers
    if status >= 500:
        # People reading a page are better served by "Service Unavailable" than by our exception's class name.
        title = HTTPStatus(status).phrase
    return render_template("errors/error.html", status=status, title=title, message=message), status, headers


def _database_error(err):
    """Database failures as the user should see them: a cancelled slow query is a 504, anything else a 503."""
    if isinstance(getattr(err, "orig", None), QueryCanceled):
        log.warning("query cancelled on %s: %s", request.path, err)
        return QueryTimeout("This request took too long and was stopped. Try a smaller area or fewer filters.")
    log.warning("database unavailable on %s: %s", request.path, failure_cause(err))
    return DatabaseUnavailable("The database is not available right now. Please try again in a moment.")


def handle(err):
    if isinstance(err, (OperationalError, PoolTimeout)):
        err = _database_error(err)
    if isinstance(err, AssetMapError):
        response = make_response(_respond(err.status, type(err).__name__, err.user_message))
        if getattr(err, "retry_after", None):
            response.headers["Retry-After"] = str(err.retry_after)
        return response
    if isinstance(err, RequestEntityTooLarge):
        limit = current_app.config["ASSET_MAP"]["MAX_UPLOAD_MB"]
        return _respond(413, "Upload too large", f"The upload is larger than the {limit} MB limit "
                        "(setting ASSET_MAP_MAX_UPLOAD_MB). Split the file or ask an admin to raise the limit.")
    if isinstance(err, HTTPException):
        return _respond(err.code, err.name, err.description)
    log.exception("unhandled error on %s", request.path)
    return _respond(500, "Internal Server Error", "Something went wrong on our side; it has been logged.")


def init_app(app):
    app.register_error_handler(Exception, handle)
