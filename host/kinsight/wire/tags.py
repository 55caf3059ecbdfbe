"""Frame tags: HMAC-SHA256 under the node's key, truncated to the wire's tag length.

A host checks many frames under the same few keys, so a key can be given as a
keyed HMAC object (``keyed_mac``): each check then copies its state instead of
hashing the key's pads again.

>>> key = bytes(range(32))
>>> frame_tag(keyed_mac(key), b"signed") == frame_tag(key, b"signed")
True
"""

from __future__ import annotations

import hashlib
import hmac

import kinsight_wire as wire

from ..errors import AuthenticationError

__all__ = ["TagKey", "frame_tag", "keyed_mac", "verify_tag"]

#: A node's key as bytes, or keyed once (see keyed_mac).
TagKey = bytes | hmac.HMAC


def keyed_mac(key: bytes) -> hmac.HMAC:
    """The key's HMAC-SHA256 state before any message: copy it, never update it."""
    return hmac.new(key, digestmod=hashlib.sha256)


def frame_tag(key: TagKey, signed: bytes) -> bytes:
    """HMAC-SHA256 of the signed bytes, truncated to the wire's tag length."""
    if type(key) is bytes:
        return hmac.digest(key, signed, hashlib.sha256)[: wire.TAG_LEN]
    mac = key.copy()  # type: ignore[union-attr]
    mac.update(signed)
    return mac.digest()[: wire.TAG_LEN]


def verify_tag(raw: bytes, key: TagKey, *, node_id: int | None = None) -> None:
    """Raise AuthenticationError unless the frame's last 8 bytes are its tag under key."""
    good = frame_tag(key, raw[: -wire.TAG_ITEM_LEN])
    if not hmac.compare_digest(good, raw[-wire.TAG_LEN :]):
        raise AuthenticationError(
            f"frame tag does not verify under the key of node {node_id}", node_id=node_id
        )
