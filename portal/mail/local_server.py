"""A real SMTP server on 127.0.0.1 for the demo and the tests (aiosmtpd): Leadpath's mails go through SMTP
exactly as in production, and what it received can be read back (`messages`)."""
import logging
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

KEEP = 500  # received messages kept in memory, newest last


class _Collector:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
            del self.messages[:-KEEP]
        return "250 Message accepted for delivery"


class LocalSmtpServer:
    """Started with `start()` on a free port (or the one given); `stop()` ends it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._collector = _Collector()
        self._controller = Controller(self._collector, hostname=host, port=self.port)

    def start(self) -> "LocalSmtpServer":
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every connection at INFO
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self._collector.lock:
            return list(self._collector.messages)

    def settings(self) -> dict:
        """The app settings that send mail here."""
        return {"MAIL_SMTP_HOST": self.host, "MAIL_SMTP_PORT": self.port, "MAIL_SMTP_SECURITY": "none",
                "MAIL_SMTP_USER": None, "MAIL_SMTP_PASSWORD": None}


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
