"""Helpers for the webhook tests: workspaces with a connection row, and amoCRM-shaped bodies."""
from urllib.parse import urlencode

from sqlalchemy import select

from portal.amocrm import inbox
from portal.amocrm.api.webhook_bodies import parse_notification
from portal.extensions import db
from portal.models import AmoCRMConnection, Lead, WebhookEvent, Workspace

ACCOUNT_ID = 17769199
PIPELINE_ID = 9217056
FIRST_STATUS = 7039101
PIPELINES = [{"id": PIPELINE_ID, "name": "Воронка", "_embedded": {"statuses": [
    {"id": FIRST_STATUS, "type": 1}, {"id": 7039102, "type": 0}, {"id": 142}, {"id": 143}]}}]
FORM = "application/x-www-form-urlencoded"


def make_workspace(app, *, account_id: int | None = ACCOUNT_ID, connected: bool = True, **connection) -> dict:
    """A workspace, and (unless connected=False) its connection row. → {id, public_id, secret, url}."""
    with app.app_context():
        workspace = Workspace(name="Окна и двери")
        db.session.add(workspace)
        db.session.flush()
        if connected:
            db.session.add(AmoCRMConnection(workspace_id=workspace.id, amocrm_account_id=account_id,
                                            status="connected", base_domain="example.amocrm.ru",
                                            pipelines=connection.pop("pipelines", PIPELINES), **connection))
        db.session.commit()
        return {"id": workspace.id, "public_id": workspace.public_id, "secret": workspace.webhook_secret,
                "url": f"/webhooks/amocrm/{workspace.public_id}/{workspace.webhook_secret}"}


def make_lead(app, workspace_id: int, deal_id: int | None, **fields) -> int:
    with app.app_context():
        lead = Lead(workspace_id=workspace_id, name="Иван", phone="+79991234567", amocrm_lead_id=deal_id,
                    sync_status="synced" if deal_id else "pending", **fields)
        db.session.add(lead)
        db.session.commit()
        return lead.id


def deal_pairs(action: str, deal_id: int, *, index: int = 0, status_id: int = FIRST_STATUS,
               pipeline_id: int = PIPELINE_ID, price: int | str | None = None, updated_at: int = 1704912474,
               **extra) -> list[tuple[str, str]]:
    prefix = f"leads[{action}][{index}]"
    fields = {"id": deal_id, "name": "Заявка с сайта", "status_id": status_id, "pipeline_id": pipeline_id,
              "last_modified": updated_at, "price": price, **extra}
    if action == "delete":
        fields = {"id": deal_id, "status_id": status_id, "pipeline_id": pipeline_id}
    return [(f"{prefix}[{key}]", str(value)) for key, value in fields.items() if value is not None]


def account_pairs(account_id: int = ACCOUNT_ID) -> list[tuple[str, str]]:
    return [("account[subdomain]", "example"), ("account[id]", str(account_id)),
            ("account[_links][self]", "https://example.amocrm.ru")]


def webhook_body(*deal_pair_lists, account_id: int = ACCOUNT_ID) -> str:
    pairs = [pair for pairs in deal_pair_lists for pair in pairs] + account_pairs(account_id)
    return urlencode(pairs)


def post_webhook(client, url: str, body: str | bytes, **kwargs):
    return client.post(url, data=body, content_type=kwargs.pop("content_type", FORM), **kwargs)


def amocrm_holds_what_bodies_say(monkeypatch) -> None:
    """Stand in for amoCRM's API where a test is about applying deals, not about reading them: each deal is
    read as the newest stored webhook body describes it (greatest updated_at, the later event on a tie; a
    deletion is final) — what amoCRM holds after the changes those bodies report."""

    def read_deals(workspace_id: int, deal_ids) -> dict:
        wanted = set(deal_ids)
        newest: dict = {}
        payloads = db.session.scalars(select(WebhookEvent.payload).where(WebhookEvent.workspace_id == workspace_id)
                                      .order_by(WebhookEvent.id)).all()
        db.session.rollback()
        for payload in payloads:
            for snapshot in parse_notification(payload).deals:
                current = newest.get(snapshot.deal_id)
                if snapshot.deal_id not in wanted or (current is not None and current.action == "delete"):
                    continue
                if (current is None or snapshot.action == "delete"
                        or (snapshot.updated_at or 0) >= (current.updated_at or 0)):
                    newest[snapshot.deal_id] = snapshot
        return newest

    monkeypatch.setattr(inbox, "read_deals", read_deals)
