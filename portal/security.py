"""Security headers on every response, the guard against input nothing can store, the session cookie's signer,
and the safe `next` redirect check."""
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def register_security(app: Flask) -> None:
    app.before_request(_refuse_unstorable_input)
    app.after_request(_set_headers)


def _refuse_unstorable_input() -> None:
    """400 for a NUL character in the query string or a submitted form, and for raw non-ASCII bytes in the query
    string: no page of ours sends them, PostgreSQL cannot store a NUL in text, and a URL carries other
    characters percent-encoded. Checked once here rather than in every form and view."""
    if unstorable_query(request.query_string):
        abort(400, _("The address contains characters that are not allowed in it."))
    if request.method == "POST" and request.mimetype in FORM_TYPES:
        if any("\x00" in key or "\x00" in value for key, value in request.form.items(multi=True)):
            abort(400, _("The form contains a NUL character, which cannot be stored. Remove it and try again."))


UNSTORABLE_QUERY_MESSAGE = "The address contains characters that are not allowed in it."


def unstorable_query(query: bytes) -> bool:
    """A NUL (%00) or raw non-ASCII bytes in a query string (the ingest layer checks it too, beneath Flask)."""
    return bool(query) and (b"%00" in query or not query.isascii())


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signer built once per set of keys instead of on every request
    (Flask opens the session on every request it serves, cookie or not). The cookie holds no authority of its own:
    a logged-in one carries the key of a server-side session (portal.auth.sessions), which logout ends."""

    def __init__(self) -> None:
        self._signers: dict[tuple, object] = {}

    def get_signing_serializer(self, app: Flask):
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        signer = self._signers.get(keys)
        if signer is None:
            signer = self._signers[keys] = super().get_signing_serializer(app)
        return signer


def _button_origin(button_src: str) -> str:
    parts = urlsplit(button_src)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


_policies: dict[tuple[str, ...], str] = {}


def content_security_policy(*button_srcs: str) -> str:
    """The page policy, built once per set of button sources (amoCRM's and Kommo's; it is set on every response)."""
    policy = _policies.get(button_srcs)
    if policy is None:
        # The button is a script from amoCRM's (or Kommo's) host that opens its consent window.
        button = " ".join(dict.fromkeys(origin for origin in map(_button_origin, button_srcs) if origin))
        frames = button or "'none'"
        policy = _policies[button_srcs] = (
            "default-src 'self'; "
            f"script-src 'self' {button}; "
            "style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self'; frame-src {frames}; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    return policy


def _set_headers(response):
    headers = response.headers
    # The lead snippet is loaded by other sites: no page policy applies to a file.
    for name, value in security_headers(current_app.config, page=not request.path.startswith("/static/")):
        headers.setdefault(name, value)
    return response


def security_headers(config, page: bool = True) -> list[tuple[str, str]]:
    """The headers every response carries (a view's own values win); `page` adds the page policy."""
    headers = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "strict-origin-when-cross-origin")]
    if page:
        headers += [("X-Frame-Options", "DENY"),
                    ("Content-Security-Policy", content_security_policy(config["AMOCRM_BUTTON_SRC"],
                                                                           config["KOMMO_BUTTON_SRC"]))]
        if config.get("SESSION_COOKIE_SECURE"):
            headers.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return headers


def is_safe_next(target: str | None) -> bool:
    """Only local paths: no scheme, no host, no protocol-relative `//evil` or `\\evil`."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and not any(c in target for c in "\r\n\t")
