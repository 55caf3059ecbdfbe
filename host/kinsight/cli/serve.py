"""``kinsight serve``: the always-on service (``service.serve``), its HTTP endpoints
(``web``), its configuration file and its logs, started and stopped by a supervisor."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import threading
import time
from datetime import datetime
from typing import Any

from ..errors import ConfigError
from ..ingest.mqtt import parse_mqtt_url
from ..ingest.udp import parse_hostport


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and the trace, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage()}
        if record.exc_info:
            out["trace"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration file's settings with the flags over them."""
    from ..service import config

    merged: dict[str, Any] = config.load(args.config) if args.config else {}
    flags = {"db": args.db, "udp": args.udp, "serial": args.serial, "baudrate": args.baud,
             "mqtt": args.mqtt, "mqtt_ca_file": args.mqtt_ca_file, "worker": args.worker,
             "home_assistant": True if args.home_assistant else None,
             "http": args.http, "policy": args.policy, "tick_s": args.tick,
             "alert_log": args.alert_log, "log_format": args.log_format}
    if args.morning is not None:
        flags.update(config.settings_from({"morning": args.morning}))
    merged.update({k: v for k, v in flags.items() if v is not None})
    if not merged.get("db"):
        raise ConfigError("serve needs --db (or db in the --config file)")
    if not merged.get("udp") and not merged.get("serial") and not merged.get("mqtt"):
        raise ConfigError("serve needs a transport: --udp HOST:PORT, --serial PORT and/or "
                          "--mqtt URL")
    if merged.get("mqtt"):
        parse_mqtt_url(merged["mqtt"])
    for key in ("udp", "http"):
        if merged.get(key):
            parse_hostport(merged[key])
    return merged


def _simulated_clock(text: str) -> Any:
    """START[xRATE]: the service's clock starts at START (ISO 8601) and runs RATE times
    as fast as the wall clock (for demonstrations and tests of days in minutes)."""
    start_text, _, rate_text = text.partition("x")
    try:
        start = datetime.fromisoformat(start_text)
        rate = float(rate_text) if rate_text else 1.0
    except ValueError:
        raise ConfigError(f"--clock {text!r} is not START[xRATE], e.g. "
                          "2024-03-04T06:00:00+00:00x600") from None
    if start.tzinfo is None or not 0 < rate <= 100_000:
        raise ConfigError(f"--clock {text!r}: START needs a UTC offset and RATE must be "
                          "0..100000")
    t0_ms, wall0 = start.timestamp() * 1000, time.monotonic()
    return lambda: int(t0_ms + (time.monotonic() - wall0) * 1000 * rate)


def do_serve(args: argparse.Namespace) -> int:
    from ..alerts import Policy
    from ..service.serve import Service, ServiceSettings

    merged = _settings(args)
    if merged.get("log_format") == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
        logging.getLogger().setLevel(logging.INFO)
    policy = Policy.load(merged["policy"]) if merged.get("policy") else Policy()
    settings = ServiceSettings(
        db=merged["db"], udp=parse_hostport(merged["udp"]) if merged.get("udp") else None,
        serial=merged.get("serial"), baudrate=int(merged.get("baudrate", 115200)),
        mqtt=parse_mqtt_url(merged["mqtt"], ca_file=merged.get("mqtt_ca_file"))
        if merged.get("mqtt") else None, worker=merged.get("worker"),
        home_assistant=bool(merged.get("home_assistant", False)),
        morning_min=int(merged.get("morning_min", 7 * 60 + 30)),
        tick_s=float(merged.get("tick_s", 60.0)), alert_log=merged.get("alert_log"),
        stale_after_s=float(merged.get("stale_after_s", 4 * 3600.0)))
    clock = _simulated_clock(args.clock) if args.clock else None
    service = Service(settings, policy, **({"clock": clock} if clock else {}))
    http_sock = None
    if merged.get("http"):
        host, port = parse_hostport(merged["http"])
        try:
            http_sock = socket.create_server((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot serve HTTP on {host}:{port}: "
                              f"{exc.strerror or exc}") from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server: Any = None
    server_thread: threading.Thread | None = None
    try:
        for line in service.start():
            print(f"listening {line}", flush=True)
        if http_sock is not None:
            server, server_thread = _http(service, http_sock)
        logging.getLogger("kinsight.serve").info("serving")
        while not stop.wait(0.5):
            pass
    finally:
        if server is not None:
            server.should_exit = True
            if server_thread is not None:
                server_thread.join(5)
            server.config.app.state.store.close()
            server.config.app.state.care.store.close()
        elif http_sock is not None:
            http_sock.close()
        service.stop()
    print("stopped", flush=True)
    return 0


def _http(service: Any, sock: socket.socket) -> tuple[Any, threading.Thread]:
    import uvicorn

    from ..web import make_app

    app = make_app(service)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="kinsight-http")
    thread.start()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    print(f"listening http http://{shown}:{port}", flush=True)
    return server, thread
