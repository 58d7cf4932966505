"""GET /metrics: Prometheus text exposition of the pipeline's health (leads, webhooks, amoCRM calls, queues)."""
