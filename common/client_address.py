"""The client's address, as the sign-in lockout, the throttles and the audit trail see it.

X-Forwarded-For is written by whoever sends the request, so it is read only when BASTION_TRUSTED_PROXY_COUNT says how many
proxies in front of Bastion append to it; the address those proxies saw is then the count-th entry from the right.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _clean(value: str) -> str | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_address(request: HttpRequest | None) -> str | None:
    """REMOTE_ADDR, or the address the configured number of trusted proxies recorded; never a client-chosen header otherwise."""
    if request is None:
        return None
    remote = _clean(request.META.get("REMOTE_ADDR") or "")
    trusted = max(0, int(getattr(settings, "BASTION_TRUSTED_PROXY_COUNT", 0) or 0))
    forwarded = [part for part in (request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",") if part.strip()]
    if trusted and forwarded:
        # Fewer entries than proxies: the request skipped a proxy, so the leftmost entry is the best the proxies vouch for.
        return _clean(forwarded[max(0, len(forwarded) - trusted)]) or remote
    return remote
