"""What each e-mail says, in the recipient's language, and putting it in the outbox.

The language: the user's chosen one; for a user who chose none (they follow their browser) and for an invitee
(who has no account yet), the language of the request that caused the mail: the requester's or the inviter's.
Bodies are plain text (templates/mail/*.txt): every mail client shows them, and links stay clickable.
"""
from flask import render_template
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _

from portal.mail.outbox import queue_mail
from portal.models import Invite, OutboxMail, User

PASSWORD_RESET = "password_reset"
INVITE = "invite"
VERIFY_EMAIL = "verify_email"


def _language(user: User | None = None) -> str:
    return (user.locale if user is not None and user.locale else None) or str(get_locale() or "en")


def password_reset_message(user: User, link: str, minutes: int) -> tuple[str, str]:
    """The subject and body of a password-reset mail."""
    with force_locale(_language(user)):
        return (_("Reset your Leadpath password"),
                render_template("mail/password_reset.txt", user=user, link=link, minutes=minutes))


def password_reset_mail(user: User, link: str, minutes: int) -> OutboxMail:
    subject, body = password_reset_message(user, link, minutes)
    return queue_mail(user.workspace_id, PASSWORD_RESET, user.email, subject, body)


def invite_mail(invite: Invite, inviter: User, link: str, hours: int) -> OutboxMail:
    with force_locale(_language()):
        subject = _("%(name)s invites you to %(workspace)s on Leadpath", name=inviter.name or inviter.email,
                    workspace=invite.workspace.name)
        body = render_template("mail/invite.txt", invite=invite, inviter=inviter, link=link, hours=hours)
    return queue_mail(invite.workspace_id, INVITE, invite.email, subject, body)


def verification_mail(user: User, link: str, days: int) -> OutboxMail:
    with force_locale(_language(user)):
        subject = _("Confirm your e-mail address for Leadpath")
        body = render_template("mail/verify_email.txt", user=user, link=link, days=days)
    return queue_mail(user.workspace_id, VERIFY_EMAIL, user.email, subject, body)
