"""Webhook signatures and replay windows, written once: constant-time comparison, one window, one set of answers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable
from datetime import datetime

from integrations.errors import WebhookRejected

REPLAY_WINDOW_SECONDS = 300  # every vendor that timestamps its deliveries allows five minutes


def hmac_digest(secret: str | bytes, message: bytes, *, algorithm: str = "sha256", encoding: str = "hex") -> str:
    """HMAC of `message` as hex or base64 text (the two encodings vendors use)."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, message, getattr(hashlib, algorithm))
    return digest.hexdigest() if encoding == "hex" else base64.b64encode(digest.digest()).decode()


def require_header(value: str | None, header: str, vendor: str) -> str:
    """The header's value, or a 400 naming it."""
    if not value:
        raise WebhookRejected(400, "missing_signature", f"{vendor}: the {header} header is required.")
    return value


def verify_hmac(
    received: str | Iterable[str],
    *,
    secret: str | bytes,
    message: bytes,
    algorithm: str = "sha256",
    encoding: str = "hex",
    prefix: str = "",
    vendor: str = "The vendor",
) -> None:
    """Raise 401 unless one of the received signatures (several during a secret rotation) is the HMAC of `message`."""
    expected = prefix + hmac_digest(secret, message, algorithm=algorithm, encoding=encoding)
    candidates = [received] if isinstance(received, str) else list(received)
    if not secret or not any(hmac.compare_digest(expected.encode(), candidate.strip().encode()) for candidate in candidates):
        raise WebhookRejected(401, "bad_signature", f"{vendor}: the signature does not match this integration's webhook secret.")


def equal_secret(received: str | None, secret: str) -> bool:
    """Constant-time comparison of a static shared secret (Okta's header, Google's channel token)."""
    return bool(received) and bool(secret) and hmac.compare_digest(str(received).encode(), secret.encode())


def epoch_seconds(value: str | int | float | datetime | None, *, unit: str = "s") -> float:
    """A delivery's timestamp as epoch seconds: `unit` "s" or "ms" for numbers, ISO 8601 text, or a datetime; 400 if unreadable."""
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        if isinstance(value, str) and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise WebhookRejected(400, "bad_timestamp", "The delivery's timestamp is missing or unreadable.") from None
    return number / 1000 if unit == "ms" else number


def check_window(timestamp: float, *, now: float | None = None, window: int = REPLAY_WINDOW_SECONDS, vendor: str = "The vendor") -> None:
    """409 when the delivery is further than `window` seconds from now, either way (a replay, or a forged future stamp)."""
    current = time.time() if now is None else now
    if abs(current - timestamp) > window:
        raise WebhookRejected(409, "stale_timestamp", f"{vendor}: the delivery is more than {window // 60} minutes from now (possible replay).")
