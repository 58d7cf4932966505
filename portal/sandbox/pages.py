"""The account's own web pages that links into amoCRM open: ``/leads/detail/<id>``, a deal's card — the shape
of amoCRM's deal URL (``https://{subdomain}.amocrm.ru/leads/detail/{id}``) on the account's host. It shows the
deal with its stage, budget, tags, fields and contacts, and the same Won / Lost buttons as ``/_sandbox/``."""

from flask import Blueprint, render_template, request

from .hosts import account_at
from .oauth import sandbox

bp = Blueprint("sandbox_pages", __name__)


@bp.get("/leads/detail/<int:lead_id>")
def deal_page(lead_id):
    state = sandbox().state
    with state.lock:
        lead = state.leads.get(lead_id)
        owner, _ = account_at(state, request.host)
        if lead is None or (owner is not None and owner["id"] != lead["account_id"]):
            return render_template("sandbox/deal_missing.html", lead_id=lead_id), 404
        account = state.accounts[lead["account_id"]]
        pipeline = state.pipeline(account, lead["pipeline_id"])
        status = next(s for s in pipeline["statuses"] if s["id"] == lead["status_id"])
        contacts = [
            state.contacts[link["id"]]
            for link in lead["_embedded"]["contacts"]
            if link["id"] in state.contacts
        ]
        return render_template(
            "sandbox/deal.html",
            lead=lead,
            account=account,
            pipeline=pipeline,
            status=status,
            contacts=contacts,
        )
