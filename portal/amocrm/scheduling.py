"""Scheduling amoCRM work that arrives as a stream, cheaply enough for the hot paths: pushes of a workspace's pending
leads (after the intake commits a lead) and processing of its stored webhook events (after the acknowledgement
commits one). One waiting job per workspace, at most one Redis SET NX per item: the protocol of
`portal.jobs.coalesce`. Each job calls its `started` first, before it reads its items; a marker left without a job
expires, and the sweepers (`push_sweeper`, `inbox.requeue_stale_events`) schedule whatever waited too long.

Also the dotted paths of the amoCRM jobs enqueued by name (`portal.amocrm.jobs`), so each has one spelling.
"""
from rq import Retry

from portal.jobs.coalesce import CoalescedJob
from portal.jobs.queues import AMOCRM, WEBHOOKS

PUSH_LEADS = "portal.amocrm.jobs.push_leads"
PROCESS_EVENTS = "portal.amocrm.jobs.process_workspace_events"
RECONCILE_WORKSPACE = "portal.amocrm.jobs.reconcile_workspace"
# A reconcile run that meets an amoCRM error (a 500, a timeout, a 429) is tried again soon, not at the next hourly run.
RECONCILE_RETRY = Retry(max=4, interval=[30, 120, 600, 1800])
CHECK_WEBHOOK = "portal.amocrm.jobs.check_webhook"
REFRESH_PIPELINES = "portal.amocrm.jobs.refresh_pipelines"
CLOSE_SPAM_DEAL = "portal.amocrm.jobs.close_spam_deal"
BUILD_CONTACTS_INDEX = "portal.amocrm.jobs.build_contacts_index"

PUSHES = CoalescedJob(AMOCRM, PUSH_LEADS, "push-leads")
schedule_push = PUSHES.schedule
push_started = PUSHES.started
push_job_id = PUSHES.job_id

EVENT_PROCESSING = CoalescedJob(WEBHOOKS, PROCESS_EVENTS, "webhook-events")
schedule_processing = EVENT_PROCESSING.schedule
processing_job_id = EVENT_PROCESSING.job_id
