"""Imports every module that registers periodic jobs, so schedulers see them all."""
import portal.jobs.dead_workers  # noqa: F401  (hand jobs of dead workers back to RQ)
import portal.jobs.reconcile  # noqa: F401  (hourly reconciliation with amoCRM)
import portal.jobs.reports  # noqa: F401  (keep the report cache warm)
import portal.jobs.sweeper  # noqa: F401  (schedule pushes of overdue pending leads)
import portal.jobs.sync  # noqa: F401  (prune the sync log)
import portal.jobs.tokens  # noqa: F401  (refresh idle amoCRM connections)
import portal.jobs.webhooks  # noqa: F401  (requeue stale webhook events, check subscriptions)
