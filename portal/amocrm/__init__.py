"""Everything about amoCRM.

- `api/` — the wire library: client, errors, OAuth token endpoint, push payloads, webhook bodies (no Flask, no
  database).
- `authorization`, `connection`, `token_provider` — connecting a workspace (OAuth or a long-lived token), the
  connection row and its pipelines, `client_for`, and the one token provider with its cross-process refresh.
- `push`, `limiter`, `sync_log`, `sync_admin`, `push_sweeper` — pushing pending leads exactly once under amoCRM's
  request limit, the log of every call, retry/resume/health/prune, and the safety net for missed pushes.
- `inbox`, `deals`, `subscription`, `reconcile` — webhooks received and processed into deals, the deal upsert,
  the subscription's health, and reading deals back from the API.
- `scheduling`, `jobs`, `commands` — how work is scheduled, the job entry points RQ runs, the CLI.
- `routes`, `sync_routes`, `forms` — the views: /amocrm/*, Settings → amoCRM, /sync/*. The webhook POST is
  acknowledged beneath Flask by the ingest layer (`portal.ingest.amocrm_webhook`), which calls `inbox`.
"""
