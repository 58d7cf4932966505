"""Imports every module that registers periodic jobs, so schedulers see them all."""
import portal.amocrm.jobs  # noqa: F401  (prune the sync log)
import portal.amocrm.push_sweeper  # noqa: F401  (schedule pushes of overdue pending leads)
import portal.amocrm.reconcile  # noqa: F401  (hourly reconciliation with amoCRM)
import portal.jobs.tokens  # noqa: F401  (refresh idle amoCRM connections)
import portal.jobs.webhooks  # noqa: F401  (requeue stale webhook events, check subscriptions)
import portal.reports.cache_warmer  # noqa: F401  (keep the report cache warm)
