"""The ways in to a virtual node's REPL: its pseudo-terminal and TCP clients.

Each is a non-blocking file descriptor with an output queue, so a client that
stops reading holds up neither the node nor the other clients.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

OUTPUT_CAP = 1 << 20


class Endpoint:
    """One way in to the REPL: the pty master or a TCP client, with its output queue."""

    def __init__(self, name: str, fd: int, conn: socket.socket | None = None) -> None:
        self.name = name
        self.fd = fd
        self.conn = conn
        self.out = bytearray()
        os.set_blocking(fd, False)

    def read(self) -> bytes | None:
        """Bytes from the client; None when it went away."""
        try:
            if self.conn is not None:
                data = self.conn.recv(65536)
                return data or None
            return os.read(self.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return None if self.conn is not None else b""

    def flush(self) -> None:
        while self.out:
            try:
                if self.conn is not None:
                    n = self.conn.send(self.out)
                else:
                    n = os.write(self.fd, self.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("%s: write failed: %s", self.name, exc)
                self.out.clear()
                return
            del self.out[:n]

    def write(self, data: bytes) -> None:
        self.out += data
        if len(self.out) > OUTPUT_CAP:  # nobody reads: drop the oldest, as a UART would
            del self.out[:len(self.out) - OUTPUT_CAP]
        self.flush()

