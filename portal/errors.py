"""Error responses in one place: JSON for the API and webhooks, HTML pages elsewhere."""
import logging

from flask import Flask, current_app, jsonify, make_response, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from portal.extensions import db
from portal.log_context import loggable_path

JSON_PREFIXES = ("/api/", "/webhooks/", "/amocrm/status", "/amocrm/secrets", "/healthz", "/readyz", "/metrics")


def wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES)


def error_response(status: int, message: str, **extra):
    return jsonify(error_body(status, message, **extra)), status


def error_body(status: int, message: str, **extra) -> dict:
    """The one JSON error shape: {"success": false, "error": <short>, "message": <human>, ...}."""
    return {"success": False, "error": _short_name(status), "message": message, **extra}


def _short_name(status: int) -> str:
    return HTTP_STATUS_CODES.get(status, "Error").lower().replace(" ", "_")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(Exception, _unexpected_error)


def _render(status: int, title: str, message: str):
    if wants_json():
        return error_response(status, message)
    return render_template("errors/error.html", status=status, title=title, message=message), status


def _csrf_error(error: CSRFError):
    return _render(400, "Form expired", "The form was missing its security token or it expired. "
                   "Go back, reload the page and try again.")


def _http_error(error: HTTPException):
    response = make_response(*_render(error.code or 500, error.name, error.description or error.name))
    if error.code == 405 and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    retry_after = getattr(error, "retry_after", None) or (error.response.headers.get("Retry-After")
                                                          if error.response is not None else None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


UNEXPECTED_MESSAGE = "Something went wrong on our side. It has been logged; please try again in a moment."
UNAVAILABLE_MESSAGE = "Leadpath cannot reach its database right now. Please try again in a moment."
RETRY_AFTER_SECONDS = 5


def _database_error(error: DBAPIError):
    """The database is down or restarting (a connection error): 503 with Retry-After, so the snippet and API
    clients retry. Other database errors are bugs: 500 as usual."""
    if not (error.connection_invalidated or is_connection_error(error)):
        return _unexpected_error(error)
    try:
        db.session.rollback()
    except DBAPIError:
        pass
    logging.getLogger("portal.errors").warning("database unavailable on %s %s: %s", request.method, loggable_path(),
                                               error.orig.__class__.__name__ if error.orig else error)
    if wants_json():
        response, status = error_response(503, UNAVAILABLE_MESSAGE)
    else:
        # A page of its own, rendered without the context processors: they read the current user (the database).
        page = current_app.jinja_env.get_template("errors/unavailable.html").render(
            message=UNAVAILABLE_MESSAGE, stylesheet=url_for("static", filename="css/app.css"), retry=request.path)
        response, status = make_response(page), 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response, status


def is_connection_error(error: DBAPIError) -> bool:
    return isinstance(error, OperationalError | InterfaceError)


def _unexpected_error(error: Exception):
    if isinstance(error, HTTPException):
        return _http_error(error)
    db.session.rollback()
    logging.getLogger("portal.errors").exception("Unhandled error on %s %s", request.method, loggable_path())
    return _render(500, InternalServerError.name, UNEXPECTED_MESSAGE)
