"""Home Assistant entities over a real Mosquitto: discovery messages for the residents
who opted in only, their status and open alerts as the family's consent shares them,
no evidence or values, states published when they change."""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from typing import Any

from kinsight.alerts import AlertRouter, Policy
from kinsight.ingest.mqtt import parse_mqtt_url
from kinsight.learning import Finding
from kinsight.residents import place
from kinsight.service.homeassistant import HomeAssistant
from kinsight.store import Store
from support import Broker

POLICY = Policy.from_dict({"residents": {
    "ada": {"home_assistant": True, "name": "Ada Lovell", "consent": {"family": "urgent"}},
    "ben": {"consent": {"family": "all"}}}})


class Listener:
    """Everything published under the discovery prefix and Kinsight's own, retained too."""

    def __init__(self, broker: Broker):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.got: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(Broker.USER, Broker.PASSWORD)
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe([("homeassistant/#", 1), ("kinsight/ha/#", 1)])
        self.client.loop_start()
        assert done.wait(10)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.got[msg.topic] = json.loads(msg.payload)

    def wait_for(self, topic: str, timeout_s: float = 10) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if topic in self.got:
                    return self.got[topic]
            time.sleep(0.05)
        raise AssertionError(f"nothing on {topic}: {sorted(self.got)}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_opted_in_residents_appear_as_entities_with_only_what_family_may_see(
        tmp_path, broker):
    with Store(tmp_path / "h.db") as store:
        for n, r in ((1, "ada"), (2, "ben")):
            place(store, n, r, "hall")
        router = AlertRouter(POLICY, store, clock=lambda: 1_717_400_000_000)
        for r in ("ada", "ben"):
            router.raise_finding(r, date(2024, 6, 3), Finding(
                "uti", "digest", 3.0, "Toilet visits at night 4; usually 1"))
        ha = HomeAssistant(parse_mqtt_url(broker.url), POLICY)
        listener = Listener(broker)
        try:
            assert ha.publish(store) == 3
            config = listener.wait_for("homeassistant/sensor/kinsight_ada/status/config")
            assert config["state_topic"] == "kinsight/ha/ada/state"
            assert config["device"]["name"] == "Kinsight: Ada Lovell"
            state = listener.wait_for("kinsight/ha/ada/state")
            # ada's uti digest is not shared with family: calm, nothing open for them
            assert state == {"status": "calm", "open_alerts": 0, "alerts": []}
            assert ha.publish(store) == 0  # nothing changed, nothing sent
            urgent = router.raise_finding("ada", date(2024, 6, 3), Finding(
                "not_up", "urgent", 2.0, "Not seen up and about yet at 10:30"))
            assert urgent is not None
            assert ha.publish(store) == 1
            deadline = time.monotonic() + 10
            while listener.wait_for("kinsight/ha/ada/state")["status"] != "urgent":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            state = listener.wait_for("kinsight/ha/ada/state")
            assert state["open_alerts"] == 1
            assert state["alerts"] == [{"what": "Not up", "urgency": "urgent",
                                        "day": "2024-06-03"}]
            assert "10:30" not in json.dumps(listener.got)  # no evidence, no values
            assert not [t for t in listener.got if "ben" in t]  # ben did not opt in
        finally:
            listener.close()
            ha.close()
