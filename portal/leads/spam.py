"""Marking a lead as spam (or not): it stays out of amoCRM, and a deal it already has is closed as lost there by a
job (`portal.amocrm.deals.close_spam_deal`)."""
from rq import Retry
from sqlalchemy import select

from portal.amocrm.scheduling import CLOSE_SPAM_DEAL, schedule_push
from portal.extensions import db
from portal.jobs.queues import AMOCRM, enqueue
from portal.models import Lead
from portal.models.lead import FAILED, PENDING, SKIPPED


class LeadNotFound(LookupError):
    pass


def mark_lead_spam(workspace_id: int, lead_id: int, spam: bool = True) -> Lead:
    """Mark (or unmark) a lead of the workspace as spam. A lead not yet pushed will not be; a lead with a deal
    gets a job that closes the deal as lost (143) in amoCRM. Unmarking reopens nothing in amoCRM."""
    lead = db.session.scalar(select(Lead).where(Lead.workspace_id == workspace_id, Lead.id == lead_id))
    if lead is None:
        raise LeadNotFound(lead_id)
    lead.is_spam = spam
    if spam and lead.sync_status in (PENDING, FAILED) and lead.amocrm_lead_id is None:
        lead.sync_status = SKIPPED
    if spam and lead.amocrm_lead_id is not None:
        enqueue(AMOCRM, CLOSE_SPAM_DEAL, workspace_id, lead.id, job_id=f"close-deal-{lead.id}",
                retry=Retry(max=3, interval=[30, 300, 1800]))
    # Not spam after all, and never sent: it goes to amoCRM like any other lead (a repeat stays linked, unsent).
    pushes = not spam and lead.sync_status == SKIPPED and lead.amocrm_lead_id is None and lead.duplicate_of_id is None
    if pushes:
        lead.sync_status = PENDING
        lead.next_attempt_at = None
    db.session.commit()
    if pushes:
        schedule_push(workspace_id)
    return lead

