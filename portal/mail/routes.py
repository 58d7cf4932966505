"""/dev/outbox: the mails Leadpath sent or is trying to send, with their links, so the demo's password reset,
invites and e-mail confirmation can be followed without a mailbox. Only where MAIL_OUTBOX_PAGE is on (development
and the demo); elsewhere the address does not exist (404)."""
import re

from flask import Blueprint, abort, current_app, render_template

from portal.mail.outbox import recent_mails

bp = Blueprint("mail", __name__, url_prefix="/dev")

LINK = re.compile(r"https?://\S+")


@bp.get("/outbox")
def outbox():
    if not current_app.config["MAIL_OUTBOX_PAGE"]:
        abort(404)
    mails = [(mail, LINK.findall(mail.body)) for mail in recent_mails()]
    return render_template("mail/outbox.html", mails=mails)
