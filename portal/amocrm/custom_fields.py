"""The account's custom fields and which extra form field goes to which: Settings → amoCRM → Custom fields.

The deal and contact fields are read from amoCRM (`GET /api/v4/{leads|contacts}/custom_fields`, 50 a page) at
connect (`connection.after_connect`; a failed read there leaves the last one) and when someone presses Refresh, and
kept on the connection (`custom_fields`); the mapping (`field_mapping`) names a
field by entity and id. The push (`portal.amocrm.push`) resolves the mapping against the fields as last read: a
field gone from amoCRM, or one amoCRM refuses a value for, is unmapped and its values go to the deal's note.
"""
import logging

from flask_babel import gettext as _
from sqlalchemy import select

from portal.amocrm.api.errors import AmoCRMError
from portal.amocrm.api.field_values import MAPPABLE_TYPES, fields_record
from portal.amocrm.connection import ConnectError, client_for
from portal.amocrm.token_provider import NotConnected
from portal.extensions import db
from portal.models import AmoCRMConnection, Lead
from portal.models.types import utcnow

ENTITIES = ("leads", "contacts")
RECENT_LEADS = 500  # the extra field names offered for mapping come from this many of the latest leads

log = logging.getLogger(__name__)


class FieldsError(Exception):
    """Shown to the user as it is."""


def _connection(workspace_id: int) -> AmoCRMConnection:
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    if connection is None:
        raise FieldsError(_("Connect amoCRM first."))
    return connection


def refresh_custom_fields(workspace_id: int) -> dict:
    """Read the account's deal and contact fields from amoCRM and keep them on the connection. Commits."""
    try:
        client = client_for(workspace_id)
        read = {entity: list(client.iter_custom_fields(entity)) for entity in ENTITIES}
    except (AmoCRMError, ConnectError, NotConnected) as error:
        db.session.rollback()
        raise FieldsError(_("amoCRM's fields could not be read: %(error)s", error=str(error))) from error
    connection = _connection(workspace_id)
    connection.custom_fields = fields_record(read, utcnow().isoformat())
    db.session.commit()
    return connection.custom_fields


def mappable_fields(connection: AmoCRMConnection | None) -> dict[str, list[dict]]:
    """{entity: the fields a form value can fill}, as last read."""
    stored = (connection.custom_fields if connection else None) or {}
    return {entity: [field for field in stored.get(entity) or [] if field.get("type") in MAPPABLE_TYPES]
            for entity in ENTITIES}


def mapping_for_push(connection: AmoCRMConnection) -> dict[str, dict]:
    """{extra field name: {"entity", "field": summary}} for the mapped fields that still exist, as last read."""
    fields = {(entity, field["id"]): field for entity, listed in mappable_fields(connection).items()
              for field in listed}
    resolved = {}
    for name, target in (connection.field_mapping or {}).items():
        field = fields.get((target.get("entity"), target.get("field_id")))
        if field is not None:
            resolved[name] = {"entity": target["entity"], "field": field}
    return resolved


def save_mapping(workspace_id: int, chosen: dict[str, str]) -> int:
    """Store the mapping from {extra field name: "<entity>:<field id>" or ""}. Unknown fields are refused. Commits;
    returns how many names are mapped."""
    connection = _connection(workspace_id)
    fields = {f"{entity}:{field['id']}": (entity, field["id"])
              for entity, listed in mappable_fields(connection).items() for field in listed}
    mapping = {}
    for name, target in chosen.items():
        if not target:
            continue
        if target not in fields:
            raise FieldsError(_("“%(name)s”: that amoCRM field is not known; refresh the fields and choose again.",
                                name=name))
        entity, field_id = fields[target]
        mapping[name[:64]] = {"entity": entity, "field_id": field_id}
    connection.field_mapping = mapping or None
    db.session.commit()
    return len(mapping)


def unmap_fields(workspace_id: int, field_ids: set[int]) -> None:
    """amoCRM refused values for these fields (deleted or changed there): stop filling them, so their values go to
    the deal's note. The caller commits."""
    connection = _connection(workspace_id)
    kept = {name: target for name, target in (connection.field_mapping or {}).items()
            if target.get("field_id") not in field_ids}
    connection.field_mapping = kept or None
    connection.last_error = ("amoCRM refused values for mapped custom fields (deleted or changed there?); their "
                             "values now go to the deal's note. Refresh the fields in Settings → amoCRM and map "
                             "them again.")
    log.warning("workspace %s: amoCRM refused mapped fields %s; unmapped", workspace_id, sorted(field_ids))


def extra_field_names(workspace_id: int, connection: AmoCRMConnection | None) -> list[str]:
    """The extra field names the workspace's latest leads carried, and those mapped already, sorted."""
    names = set((connection.field_mapping or {}) if connection else ())
    for extra in db.session.scalars(select(Lead.extra_fields).where(
            Lead.workspace_id == workspace_id, Lead.extra_fields.is_not(None)).order_by(Lead.id.desc())
            .limit(RECENT_LEADS)):
        if isinstance(extra, dict):
            names.update(extra)
    return sorted(names)
