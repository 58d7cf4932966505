"""Absolute links for e-mails. PUBLIC_BASE_URL when set: a link built from the request's Host header would let
whoever sends that header (anyone, without a trusted proxy or TRUSTED_HOSTS) point a password-reset link at their
own site. Without it (development, the demo, tests) the request's host is used."""
from flask import current_app, url_for


def absolute_link(endpoint: str, **values) -> str:
    base = current_app.config.get("PUBLIC_BASE_URL")
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)
