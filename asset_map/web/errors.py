"""The one error handler: JSON for API paths, an HTML page otherwise. Users see only safe messages; the details
go to the log."""

import logging

from flask import current_app, jsonify, make_response, render_template, request
from sqlalchemy.exc import OperationalError, TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from asset_map.errors import AssetMapError, DatabaseUnavailable

log = logging.getLogger(__name__)
API_PREFIXES = ("/api", "/ogc", "/healthz", "/export")


def _wants_json():
    return request.path.startswith(API_PREFIXES) or request.accept_mimetypes.best == "application/json"


def _respond(status, title, message):
    if _wants_json():
        return jsonify({"code": status, "error": title, "description": message}), status
    return render_template("errors/error.html", status=status, title=title, message=message), status


def handle(err):
    if isinstance(err, (OperationalError, PoolTimeout)):
        log.warning("database unavailable: %s", err)
        err = DatabaseUnavailable("The database is not available right now. Please try again in a moment.")
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
