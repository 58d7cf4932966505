"""Helpers for the lead-intake tests: a workspace to send leads to, and a way to send them.

Each test module declares its own `workspace` fixture as `make_workspace(app)`.
"""
import json

from portal.extensions import db
from portal.models import Lead, Workspace

SEED_000_PAYLOAD = {"name": "Иван Петров", "phone": "+79991234567", "email": "ivan@example.com",
                    "message": "Хочу узнать подробнее", "utm_source": "google", "utm_medium": "cpc",
                    "utm_campaign": "spring_sale"}


def make_workspace(app, name: str = "Landing Co") -> tuple[int, str]:
    """A workspace as the intake sees it: (id, public_id)."""
    with app.app_context():
        row = Workspace(name=name)
        db.session.add(row)
        db.session.commit()
        return row.id, row.public_id


def post_lead(client, public_id: str | None, headers: dict | None = None, **fields):
    body = {**({"userAccountId": public_id} if public_id else {}), **fields}
    return client.post("/api/leads", data=json.dumps(body), content_type="application/json",
                       headers=headers or {})


def leads_of(app, workspace_id: int) -> list[Lead]:
    with app.app_context():
        rows = db.session.scalars(db.select(Lead).where(Lead.workspace_id == workspace_id).order_by(Lead.id)).all()
        db.session.expunge_all()
        return list(rows)


def set_workspace(app, workspace_id: int, **values) -> None:
    with app.app_context():
        db.session.execute(db.update(Workspace).where(Workspace.id == workspace_id).values(**values))
        db.session.commit()
