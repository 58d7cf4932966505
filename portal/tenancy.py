"""Tenant scoping. Every lookup that serves a request goes through these, so none can forget the workspace."""
from typing import TypeVar

from flask import abort
from flask_login import current_user
from sqlalchemy import Select, select

from portal.extensions import db
from portal.models import Workspace

Model = TypeVar("Model")

MAX_ID = 2**31 - 1  # the id columns are INTEGER: a larger id in a URL names nothing (and PostgreSQL would refuse it)


def current_workspace_id() -> int:
    if not current_user.is_authenticated:
        abort(401)
    return current_user.workspace_id


def scoped(model: type[Model], workspace_id: int | None = None) -> Select:
    """select(model) limited to one workspace (the current one by default)."""
    workspace_id = current_workspace_id() if workspace_id is None else workspace_id
    return select(model).where(model.workspace_id == workspace_id)


def get_owned_or_404(model: type[Model], object_id: int, workspace_id: int | None = None) -> Model:
    """The row of `model` with that id in the workspace, or a 404 — the same 404 whether it is
    missing or belongs to another workspace, so ids leak nothing."""
    if not 0 < object_id <= MAX_ID:
        abort(404)
    row = db.session.scalar(scoped(model, workspace_id).where(model.id == object_id))
    if row is None:
        abort(404)
    return row


def workspace_id_for(reference: str) -> int | None:
    """A workspace named by id or public id (for commands run by operators), or None."""
    column = Workspace.id if reference.isdigit() else Workspace.public_id
    return db.session.scalar(select(Workspace.id).where(column == (int(reference) if reference.isdigit()
                                                                   else reference)))
