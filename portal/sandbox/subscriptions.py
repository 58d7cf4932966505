"""``/api/v4/webhooks``: list, subscribe (re-POST updates), unsubscribe."""

import re

from flask import g, request

from .guard import api_blueprint
from .hal import hal, link, no_content
from .oauth import sandbox
from .state import now
from .validation import ValidationFailed, error, is_int
from .webhooks import WEBHOOK_ACTIONS

bp = api_blueprint("sandbox_webhooks")


def webhook_view(hook: dict) -> dict:
    return {key: value for key, value in hook.items() if key not in ("failures",)}


@bp.get("/webhooks")
def webhooks_list():
    state = sandbox().state
    with state.lock:
        hooks = [webhook_view(h) for h in state.webhooks.values() if h["account_id"] == g.account["id"]]
    destination = request.args.get("filter[destination]")
    if destination:
        hooks = [h for h in hooks if h["destination"] == destination]
    if not hooks:
        return no_content()
    return hal({"_total_items": len(hooks), "_links": link("webhooks"), "_embedded": {"webhooks": hooks}})


@bp.post("/webhooks")
def webhook_subscribe():
    state = sandbox().state
    body = request.get_json(silent=True, force=True)
    errors = []
    if not isinstance(body, dict):
        body = {}
    destination, settings = body.get("destination"), body.get("settings")
    if not isinstance(destination, str) or not re.match(r"https?://[^/\s]+", destination):
        error(errors, "InvalidType", "destination", "This value is not a valid URL.")
    if not isinstance(settings, list) or not settings or not all(s in WEBHOOK_ACTIONS for s in settings):
        error(errors, "NotSupportedChoice", "settings", "One or more of the given values is invalid.")
    if "sort" in body and not is_int(body["sort"]):
        error(errors, "InvalidType", "sort", "This value should be of type int.")
    if errors:
        raise ValidationFailed([{"request_id": "0", "errors": errors}])
    with state.lock:
        hook = next(
            (
                h
                for h in state.webhooks.values()
                if h["account_id"] == g.account["id"] and h["destination"] == destination
            ),
            None,
        )
        moment = now()
        if hook is None:
            hook = {
                "id": state.next_id("webhook"),
                "destination": destination,
                "created_at": moment,
                "account_id": g.account["id"],
                "created_by": g.user_id,
            }
            state.webhooks[hook["id"]] = hook
        # Re-POSTing a destination updates it and re-enables it.
        hook.update(
            updated_at=moment, sort=body.get("sort", 1), disabled=False, settings=list(settings), failures=0
        )
        return hal(webhook_view(hook))


@bp.delete("/webhooks")
def webhook_unsubscribe():
    state = sandbox().state
    body = request.get_json(silent=True, force=True)
    destination = body.get("destination") if isinstance(body, dict) else None
    if not isinstance(destination, str):
        raise ValidationFailed(
            [
                {
                    "request_id": "0",
                    "errors": [
                        {
                            "code": "InvalidType",
                            "path": "destination",
                            "detail": "This value should not be blank.",
                        }
                    ],
                }
            ]
        )
    with state.lock:
        for hook_id, hook in list(state.webhooks.items()):
            if hook["account_id"] == g.account["id"] and hook["destination"] == destination:
                del state.webhooks[hook_id]
    return no_content()
