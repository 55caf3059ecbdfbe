"""How an alert reaches a person: webhooks and e-mail, each with retries and backoff.

A ``Transport`` sends one message and says how many attempts it took, or raises
``DeliveryError``; ``default_transports`` picks one per channel from the policy.

Webhooks with a secret are signed: ``X-Kinsight-Timestamp`` is the Unix time in
seconds when the attempt was made, and ``X-Kinsight-Signature`` is ``sha256=`` and
the hex HMAC-SHA256, under the secret, of ``"<timestamp>.<body>"`` (the body as the
exact bytes sent). A receiver recomputes it, compares in constant time and refuses
a timestamp more than a few minutes old (``verify_signature`` does all three).

E-mail goes over TLS and checks the server's certificate and name against the
system's trusted authorities (or the policy's ``ca_file``): STARTTLS by default,
implicit TLS (SMTPS) when the policy says ``"tls": "implicit"``. A server that does
not offer STARTTLS is not used; plaintext only with ``"tls": "none"``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

from .policy import Policy

log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Kinsight-Timestamp"
SIGNATURE_HEADER = "X-Kinsight-Signature"
SIGNATURE_TOLERANCE_S = 300
SMTP_PORTS = {"starttls": 587, "implicit": 465, "none": 25}


class DeliveryError(Exception):
    def __init__(self, message: str, attempts: int):
        super().__init__(message)
        self.attempts = attempts


class Transport(Protocol):
    def send(self, to: str, subject: str, body: str, payload: dict[str, Any]) -> int:
        """Deliver; the number of attempts it took. Raises DeliveryError."""
        ...


# Trying again cannot help these: the same certificate, the same server without STARTTLS.
_FINAL = (ssl.SSLCertVerificationError, smtplib.SMTPNotSupportedError)


def _retry(what: str, retries: int, backoff_s: float, attempt: Callable[[], None]) -> int:
    last = ""
    for n in range(1, retries + 1):
        try:
            attempt()
            return n
        except _FINAL as exc:
            raise DeliveryError(f"{what}: {type(exc).__name__}: {exc}", n) from None
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            log.warning("%s: attempt %d of %d failed: %s", what, n, retries, last)
            if n < retries:
                time.sleep(backoff_s * 2 ** (n - 1))
    raise DeliveryError(f"{what}: {last}", retries)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Kinsight-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *,
                     now_s: float | None = None,
                     tolerance_s: float = SIGNATURE_TOLERANCE_S) -> bool:
    """What a receiver checks: the signature is ours over this timestamp and body, and
    the timestamp is within ``tolerance_s`` of now (so a recorded request cannot be
    replayed later)."""
    try:
        sent_s = int(timestamp)
    except ValueError:
        return False
    now = time.time() if now_s is None else now_s
    if abs(now - sent_s) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass
class WebhookTransport:
    """POSTs the payload as JSON to ``url``, signed when there is a ``secret``; a non-2xx
    answer or no answer is a failed attempt, retried with exponential backoff. Each
    attempt is signed afresh, so a retry is not refused as old."""

    url: str
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0
    secret: str | None = None
    clock_s: Callable[[], float] = field(default=time.time, repr=False)

    def send(self, to: str, subject: str, body: str, payload: dict[str, Any]) -> int:
        data = json.dumps(payload).encode()

        def attempt() -> None:
            headers = {"Content-Type": "application/json"}
            if self.secret:
                stamp = str(int(self.clock_s()))
                headers[TIMESTAMP_HEADER] = stamp
                headers[SIGNATURE_HEADER] = sign(self.secret, stamp, data)
            req = urllib.request.Request(self.url, data=data, method="POST", headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                    resp.read()
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, ssl.SSLCertVerificationError):
                    raise exc.reason from None  # final: not worth retrying
                raise

        return _retry(f"webhook {self.url}", self.retries, self.backoff_s, attempt)


@dataclass
class SmtpTransport:
    """Plain-text e-mail through an SMTP server, over TLS with the certificate checked
    (``tls``: "starttls", "implicit" or, only when asked for, "none"). ``ca_file``
    trusts a private authority instead of the system's (the name is still checked)."""

    host: str
    port: int
    sender: str
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0
    tls: str = "starttls"
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.tls not in SMTP_PORTS:
            raise ValueError(f"smtp tls must be one of {', '.join(SMTP_PORTS)}, not "
                             f"{self.tls!r}")

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def send(self, to: str, subject: str, body: str, payload: dict[str, Any]) -> int:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg.set_content(body)

        def attempt() -> None:
            if self.tls == "implicit":
                with smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s,
                                      context=self._context()) as smtp:
                    smtp.send_message(msg)
                return
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.tls == "starttls":
                    smtp.starttls(context=self._context())  # refuses a server without it
                smtp.send_message(msg)

        return _retry(f"e-mail to {to}", self.retries, self.backoff_s, attempt)


TransportFactory = Callable[[str, str], "Transport | None"]  # (channel, target)


def default_transports(policy: Policy) -> TransportFactory:
    """Webhooks by URL, signed with the member's (or the settings') ``webhook_secret``;
    e-mail through the organisation's ``smtp`` {host, port, sender, tls, ca_file}."""
    smtp = policy.organisation.get("smtp")
    secrets = policy.webhook_secrets()
    warned: set[str] = set()

    def make(channel: str, target: str) -> Transport | None:
        if channel == "webhook":
            secret = secrets.get(target)
            if secret is None and target not in warned:
                warned.add(target)
                log.warning("webhook %s has no webhook_secret: sent unsigned, so its "
                            "receiver cannot tell it came from Kinsight", target)
            return WebhookTransport(target, secret=secret)
        if channel == "email" and smtp:
            tls = smtp.get("tls", "starttls")
            return SmtpTransport(smtp["host"], int(smtp.get("port", SMTP_PORTS[tls])),
                                 smtp["sender"], tls=tls, ca_file=smtp.get("ca_file"))
        return None

    return make
