"""The MQTT transport over TLS against a real Mosquitto with a certificate from a
private authority the test makes: ``mqtts://`` with that authority's file connects and
stores frames; without it (the system's authorities) the broker is refused, named."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kinsight.bench.engines import Broker, free_port
from kinsight.errors import ConfigError
from kinsight.ingest import Ingestor
from kinsight.ingest.mqtt import MqttListener, parse_mqtt_url
from kinsight.residents import place
from kinsight.store import Store
from test_mqtt import KEYS, Nodes, stored


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on the PATH")
    where = tmp_path_factory.mktemp("tls-broker")
    ca_key, ca, key, csr, cert = (where / n for n in ("ca.key", "ca.pem", "server.key",
                                                      "server.csr", "server.pem"))
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj",
             "/CN=kinsight test authority")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = where / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    for f in (key, cert, ca):
        f.chmod(0o644)
    try:
        broker = Broker(where)
    except FileNotFoundError as exc:
        if os.environ.get("KINSIGHT_SYSTEM_PARTS") == "installed":
            raise
        pytest.skip(str(exc))
    # A second listener, over TLS, beside the plain one the helpers' nodes use.
    tls_port = free_port()
    broker.stop()
    broker.conf.write_text(broker.conf.read_text() + f"listener {tls_port} 127.0.0.1\n"
                           f"certfile {cert}\nkeyfile {key}\ncafile {ca}\n")
    broker.start()
    yield broker, tls_port, ca
    broker.stop()


def test_frames_over_tls_with_the_private_authority(tmp_path: Path, tls_broker):
    broker, tls_port, ca = tls_broker
    db = tmp_path / "tls.db"
    with Store(db) as store:
        store.set_node_key(1, KEYS[1], now_ms=0)
        place(store, 1, "r-1", "hall")
    url = f"mqtts://{Broker.USER}:{Broker.PASSWORD.replace(' ', '%20')}@127.0.0.1:{tls_port}"
    with Store(db) as store:
        listener = MqttListener(Ingestor(store, shared=True), parse_mqtt_url(url,
                                                                             ca_file=str(ca)))
        stop = threading.Event()
        thread = threading.Thread(target=listener.serve, kwargs={"stop": stop, "tick_s": 0.05},
                                  daemon=True)
        thread.start()
        nodes = Nodes(broker, [1])  # the nodes publish on the plain listener
        try:
            for seq in range(1, 6):
                nodes.send(1, seq)
            deadline = time.monotonic() + 15
            while nodes.unacked({1: range(1, 6)}):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            nodes.close()
            stop.set()
            thread.join(5)
            listener.close()
    assert stored(db) == [(1, s) for s in range(1, 6)]
    with Store(db) as store, pytest.raises(ConfigError, match="MQTT broker at mqtts://"):
        MqttListener(Ingestor(store), parse_mqtt_url(url), connect_timeout_s=3)
