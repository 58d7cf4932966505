"""The sync log: one row per amoCRM call, with tokens and personal data masked."""
import json

from portal.amocrm.api.client import CallRecord
from portal.extensions import db
from portal.log_context import job_id_var
from portal.masking import mask_document
from portal.models import SyncLogEntry

STORED_CHARS = 20_000


def stored_document(document) -> str | None:
    """A request or response as a sync log row keeps it: personal data masked, cut to a bounded size."""
    if document is None:
        return None
    if isinstance(document, str):  # not JSON: an HTML error page, say
        return document[:2000]
    return json.dumps(mask_document(document), ensure_ascii=False)[:STORED_CHARS]


def current_job_id() -> str | None:
    """The RQ job id to store on a sync log row (None outside a job)."""
    job_id = job_id_var.get()
    return None if job_id == "-" else job_id[:64]


class SyncLogRecorder:
    """Turns the client's CallRecords into SyncLogEntry rows on the session (committed with the caller's work)."""

    def __init__(self, workspace_id: int, job_id: str | None = None):
        self.workspace_id = workspace_id
        self.job_id = job_id
        self.lead_ids: list[int] | None = None

    def record(self, call: CallRecord) -> None:
        ok = call.status is not None and 200 <= call.status < 300
        db.session.add(SyncLogEntry(
            workspace_id=self.workspace_id, direction="outbound", operation=f"{call.method} {call.path}"[:120],
            lead_ids=self.lead_ids, outcome="ok" if ok else "error", http_status=call.status,
            duration_ms=call.duration_ms, request=stored_document(call.request_json),
            response=stored_document(call.response_body),
            error=(call.error or None) and call.error[:2000], job_id=self.job_id))
