"""Okta's HTTP side: its error envelope, the X-Rate-Limit-* budget it announces, and Link paging with a throttle."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests

from integrations.errors import ApiError, ApiRateLimited
from integrations.http import classify_status, generic_error_message, response_json

logger = logging.getLogger(__name__)


def classify_okta_response(response: requests.Response, path: str) -> ApiError | None:
    """Okta answers errors as {errorCode, errorSummary, errorCauses}; its OAuth endpoints as {error, error_description}."""
    if 200 <= response.status_code < 400:
        return None
    body = response_json(response)
    if isinstance(body, dict) and "errorSummary" in body:
        message, code = str(body["errorSummary"]), str(body.get("errorCode", ""))
    else:
        message, code = generic_error_message(body)
    return classify_status(response, path, message=message, code=code)


class OktaRateMixin:
    """For OktaConnector: learn the per-minute budget from every answer and pause before it runs out."""

    config: dict[str, Any]
    client: Any
    rate: dict[str, int]
    throttle_waits: list[float]
    _sleep: Callable[[float], None]

    def _observe_rate(self, response: Any, *args: Any, **kwargs: Any) -> None:
        for header, key in (("X-Rate-Limit-Limit", "limit"), ("X-Rate-Limit-Remaining", "remaining"), ("X-Rate-Limit-Reset", "reset")):
            value = response.headers.get(header)
            if value and value.strip().isdigit():
                self.rate[key] = int(value)

    def _throttle(self) -> None:
        """Pause before the budget runs out (Okta counts per minute window); a long wait is handed back as ApiRateLimited to re-queue."""
        remaining, reset, limit = self.rate.get("remaining"), self.rate.get("reset"), self.rate.get("limit") or 0
        low_water = int(self.config.get("rate_limit_reserve") or max(1, limit // 20))
        if remaining is None or reset is None or remaining > low_water:
            return
        wait = reset - time.time()
        if wait <= 0:
            return
        if wait > float(self.config.get("max_inline_wait") or 10):
            raise ApiRateLimited("Okta rate limit budget is nearly spent; retry after the window resets.", retry_after=wait, status=None)
        logger.info("okta.rate_limit.throttle", extra={"remaining": remaining, "wait": round(wait, 2)})
        self.throttle_waits.append(wait)
        self._sleep(wait)
        self.rate.pop("remaining", None)

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        self._throttle()
        return self.client.get(path, params=params)

    def _pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[tuple[Any, Any]]:
        """Follow Link rel="next" verbatim (the `after` cursor is opaque), throttled before each page.

        Not HttpClient.paginate_link: the budget check must run before every page request, inside the loop.
        """
        url: str | None = path
        query = params
        while url:
            response = self._get(url, query)
            yield response.json(), response
            url = response.links.get("next", {}).get("url")
            query = None
