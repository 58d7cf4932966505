"""``/api/v4/account``, pipelines and custom-field definitions."""

from flask import g, request

from .guard import api_blueprint
from .hal import hal, link, no_content
from .listing import paginate
from .oauth import sandbox

bp = api_blueprint("sandbox_account")


@bp.get("/account")
def account_info():
    account = g.account
    with_ = request.args.get("with", "").split(",")
    embedded = {}
    if "datetime_settings" in with_:
        embedded["datetime_settings"] = {
            "date_pattern": "d.m.Y H:i",
            "short_date_pattern": "d.m.Y",
            "short_time_pattern": "H:i",
            "date_format": "d.m.Y",
            "time_format": "H:i:s",
            "timezone": account["timezone"],
            "timezone_offset": account["timezone_offset"],
        }
    if "users_groups" in with_:
        embedded["users_groups"] = [{"id": 0, "name": "Отдел продаж", "uuid": None}]
    body = {
        "id": account["id"],
        "name": account["name"],
        "subdomain": account["subdomain"],
        "created_at": account["created_at"],
        "created_by": account["users"][0]["id"],
        "updated_at": account["created_at"],
        "updated_by": account["users"][0]["id"],
        "current_user_id": g.user_id,
        "country": account["country"],
        "currency": account["currency"],
        "currency_symbol": account["currency_symbol"],
        "customers_mode": "disabled",
        "is_unsorted_on": True,
        "is_loss_reason_enabled": True,
        "is_helpbot_enabled": False,
        "is_technical_account": False,
        "contact_name_display_order": 1,
        "_links": link("account"),
    }
    if embedded:
        body["_embedded"] = embedded
    return hal(body)


@bp.get("/leads/pipelines")
def pipelines():
    items = []
    for pipeline in g.account["pipelines"]:
        view = {key: value for key, value in pipeline.items() if key != "statuses"}
        view["_links"] = link(f"leads/pipelines/{pipeline['id']}")
        view["_embedded"] = {
            "statuses": [
                dict(s, _links=link(f"leads/pipelines/{pipeline['id']}/statuses/{s['id']}"))
                for s in pipeline["statuses"]
            ]
        }
        items.append(view)
    return hal(
        {"_total_items": len(items), "_links": link("leads/pipelines"), "_embedded": {"pipelines": items}}
    )


@bp.get("/leads/pipelines/<int:pipeline_id>")
def pipeline_one(pipeline_id):
    pipeline = sandbox().state.pipeline(g.account, pipeline_id)
    if pipeline is None:
        return no_content()
    view = {key: value for key, value in pipeline.items() if key != "statuses"}
    view.update(_links=link(f"leads/pipelines/{pipeline_id}"), _embedded={"statuses": pipeline["statuses"]})
    return hal(view)


@bp.get("/<any(leads, contacts):entity>/custom_fields")
def custom_fields(entity):
    fields = g.account["lead_fields" if entity == "leads" else "contact_fields"]
    items = [dict(f, _links=link(f"{entity}/custom_fields/{f['id']}")) for f in fields]
    return paginate("custom_fields", items, lambda item: item)
