"""Alerts: who hears about a finding, when and how, and what they said back.

``policy`` reads the alert policy (care circle, consent, quiet hours, throttle,
snoozes, holidays), checked against ``policy_schema``; ``records`` keeps the alerts,
deliveries, audit trail and learnt sensitivity; ``router.AlertRouter`` raises a
Finding as an alert once, delivers what is due and takes acknowledgements;
``transports`` sends by webhook (signed) or e-mail (over TLS) with retries;
``worker.DeliveryWorker`` sends from a thread of its own. The policy file's format
is in docs/alerts.md.

May import: kinsight.errors, kinsight.store, kinsight.residents, kinsight.learning.
"""

from __future__ import annotations

from .policy import ROLES, Member, Policy, ResidentPolicy
from .records import AlertRecord, get_alert, learned_sensitivity, list_alerts
from .router import OUTCOMES, AlertRouter
from .transports import (
    DeliveryError,
    SmtpTransport,
    Transport,
    TransportFactory,
    WebhookTransport,
    default_transports,
    sign,
    verify_signature,
)
from .worker import DeliveryWorker

__all__ = ["OUTCOMES", "ROLES", "AlertRecord", "AlertRouter", "DeliveryError", "DeliveryWorker",
           "Member", "Policy", "ResidentPolicy", "SmtpTransport", "Transport",
           "TransportFactory", "WebhookTransport", "default_transports", "get_alert",
           "learned_sensitivity", "list_alerts", "sign", "verify_signature"]
