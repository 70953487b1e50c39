"""The one idempotency marker: what Bastion writes on an object it creates so a retry finds it instead of creating twice."""

from __future__ import annotations

import hashlib

MARKER_PREFIX = "bastion-"


def idempotency_marker(idempotency_key: str, *, length: int = 32, prefix: str = MARKER_PREFIX) -> str:
    """`bastion-<first length hex digits of sha256(key)>`: deterministic, label-safe (no spaces, colons or case).

    `prefix` is "" where a vendor's marker has never carried one (changing it would lose the objects made before).
    """
    return prefix + hashlib.sha256(idempotency_key.encode()).hexdigest()[:length]
