"""Kinsight's errors: one root, one subclass per way input can be wrong.

Each class also inherits the standard exception a caller would expect
(``ValueError`` for bad data, ``OSError`` for storage), as cbor2 does, so code
that knows nothing of Kinsight still catches them sensibly. ``reason`` is the
short word rejected frames are counted under.
"""

from __future__ import annotations


class KinsightError(Exception):
    """Root of every error Kinsight raises on purpose."""

    reason = "error"

    def __init__(self, message: str, *, node_id: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.node_id = node_id
        if reason is not None:
            self.reason = reason


class FrameError(KinsightError, ValueError):
    """A frame was refused. Subclasses say at which step."""

    reason = "frame"


class DecodeError(FrameError):
    """The bytes are not one well-formed CBOR item of the wire subset."""

    reason = "decode"


class SchemaError(FrameError):
    """Well-formed CBOR, but not a frame that frames.cddl allows."""

    reason = "schema"


class AuthenticationError(FrameError):
    """The node is unknown or the frame's tag does not verify under its key."""

    reason = "bad_tag"


class ReplayError(FrameError):
    """(boot, seq) was already used by a different frame of this node."""

    reason = "replay"


class ReassemblyError(FrameError):
    """Fragments that cannot belong together."""

    reason = "reassembly"


class ReassemblyLimitError(ReassemblyError):
    """A message, a node or the host would exceed its reassembly memory limit."""

    reason = "reassembly_limit"


class CaptureError(KinsightError, ValueError):
    """A capture file is not in the capture format; nothing of it was ingested."""

    reason = "capture"


class StoreError(KinsightError, OSError):
    """The SQLite store cannot be opened or is not a Kinsight store."""

    reason = "store"


class StoreFullError(StoreError):
    """The disk (or the database's size limit) is full: the batch was rolled back, whole.
    Nothing of it is stored or acked; writing again once there is room succeeds."""

    reason = "store_full"


class ConfigError(KinsightError, ValueError):
    """A command-line or configuration value is not usable."""

    reason = "config"


class BundleError(KinsightError, ValueError):
    """A firmware bundle (an update over the air) that cannot be made or installed."""

    reason = "bundle"
