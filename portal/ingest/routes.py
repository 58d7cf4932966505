"""The ingest layer's route table, and its mounting in the app factory.

A new hot endpoint is one `Endpoint` here (its path, and per method the handler or PORTAL) and its handler.
"""
from flask import Flask

from portal.ingest import amocrm_webhook
from portal.ingest.layer import PORTAL, Endpoint, IngestLayer
from portal.intake import endpoint as lead_intake
from portal.visits import endpoint as visit_beacon

ENDPOINTS = (
    # GET (and HEAD) /api/leads: the reports API's lead list, a Flask view.
    Endpoint(lead_intake.PATH, {"POST": lead_intake.submit_lead, "GET": PORTAL, "HEAD": PORTAL},
             cors=lead_intake.CORS, wrong_method=lead_intake.WRONG_METHOD),
    # The snippet asks whether its page may send leads, when a refused POST's 403 is unreadable to it.
    Endpoint(lead_intake.ORIGIN_PATH, {"GET": lead_intake.check_page_origin}, cors=lead_intake.ORIGIN_CORS,
             wrong_method=lead_intake.ORIGIN_WRONG_METHOD),
    # The snippet's beacon, once per visit (sendBeacon: text/plain, no preflight).
    Endpoint(visit_beacon.PATH, {"POST": visit_beacon.record_visit}, cors=visit_beacon.CORS,
             wrong_method=visit_beacon.WRONG_METHOD),
    Endpoint(amocrm_webhook.PATH, {"POST": amocrm_webhook.acknowledge_webhook},
             wrong_method=amocrm_webhook.WRONG_METHOD),
)


def mount_ingest_layer(app: Flask) -> None:
    """Wrap the app's WSGI callable once; ProxyFix, when configured, goes outside it (client addresses)."""
    app.wsgi_app = IngestLayer(app, app.wsgi_app, ENDPOINTS)
