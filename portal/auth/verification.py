"""E-mail verification: a signed link (SECRET_KEY, also its fallbacks) naming the user and the address, valid for
EMAIL_VERIFICATION_TTL_HOURS. Nothing is stored for it: opening it twice only confirms twice, and a link sent
before the address changed names the old address and confirms nothing."""
from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.auth.services import AccountError
from portal.extensions import db
from portal.mail.links import absolute_link
from portal.mail.messages import verification_mail
from portal.models import User
from portal.models.types import utcnow

SALT = "leadpath-verify-email"


def _serializer() -> URLSafeTimedSerializer:
    config = current_app.config
    keys = [*config.get("SECRET_KEY_FALLBACKS", []), config["SECRET_KEY"]]  # the newest signs, all verify
    return URLSafeTimedSerializer(keys, salt=SALT)


def send_verification(user: User) -> None:
    """Put a verification mail for `user`'s address in the outbox; the caller commits."""
    hours = current_app.config["EMAIL_VERIFICATION_TTL_HOURS"]
    token = _serializer().dumps({"user": user.id, "email": user.email})
    verification_mail(user, absolute_link("auth.verify_email_page", token=token), max(1, hours // 24))


def verify_email(token: str) -> User:
    try:
        data = _serializer().loads(token, max_age=current_app.config["EMAIL_VERIFICATION_TTL_HOURS"] * 3600)
    except SignatureExpired as error:
        raise AccountError(_("This confirmation link has expired. Log in and send a new one.")) from error
    except BadSignature as error:
        raise AccountError(_("This confirmation link is not valid. Log in and send a new one.")) from error
    user = db.session.get(User, data.get("user")) if isinstance(data, dict) else None
    if user is None or user.email != data.get("email"):
        raise AccountError(_("This confirmation link is not valid. Log in and send a new one."))
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        db.session.commit()
    return user
