"""How an alert reaches a person: webhooks and e-mail, each with retries and backoff.

A ``Transport`` sends one message and says how many attempts it took, or raises
``DeliveryError``; ``default_transports`` picks one per channel from the policy.
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from .policy import Policy

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    def __init__(self, message: str, attempts: int):
        super().__init__(message)
        self.attempts = attempts


class Transport(Protocol):
    def send(self, to: str, subject: str, body: str, payload: dict[str, Any]) -> int:
        """Deliver; the number of attempts it took. Raises DeliveryError."""
        ...


def _retry(what: str, retries: int, backoff_s: float, attempt: Callable[[], None]) -> int:
    last = ""
    for n in range(1, retries + 1):
        try:
            attempt()
            return n
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            log.warning("%s: attempt %d of %d failed: %s", what, n, retries, last)
            if n < retries:
                time.sleep(backoff_s * 2 ** (n - 1))
    raise DeliveryError(f"{what}: {last}", retries)


@dataclass
class WebhookTransport:
    """POSTs the payload as JSON to ``url``; a non-2xx answer or no answer is a failed
    attempt, retried with exponential backoff."""

    url: str
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0

    def send(self, to: str, subject: str, body: str, payload: dict[str, Any]) -> int:
        data = json.dumps(payload).encode()

        def attempt() -> None:
            req = urllib.request.Request(self.url, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                resp.read()

        return _retry(f"webhook {self.url}", self.retries, self.backoff_s, attempt)


@dataclass
class SmtpTransport:
    """Plain-text e-mail through an SMTP server (no authentication, no TLS: a local
    relay)."""

    host: str
    port: int
    sender: str
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0

    def send(self, to: str, subject: str, body: str, payload: dict[str, Any]) -> int:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg.set_content(body)

        def attempt() -> None:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                smtp.send_message(msg)

        return _retry(f"e-mail to {to}", self.retries, self.backoff_s, attempt)


TransportFactory = Callable[[str, str], "Transport | None"]  # (channel, target)


def default_transports(policy: Policy) -> TransportFactory:
    """Webhooks by URL; e-mail through the organisation's ``smtp`` {host, port, sender}."""
    smtp = policy.organisation.get("smtp")

    def make(channel: str, target: str) -> Transport | None:
        if channel == "webhook":
            return WebhookTransport(target)
        if channel == "email" and smtp:
            return SmtpTransport(smtp["host"], int(smtp.get("port", 25)), smtp["sender"])
        return None

    return make


