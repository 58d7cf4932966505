"""Handing one message to the configured SMTP server. No Flask, no database: the outbox passes its settings."""
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

SECURITY_MODES = ("starttls", "ssl", "none")


class MailNotConfigured(Exception):
    """No SMTP server is configured: the mail waits in the outbox."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int
    user: str | None
    password: str | None
    security: str
    timeout: float
    sender: str

    @classmethod
    def from_config(cls, config) -> "SmtpSettings":
        security = config["MAIL_SMTP_SECURITY"]
        if security not in SECURITY_MODES:
            raise ValueError(f"MAIL_SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}, not {security!r}")
        return cls(config["MAIL_SMTP_HOST"], config["MAIL_SMTP_PORT"], config["MAIL_SMTP_USER"],
                   config["MAIL_SMTP_PASSWORD"], security, config["MAIL_SMTP_TIMEOUT_SECONDS"], config["MAIL_FROM"])


def build_message(sender: str, recipient: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message.set_content(body)  # UTF-8 text: Cyrillic subjects and bodies are encoded by the library
    return message


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Deliver `message` or raise (smtplib.SMTPException, OSError, MailNotConfigured)."""
    if not settings.host:
        raise MailNotConfigured("MAIL_SMTP_HOST is not set")
    context = ssl.create_default_context()
    if settings.security == "ssl":
        server = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
    else:
        server = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with server:
        if settings.security == "starttls":
            server.starttls(context=context)
        if settings.user:
            server.login(settings.user, settings.password or "")
        server.send_message(message)
