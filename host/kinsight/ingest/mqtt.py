"""MQTT transport, host side: frames from a broker, acks back through it.

Gateways and nodes publish each frame as a binary payload on
``kinsight/<household>/<node>/up``. An ingest worker subscribes with a shared
subscription (``$share/ingest/kinsight/+/+/up``, MQTT v5, QoS 1), so several
workers share the stream and the broker gives each message to one of them. The
messages that arrive together are ingested in one transaction; only after the
commit are Kinsight's acks published on ``kinsight/<household>/<node>/down`` and
the MQTT messages acknowledged to the broker (manual PUBACK). A worker that dies
before its commit acknowledged nothing: what it held is not stored, not acked, and
the node sends it again. MQTT only carries: the guarantee is Kinsight's own ack.

Acks go to the household a node's new frames came from (only the node can make a
new frame that verifies); a frame published under another node's topic is stored
(it verified) but not answered. A message on a topic that is not a node's uplink is
refused, counted under ``rejected["mqtt topic"]``. With a full disk, nothing of the
batch is stored or acknowledged, and the worker reconnects so that the broker
forgets what it had in flight: the nodes send again.

Broker address, credentials and TLS come from an ``mqtt://`` or ``mqtts://`` URL
(``parse_mqtt_url``).
"""

from __future__ import annotations

import logging
import queue
import re
import ssl
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError, StoreFullError
from .ingestor import (
    NEW_FRAME,
    AfterBatch,
    FrameResult,
    Ingestor,
    IngestStats,
    call_after_batch,
    event_nodes,
    serve_until,
)

log = logging.getLogger(__name__)

PREFIX = "kinsight"
SHARE_GROUP = "ingest"
_UP = re.compile(r"^([^/#+]+)/([^/#+]{1,64})/(\d{1,10})/up$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class MqttSettings:
    """Where the broker is and how to sign in to it."""

    host: str
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None  # trust this authority instead of the system's
    prefix: str = PREFIX
    share_group: str = SHARE_GROUP
    client_id: str | None = None  # None: a fresh one

    @property
    def where(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def subscription(self) -> str:
        return f"$share/{self.share_group}/{self.prefix}/+/+/up"


def parse_mqtt_url(text: str, *, ca_file: str | None = None) -> MqttSettings:
    """``mqtt://[user[:password]@]host[:port][?group=NAME]`` (``mqtts://`` for TLS).

    >>> s = parse_mqtt_url("mqtt://ingest:s3cret@127.0.0.1:1884?group=north")
    >>> (s.host, s.port, s.username, s.password, s.subscription)
    ('127.0.0.1', 1884, 'ingest', 's3cret', '$share/north/kinsight/+/+/up')
    >>> parse_mqtt_url("mqtts://broker.example.org").port
    8883
    """
    try:
        u = urlsplit(text)
        port = u.port
    except ValueError as exc:
        raise ConfigError(f"{text!r} is not an MQTT URL ({exc})") from None
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise ConfigError(f"{text!r} is not an MQTT URL: mqtt://HOST[:PORT] or "
                          "mqtts://HOST[:PORT] (for TLS)")
    params = dict(p.split("=", 1) for p in u.query.split("&") if "=" in p)
    group = params.pop("group", SHARE_GROUP)
    prefix = params.pop("prefix", PREFIX)
    if params:
        raise ConfigError(f"{text!r}: unknown parameters {sorted(params)} (group, prefix)")
    for what, value in (("group", group), ("prefix", prefix)):
        if not _NAME.match(value):
            raise ConfigError(f"{text!r}: {what} {value!r} must be 1 to 64 letters, digits, "
                              "'.', '_' or '-'")
    tls = u.scheme == "mqtts"
    return MqttSettings(u.hostname, port or (8883 if tls else 1883), tls,
                        unquote(u.username) if u.username else None,
                        unquote(u.password) if u.password else None, ca_file, prefix, group)


def up_topic(household: str, node_id: int, prefix: str = PREFIX) -> str:
    return f"{prefix}/{household}/{node_id}/up"


def down_topic(household: str, node_id: int, prefix: str = PREFIX) -> str:
    return f"{prefix}/{household}/{node_id}/down"


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    session: int  # which connection it came on: a PUBACK only means something on that one


class MqttListener:
    """Frames from the broker into ``ingestor``; see the module's docstring."""

    def __init__(self, ingestor: Ingestor, settings: MqttSettings, *,
                 after_batch: AfterBatch | None = None, batch_max: int = 64,
                 connect_timeout_s: float = 10.0):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.ingestor = ingestor
        self.settings = settings
        self.after_batch = after_batch
        self.batch_max = batch_max
        self.messages = 0
        self.acks_sent = 0
        self.node_households: dict[int, str] = {}
        self._inbox: queue.Queue[_Message] = queue.Queue()
        self._session = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._closing = False
        client_id = settings.client_id or f"kinsight-ingest-{uuid.uuid4().hex[:12]}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5, manual_ack=True)
        if settings.username is not None:
            self.client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            ctx = ssl.create_default_context(cafile=settings.ca_file)
            self.client.tls_set_context(ctx)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        try:
            self.client.connect(settings.host, settings.port, keepalive=30, clean_start=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot reach the MQTT broker at {settings.where}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
        self.client.loop_start()
        if not self._subscribed.wait(connect_timeout_s):
            why = self._refused or "no answer"
            self.close()
            raise ConfigError(f"the MQTT broker at {settings.where} did not take the "
                              f"subscription ({why})")

    _refused: str | None = None

    # --- the client's thread

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        del userdata, flags, properties
        if reason.is_failure:
            self._refused = f"connection refused: {reason}"
            log.warning("MQTT broker %s refused the connection: %s", self.settings.where,
                        reason)
            return
        self._session += 1
        self._connected.set()
        client.subscribe(self.settings.subscription, qos=1)
        log.info("MQTT connected to %s, subscribing to %s", self.settings.where,
                 self.settings.subscription)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        del client, userdata, mid, properties
        if any(r.is_failure for r in reasons):
            self._refused = f"subscription refused: {', '.join(str(r) for r in reasons)}"
            log.warning("MQTT broker %s: %s", self.settings.where, self._refused)
            return
        self._subscribed.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        del client, userdata, flags, properties
        self._connected.clear()
        if not self._closing:
            log.warning("MQTT broker %s gone (%s); reconnecting", self.settings.where, reason)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        del client, userdata
        self._inbox.put(_Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos,
                                 self._session))

    # --- the listener's thread

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def close(self) -> None:
        self._closing = True
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def serve(self, *, stop: threading.Event | None = None, idle_exit_s: float | None = None,
              tick_s: float = 0.2) -> IngestStats:
        """Serve until stop is set, or until idle_exit_s pass without a message."""
        return serve_until(self.ingestor, self.after_batch,
                           lambda wait_s: self.serve_ready(wait_s) > 0, stop=stop,
                           idle_exit_s=idle_exit_s, tick_s=tick_s)

    def serve_ready(self, wait_s: float = 0.0) -> int:
        """Ingest the messages waiting (waiting ``wait_s`` for a first); how many."""
        for node_id, ack in self.ingestor.announcements():  # updates staged since
            household = self.node_households.get(node_id)
            if household is not None:
                self.client.publish(down_topic(household, node_id, self.settings.prefix), ack,
                                    qos=1)
        try:
            batch = [self._inbox.get(timeout=wait_s) if wait_s > 0 else
                     self._inbox.get_nowait()]
        except queue.Empty:
            return 0
        while len(batch) < self.batch_max:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        self.messages += len(batch)
        frames: list[tuple[bytes, int]] = []
        origin: list[tuple[str, int]] = []  # (household, topic's node) of each frame
        for m in batch:
            found = _UP.match(m.topic)
            if found is None or found.group(1) != self.settings.prefix:
                self.ingestor.stats.rejected["mqtt topic"] += 1
                log.info("MQTT message on %r refused: not a node's uplink topic", m.topic)
                continue
            frames.append((m.payload, self.ingestor.clock_ms()))
            origin.append((found.group(2), int(found.group(3))))
        results: list[FrameResult] = []
        if frames:
            try:
                results = self.ingestor.ingest_batch(frames)
            except StoreFullError:
                # Nothing stored: acknowledge nothing, and start a new session so that
                # the broker forgets what it had in flight (the nodes send it again).
                self._restart_session()
                return len(batch)
            self._answer(origin, results)
        # Stored (or refused for good): only now does the broker hear that we have it.
        for m in batch:
            if m.qos > 0 and m.session == self._session:
                self.client.ack(m.mid, m.qos)
        if frames:
            call_after_batch(self.after_batch, event_nodes(results))
        return len(batch)

    def _answer(self, origin: list[tuple[str, int]], results: list[FrameResult]) -> None:
        for (household, topic_node), r in zip(origin, results, strict=True):
            if r.status in NEW_FRAME and r.node_id is not None and r.node_id == topic_node:
                known = self.node_households.get(r.node_id)
                if known != household:
                    if known is not None:
                        log.info("node %d now publishes under %s (was %s)", r.node_id,
                                 household, known)
                    self.node_households[r.node_id] = household
        answer = {r.node_id for (household, topic_node), r in zip(origin, results, strict=True)
                  if r.status != "rejected" and r.node_id is not None
                  and r.node_id == topic_node
                  and self.node_households.get(r.node_id) == household}
        for node_id, ack in self.ingestor.acks:
            if node_id not in answer:
                continue
            info = self.client.publish(down_topic(self.node_households[node_id], node_id,
                                                  self.settings.prefix), ack, qos=1)
            if info.rc == 0:
                self.acks_sent += 1
            else:
                log.info("ack to node %d not published (%s)", node_id, info.rc)

    def _restart_session(self) -> None:
        self._session += 1  # what came before is not ours to acknowledge any more
        try:
            self.client.reconnect()
        except OSError as exc:
            log.warning("MQTT reconnect after a full disk failed: %s", exc)
