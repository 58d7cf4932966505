"""The outbox: every e-mail is a row first (`queue_mail`, in the caller's transaction), then a job delivers it.

Why a table and not only a job: a job is lost with Redis, and an SMTP server may be down for hours; the row is not.
`deliver_mail` claims a due mail by moving its `next_attempt_at` ahead (one UPDATE, so two workers never send the
same mail at once), sends it, and marks it sent; a failed send records the error and makes the mail due again
after a backoff (30 s doubling, up to MAIL_MAX_BACKOFF_SECONDS). `enqueue_due_mail`, a periodic job, enqueues
every due mail again, so a retry needs nothing but the table. A mail sent is kept (the demo's outbox page lists
them); its body is sealed at rest because it carries one-time links.
"""
import logging
import smtplib
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from portal.extensions import db
from portal.jobs.queues import DEFAULT, enqueue
from portal.mail.smtp import MailNotConfigured, SmtpSettings, build_message, send
from portal.models import OutboxMail
from portal.models.types import utcnow

log = logging.getLogger(__name__)

# How long a claimed mail is left to its sender before another may try (a sender that died mid-send).
CLAIM_SECONDS = 120
FIRST_BACKOFF_SECONDS = 30
ENQUEUE_EVERY_SECONDS = 30


def queue_mail(workspace_id: int, kind: str, recipient: str, subject: str, body: str) -> OutboxMail:
    """Add a mail to the outbox in the current transaction; its delivery job is enqueued when the caller commits
    (and not at all if it rolls back)."""
    mail = OutboxMail(workspace_id=workspace_id, kind=kind, recipient=recipient, subject=subject[:200], body=body,
                      next_attempt_at=utcnow(), attempts=0)
    db.session.add(mail)
    db.session.flush()
    enqueue(DEFAULT, "portal.mail.outbox.deliver_mail", mail.id, job_id=f"mail-{mail.id}")
    return mail


def deliver_mail(mail_id: int) -> bool:
    """Job: send one mail if it is due and unsent. True when this call sent it."""
    now = utcnow()
    claimed = db.session.execute(
        update(OutboxMail).where(OutboxMail.id == mail_id, OutboxMail.sent_at.is_(None),
                                 OutboxMail.next_attempt_at <= now)
        .values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))).rowcount
    db.session.commit()
    if claimed != 1:
        return False  # sent already, not due yet, or another sender holds it
    mail = db.session.get(OutboxMail, mail_id)
    settings = SmtpSettings.from_config(current_app.config)
    try:
        send(settings, build_message(settings.sender, mail.recipient, mail.subject, mail.body))
    except (smtplib.SMTPException, OSError, MailNotConfigured) as error:
        _record_failure(mail, error)
        return False
    mail.sent_at = utcnow()
    mail.attempts += 1
    mail.last_error = None
    db.session.commit()
    log.info("mail %s (%s) sent", mail.id, mail.kind)
    return True


def _record_failure(mail: OutboxMail, error: Exception) -> None:
    mail.attempts += 1
    backoff = min(FIRST_BACKOFF_SECONDS * 2 ** (mail.attempts - 1), current_app.config["MAIL_MAX_BACKOFF_SECONDS"])
    mail.next_attempt_at = utcnow() + timedelta(seconds=backoff)
    mail.last_error = _describe(error)
    db.session.commit()
    log.warning("mail %s (%s) not sent, attempt %s, next in %ss: %s", mail.id, mail.kind, mail.attempts, backoff,
                mail.last_error)


def _describe(error: Exception) -> str:
    """The error without the recipient's address (SMTP replies often quote it): its class and SMTP code."""
    code = getattr(error, "smtp_code", None)
    if code is None and isinstance(getattr(error, "recipients", None), dict) and error.recipients:
        code = next(iter(error.recipients.values()))[0]
    return f"{error.__class__.__name__}{f' {code}' if code else ''}"[:200]


def enqueue_due_mail() -> int:
    """Periodic job: enqueue delivery of every unsent mail that is due (failed before, or whose job was lost)."""
    due = db.session.scalars(select(OutboxMail.id).where(OutboxMail.sent_at.is_(None),
                                                         OutboxMail.next_attempt_at <= utcnow())
                             .order_by(OutboxMail.id).limit(1000)).all()
    for mail_id in due:
        enqueue(DEFAULT, "portal.mail.outbox.deliver_mail", mail_id, job_id=f"mail-{mail_id}")
    return len(due)


def recent_mails(limit: int = 100) -> list[OutboxMail]:
    return list(db.session.scalars(select(OutboxMail).order_by(OutboxMail.id.desc()).limit(limit)))


def prune_sent_mail() -> int:
    """Daily job: delete mails sent more than MAIL_RETENTION_DAYS ago (their one-time links are long dead).
    Unsent mails are kept whatever their age."""
    cutoff = utcnow() - timedelta(days=current_app.config["MAIL_RETENTION_DAYS"])
    deleted = db.session.execute(delete(OutboxMail).where(OutboxMail.sent_at < cutoff)).rowcount
    db.session.commit()
    return deleted
