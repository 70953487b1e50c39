"""HubSpot's HTTP side: its error envelope, the rate budget it announces, dates as it writes them, per-integration settings."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import requests

from integrations.connectors.base import BaseConnector
from integrations.errors import ApiError
from integrations.http import classify_status, generic_error_message, response_json

SEARCH_RESULT_CEILING = 10_000  # HubSpot search refuses to page past this many results for one query
SEARCH_PAGE_MAX = 200
LIST_PAGE_MAX = 100
BATCH_MAX = 100
DEFAULT_MARKER_PROPERTY = "bastion_idempotency_key"

# HubSpot's default sales pipeline stage ids → Bastion deal stages (override per integration with config["stage_map"]).
DEFAULT_STAGE_MAP: dict[str, str] = {
    "appointmentscheduled": "qualifying",
    "qualifiedtobuy": "qualifying",
    "presentationscheduled": "proposal",
    "decisionmakerboughtin": "proposal",
    "contractsent": "negotiating",
    "closedwon": "won",
    "closedlost": "lost",
}
UNMAPPED_STAGE = "open"

OBJECT_PROPERTIES: dict[str, list[str]] = {
    "deals": ["dealname", "amount", "closedate", "dealstage", "pipeline", "hubspot_owner_id", "deal_currency_code", "createdate", "hs_lastmodifieddate"],
    "contacts": ["email", "firstname", "lastname", "jobtitle", "phone", "company", "department", "hubspot_owner_id", "createdate", "lastmodifieddate"],
    "companies": ["name", "domain", "industry", "annualrevenue", "createdate", "hs_lastmodifieddate"],
}
MODIFIED_PROPERTY = {"deals": "hs_lastmodifieddate", "companies": "hs_lastmodifieddate", "contacts": "lastmodifieddate"}


def hubspot_error_message(body: Any) -> tuple[str, str]:
    """(message, category) of HubSpot's {status, message, correlationId, category}; other answers by the shared shapes."""
    if isinstance(body, dict) and "category" in body and "message" in body:
        return str(body["message"]), str(body.get("category", ""))
    return generic_error_message(body)


def classify_hubspot_response(response: requests.Response, path: str) -> ApiError | None:
    """HubSpot's category (VALIDATION_ERROR, OBJECT_NOT_FOUND, RATE_LIMITS…) becomes the vendor_code; the status decides the class."""
    if 200 <= response.status_code < 400:
        return None
    message, code = hubspot_error_message(response_json(response))
    return classify_status(response, path, message=message, code=code)


def _ms(value: Any) -> int | None:
    """HubSpot datetimes arrive as ISO 8601 or ms epoch strings."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class HubSpotBase(BaseConnector):
    """What reading and acting share: the integration's settings and the budget HubSpot reports."""

    last_rate_limit: dict[str, int]
    _portal_id: str

    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        return classify_hubspot_response(response, path)

    def _observe_headers(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """Keep HubSpot's daily and burst budget from every response (errors included) for the rate limiter."""
        for header, key in (
            ("X-HubSpot-RateLimit-Daily", "daily_limit"),
            ("X-HubSpot-RateLimit-Daily-Remaining", "daily_remaining"),
            ("X-HubSpot-RateLimit-Max", "interval_max"),
            ("X-HubSpot-RateLimit-Remaining", "interval_remaining"),
        ):
            value = response.headers.get(header)
            if value and value.isdigit():
                self.last_rate_limit[key] = int(value)

    @property
    def page_size(self) -> int:
        return max(1, min(int(self.config.get("page_size") or LIST_PAGE_MAX), LIST_PAGE_MAX))

    @property
    def stage_map(self) -> dict[str, str]:
        configured = self.config.get("stage_map") or {}
        if isinstance(configured, str):
            configured = json.loads(configured or "{}")
        return {**DEFAULT_STAGE_MAP, **{str(k).lower(): v for k, v in configured.items()}}

    @property
    def marker_property(self) -> str:
        return str(self.config.get("idempotency_property") or DEFAULT_MARKER_PROPERTY)

    def _properties(self, entity: str) -> list[str]:
        extra = (self.config.get("extra_properties") or {}).get(entity, [])
        return list(dict.fromkeys(OBJECT_PROPERTIES[entity] + list(extra)))

    def _record_url(self, object_type_id: str, object_id: str) -> str:
        portal = self.config.get("portal_id") or self._portal_id
        return f"https://app.hubspot.com/contacts/{portal}/record/{object_type_id}/{object_id}" if portal else ""
