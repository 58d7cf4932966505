"""Scheduling the push of a workspace's pending leads to amoCRM (`portal.amocrm.jobs.push_leads`), cheaply enough for
the intake's hot path: the protocol of `portal.jobs.coalesce`. `push_leads` calls `push_started` first."""
from portal.jobs.coalesce import CoalescedJob
from portal.jobs.queues import AMOCRM

PUSH_LEADS = "portal.amocrm.jobs.push_leads"
PUSHES = CoalescedJob(AMOCRM, PUSH_LEADS, "push-leads")

schedule_push = PUSHES.schedule
push_started = PUSHES.started
push_job_id = PUSHES.job_id
