"""amoCRM webhooks: receiving them (acknowledged by portal.ingest.amocrm_webhook) and turning deal events into
Sales."""
