"""The setup checklist: which of the four steps a workspace has done, read from what happened, never ticked by
hand. Connect amoCRM → install the snippet (seen when the snippet first runs on a site, or a lead arrives from a
site) → a lead reaches amoCRM (a test lead from Settings → amoCRM, or any other) → add ad spend."""
from dataclasses import dataclass

from sqlalchemy import exists, select, update

from portal.extensions import db
from portal.models import AdSpend, AmoCRMConnection, Lead, Workspace
from portal.models.amocrm import CONNECTED
from portal.models.types import utcnow


@dataclass(frozen=True)
class Progress:
    amocrm_connected: bool
    snippet_installed: bool
    lead_reached_amocrm: bool
    spend_added: bool
    has_leads: bool
    dismissed: bool

    @property
    def steps_done(self) -> int:
        return sum((self.amocrm_connected, self.snippet_installed, self.lead_reached_amocrm, self.spend_added))

    @property
    def complete(self) -> bool:
        return self.steps_done == 4

    @property
    def show_checklist(self) -> bool:
        return not (self.dismissed or self.complete)


def progress(workspace: Workspace) -> Progress:
    """Five EXISTS probes on indexed columns, one query."""
    workspace_id = workspace.id
    row = db.session.execute(select(
        exists().where(AmoCRMConnection.workspace_id == workspace_id, AmoCRMConnection.status == CONNECTED),
        exists().where(Lead.workspace_id == workspace_id, Lead.landing_page.is_not(None)),
        exists().where(Lead.workspace_id == workspace_id, Lead.amocrm_lead_id.is_not(None)),
        exists().where(AdSpend.workspace_id == workspace_id),
        exists().where(Lead.workspace_id == workspace_id),
    )).one()
    connected, lead_from_site, reached, spend, has_leads = (bool(value) for value in row)
    return Progress(connected, workspace.snippet_seen_at is not None or lead_from_site, reached, spend, has_leads,
                    workspace.onboarding_dismissed_at is not None)


def dismiss_checklist(workspace: Workspace) -> None:
    workspace.onboarding_dismissed_at = utcnow()
    db.session.commit()


def restore_checklist(workspace: Workspace) -> None:
    workspace.onboarding_dismissed_at = None
    db.session.commit()


# Workspaces this process already knows the snippet was seen for: later pings cost no query.
_seen: set[str] = set()
SEEN_CACHE_LIMIT = 100_000


def note_snippet_seen(public_id: str) -> None:
    """The snippet ran on a site of this workspace (its first run in a browser). Sets the time once."""
    if public_id in _seen:
        return
    db.session.execute(update(Workspace).where(Workspace.public_id == public_id, Workspace.snippet_seen_at.is_(None))
                       .values(snippet_seen_at=utcnow()))
    db.session.commit()
    if len(_seen) < SEEN_CACHE_LIMIT:
        _seen.add(public_id)
