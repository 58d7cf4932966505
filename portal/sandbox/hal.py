"""HAL bodies and links, as amoCRM's API v4 answers: ``application/hal+json``, 204 with an empty body for
"nothing here", absolute ``_links`` on the account's host."""

from flask import Response, g, json, request

from .oauth import public_host


def hal(body, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/hal+json")


def no_content() -> Response:
    return Response(status=204)


def base_url() -> str:
    account = g.get("account")
    return f"{request.scheme}://{account['host'] if account and account['host'] else public_host()}"


def link(path: str) -> dict:
    return {"self": {"href": f"{base_url()}/api/v4/{path}"}}
