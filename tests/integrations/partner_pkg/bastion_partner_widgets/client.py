"""Widgets Inc.'s error envelope and rate signal, read into Bastion's shared error tree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.errors import ApiError, ApiQuotaExhausted, ApiRateLimited
from integrations.http import classify_status

if TYPE_CHECKING:
    import requests


def classify_response(response: requests.Response, path: str) -> ApiError | None:
    """Widgets answers errors as {"fault": {"kind", "reason"}} and says when to come back in Widgets-Retry-In (seconds)."""
    if 200 <= response.status_code < 400:
        return None
    try:
        fault = (response.json() or {}).get("fault") or {}
    except ValueError:
        fault = {}
    message = f"Widgets Inc.: {fault.get('reason') or 'request refused'}"
    kind = str(fault.get("kind") or "")
    if kind == "quota":  # the monthly ticket allowance, not a short throttle: retrying today does not help
        return ApiQuotaExhausted(message, status=response.status_code, vendor_code=kind, path=path)
    if response.status_code == 429:
        retry_in = float(response.headers.get("Widgets-Retry-In") or 1)
        return ApiRateLimited(message, retry_after=retry_in, status=429, vendor_code=kind, path=path)
    return classify_status(response, path, message=message, code=kind)
