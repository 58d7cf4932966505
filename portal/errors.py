"""Error responses in one place: JSON for the API and webhooks, HTML pages elsewhere."""
import logging

from flask import Flask, current_app, jsonify, make_response, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from portal.extensions import db
from portal.i18n import browser_language, requested_language
from portal.masking import mask_path

error_log = logging.getLogger("portal.errors")

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
    return _render(400, _("Form expired"), _("The form was missing its security token or it expired. "
                                             "Go back, reload the page and try again."))


# The error pages in the reader's language: a title and, where the code raised no message of its own (Werkzeug's
# English default), what the status means.
STATUS_PAGES = {
    400: (_l("Bad request"), _l("The request could not be understood. Check the address or the form and try again.")),
    401: (_l("Not logged in"), _l("Log in to see this page.")),
    403: (_l("Not allowed"), _l("Your role in this workspace does not allow this.")),
    404: (_l("Page not found"), _l("There is no such page, or it belongs to another workspace.")),
    405: (_l("Method not allowed"), _l("This address does not accept this kind of request.")),
    409: (_l("Conflict"), _l("This changed in the meantime. Reload the page and try again.")),
    413: (_l("Too large"), _l("What was sent is larger than Leadpath accepts.")),
    415: (_l("Unsupported format"), _l("What was sent is not in a format Leadpath accepts.")),
    429: (_l("Too many requests"), _l("Too many attempts in a short time. Wait a little and try again.")),
    500: (_l("Something went wrong"), _l("Something went wrong on our side. It has been logged; please try again in "
                                          "a moment.")),
    503: (_l("Temporarily unavailable"), _l("Leadpath is temporarily unavailable. Please try again in a moment.")),
}


def _page_text(error: HTTPException) -> tuple[str, str]:
    """Title and message of an HTTP error's page: a message given where the error was raised (already in the
    reader's language), else the status's own."""
    if wants_json():  # machines read English (and no user is loaded to learn a language)
        return error.name, error.description or error.name
    code = error.code or 500
    title, default = STATUS_PAGES.get(code, (error.name, error.description or error.name))
    given = error.description if error.description != type(error).description else None
    if code == 429:  # the limiter's description is its rule ("10 per 1 hour"), not a sentence for the reader
        given = None
    return str(title), given or str(default)


def _http_error(error: HTTPException):
    response = make_response(*_render(error.code or 500, *_page_text(error)))
    if error.code == 405 and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    retry_after = getattr(error, "retry_after", None) or (error.response.headers.get("Retry-After")
                                                          if error.response is not None else None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


UNEXPECTED_MESSAGE = "Something went wrong on our side. It has been logged; please try again in a moment."
UNAVAILABLE_MESSAGE = "Leadpath cannot reach its database right now. Please try again in a moment."
RETRY_AFTER_SECONDS = 5  # the Retry-After of every 503 while the database is unavailable


def database_unavailable(error: BaseException) -> bool:
    """The database is down or restarting (a connection refused, lost or reset), not a bug in a query: such an
    error is answered 503 with Retry-After (RETRY_AFTER_SECONDS), which the snippet, amoCRM and API clients retry,
    by the portal's handlers and by the ingest layer alike. Other database errors are bugs: 500."""
    return isinstance(error, DBAPIError) and (error.connection_invalidated
                                              or isinstance(error, OperationalError | InterfaceError))


def log_database_unavailable(method: str, path: str, error: DBAPIError) -> None:
    error_log.warning("database unavailable on %s %s: %s", method, mask_path(path),
                      error.orig.__class__.__name__ if error.orig else error.__class__.__name__)


def log_unexpected(method: str, path: str, error: BaseException) -> None:
    error_log.error("Unhandled error on %s %s", method, mask_path(path), exc_info=error)


def _database_error(error: DBAPIError):
    """503 with Retry-After while the database is unavailable (JSON on the API, a page of its own elsewhere)."""
    if not database_unavailable(error):
        return _unexpected_error(error)
    try:
        db.session.rollback()
    except DBAPIError:
        pass
    log_database_unavailable(request.method, request.path, error)
    if wants_json():
        response, status = error_response(503, UNAVAILABLE_MESSAGE)
    else:
        # A page of its own, rendered without the context processors: they read the current user (the database);
        # so is its language: from the request alone, never from the user's saved choice.
        language = requested_language() or browser_language()
        with force_locale(language):
            page = current_app.jinja_env.get_template("errors/unavailable.html").render(
                message=_("Leadpath cannot reach its database right now. Please try again in a moment."),
                stylesheet=url_for("static", filename="css/app.css"), retry=request.path, language=language)
        response, status = make_response(page), 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response, status


def _unexpected_error(error: Exception):
    if isinstance(error, HTTPException):
        return _http_error(error)
    db.session.rollback()
    log_unexpected(request.method, request.path, error)
    return _render(500, str(STATUS_PAGES[500][0]), UNEXPECTED_MESSAGE if wants_json() else str(STATUS_PAGES[500][1]))
