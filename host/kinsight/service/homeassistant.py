"""Home Assistant: each resident's status and open alerts as entities, over MQTT discovery.

For the residents whose alert policy says ``"home_assistant": true``, the service
publishes, retained, Home Assistant's MQTT discovery messages (under
``homeassistant/sensor/...``) for two sensors per resident: their status (``calm``,
``equipment``, ``to look at`` or ``urgent``, as the care team's board ranks it) and
the number of open alerts, whose attributes name each one (what, how urgent, which
day). It says only what the resident's consent shares with family, as the household
running Home Assistant is family's: no evidence, no values, no raw data. States are
published when they change, and again on every reconnection (retained either way).

    HomeAssistant(settings, policy).publish(store)   # once a round, from the service
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

from ..alerts import Policy, list_alerts
from ..ingest.mqtt import MqttSettings
from ..learning import condition_words
from ..residents import residents
from ..store import Store

log = logging.getLogger(__name__)

DISCOVERY_PREFIX = "homeassistant"
ORDER = ("calm", "equipment", "to look at", "urgent")


def _slug(resident: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", resident.lower())[:60]


def resident_states(store: Store, policy: Policy) -> dict[str, dict[str, Any]]:
    """What Home Assistant is told of each opted-in resident (family's consent only)."""
    opted = [r for r in residents(store) if policy.for_resident(r).home_assistant]
    if not opted:
        return {}
    open_by: dict[str, list[Any]] = {}
    for a in list_alerts(store, state="open"):
        open_by.setdefault(a.resident, []).append(a)
    out = {}
    for r in opted:
        rp = policy.for_resident(r)
        shared = [a for a in open_by.get(r, []) if rp.consents("family", a.condition,
                                                               a.severity)]
        status = ("urgent" if any(a.severity == "urgent" for a in shared) else
                  "to look at" if any(a.condition != "device" for a in shared) else
                  "equipment" if shared else "calm")
        out[r] = {"name": rp.name or r, "status": status, "open_alerts": len(shared),
                  "alerts": [{"what": condition_words(a.condition), "urgency": a.severity,
                              "day": a.day} for a in shared]}
    return out


class HomeAssistant:
    """Publishes ``resident_states`` as Home Assistant entities through ``settings``'
    broker; see the module's docstring."""

    def __init__(self, settings: MqttSettings, policy: Policy, *,
                 discovery_prefix: str = DISCOVERY_PREFIX, connect_timeout_s: float = 10.0):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.settings = settings
        self.policy = policy
        self.discovery = discovery_prefix
        self.published = 0
        self._said: dict[str, str] = {}  # topic -> payload last published
        self._connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=f"kinsight-ha-{settings.share_group}")
        if settings.username is not None:
            self.client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            import ssl

            self.client.tls_set_context(ssl.create_default_context(cafile=settings.ca_file))
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self._connected.clear()
        self.client.connect(settings.host, settings.port, keepalive=60)
        self.client.loop_start()
        self._connected.wait(connect_timeout_s)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        del client, userdata, flags, properties
        if not reason.is_failure:
            self._said.clear()  # the broker may have lost what it kept: say it all again
            self._connected.set()

    def _put(self, topic: str, payload: dict[str, Any] | str) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, sort_keys=True)
        if self._said.get(topic) == text:
            return
        info = self.client.publish(topic, text, qos=1, retain=True)
        if info.rc == 0:
            self._said[topic] = text
            self.published += 1

    def publish(self, store: Store) -> int:
        """Publish what changed; how many messages went out."""
        if not self._connected.is_set():
            return 0
        before = self.published
        base = f"{self.settings.prefix}/ha"
        for r, state in resident_states(store, self.policy).items():
            slug = _slug(r)
            device = {"identifiers": [f"kinsight_{slug}"], "name": f"Kinsight: {state['name']}",
                      "manufacturer": "Kinsight"}
            state_topic = f"{base}/{slug}/state"
            self._put(f"{self.discovery}/sensor/kinsight_{slug}/status/config", {
                "name": "Status", "unique_id": f"kinsight_{slug}_status",
                "state_topic": state_topic, "value_template": "{{ value_json.status }}",
                "device": device, "icon": "mdi:account-heart"})
            self._put(f"{self.discovery}/sensor/kinsight_{slug}/open_alerts/config", {
                "name": "Open alerts", "unique_id": f"kinsight_{slug}_open_alerts",
                "state_topic": state_topic, "value_template": "{{ value_json.open_alerts }}",
                "json_attributes_topic": state_topic,
                "json_attributes_template": "{{ {'alerts': value_json.alerts} | tojson }}",
                "device": device, "icon": "mdi:bell-alert"})
            self._put(state_topic, {k: state[k] for k in ("status", "open_alerts", "alerts")})
        return self.published - before

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
