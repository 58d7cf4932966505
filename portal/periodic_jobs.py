"""Every periodic job, in one list: which function (dotted path), how often, on which queue. The scheduler
(`flask --app wsgi scheduler`, or the demo's in-process one) enqueues each once per period (`portal.jobs.scheduler`).
"""
from portal.adplatforms.jobs import DUE_EVERY_SECONDS as AD_IMPORTS_EVERY_SECONDS
from portal.amocrm.push_sweeper import SWEEP_EVERY_SECONDS
from portal.jobs import dead_workers
from portal.jobs.queues import ADSPEND, AMOCRM, DEFAULT, WEBHOOKS
from portal.jobs.scheduler import Periodic, every
from portal.mail.outbox import ENQUEUE_EVERY_SECONDS
from portal.reports.credits import SWEEP_EVERY_SECONDS as ATTRIBUTE_EVERY_SECONDS
from portal.reports.rollups import COMPACT_EVERY_SECONDS
from portal.visits.retention import PRUNE_EVERY_SECONDS as PRUNE_VISITS_EVERY_SECONDS

HOUR = 3600

PERIODIC_JOBS: list[Periodic] = [
    # Hand the jobs of workers that died (SIGKILL, OOM) back to RQ at once, not after its heartbeat expiry.
    every(dead_workers.EVERY_SECONDS, DEFAULT, "portal.jobs.dead_workers.clean_jobs_of_dead_workers"),
    # Schedule pushes of pending leads that waited too long (Redis was down, a marker outlived its job).
    every(SWEEP_EVERY_SECONDS, DEFAULT, "portal.amocrm.jobs.sweep_pending_leads"),
    # The same for webhook events still waiting a minute after they arrived.
    every(60, WEBHOOKS, "portal.amocrm.jobs.requeue_stale_webhooks"),
    # amoCRM disables a webhook that keeps failing: re-create missing or disabled subscriptions.
    every(15 * 60, AMOCRM, "portal.amocrm.jobs.check_all_webhooks"),
    # Webhooks get lost: read back the deals amoCRM changed.
    every(HOUR, DEFAULT, "portal.amocrm.jobs.reconcile_connected_workspaces"),
    # Refresh tokens of idle connections before amoCRM lets them die.
    every(6 * HOUR, DEFAULT, "portal.amocrm.jobs.refresh_idle_connections"),
    every(24 * HOUR, DEFAULT, "portal.amocrm.jobs.prune_sync_log"),
    # Mails not delivered yet (SMTP was down, a job was lost): try again once due.
    every(ENQUEUE_EVERY_SECONDS, DEFAULT, "portal.mail.outbox.enqueue_due_mail"),
    every(24 * HOUR, DEFAULT, "portal.mail.outbox.prune_sent_mail"),
    # Fold the report rollups' delta rows (reports are right either way; folding keeps them few).
    every(COMPACT_EVERY_SECONDS, DEFAULT, "portal.reports.rollups.compact_all"),
    # Visits past each workspace's retention (Settings → Workspace), in short batches.
    every(PRUNE_VISITS_EVERY_SECONDS, DEFAULT, "portal.visits.retention.prune_visits"),
    # Ad spend: each workspace's daily import at its hour, and import runs whose wait is over or whose job was lost.
    every(AD_IMPORTS_EVERY_SECONDS, ADSPEND, "portal.adplatforms.jobs.import_due_accounts"),
    every(COMPACT_EVERY_SECONDS, DEFAULT, "portal.reports.credits.compact_all_credits"),
    # Attribute recent leads over their visitors' visits once their form's visit had time to arrive.
    every(ATTRIBUTE_EVERY_SECONDS, DEFAULT, "portal.reports.credits.attribute_pending_leads"),
]
