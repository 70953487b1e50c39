"""The one HTTP client every HTTP connector uses: base URL, auth, timeouts, retries, limits, call log."""

from __future__ import annotations

import email.utils
import logging
import random
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import orjson
import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from urllib3.exceptions import NameResolutionError

from common import metrics
from integrations.call_records import record_later
from integrations.errors import (
    ApiBadRequest,
    ApiConflict,
    ApiError,
    ApiForbidden,
    ApiHostError,
    ApiNotFound,
    ApiRateLimited,
    ApiTimeout,
    ApiUnauthorized,
    UnsafeBaseUrl,
)
from integrations.pinning import PinnedAdapter, PinningGuard
from integrations.ssrf import host_unresolved

logger = logging.getLogger(__name__)


DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
MAX_REDIRECTS = 5
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class CallRecord:
    """What is kept of every call: never a secret, never a body."""

    method: str
    path: str
    status: int | None
    latency_ms: float
    ok: bool
    error: str = ""
    attempt: int = 1
    vendor_code: str = ""


# Turns one response into None (success) or the shared error tree; each connector declares its own (classify_response).
ResponseClassifier = Callable[[requests.Response, str], "ApiError | None"]


class AuthProvider(Protocol):
    def apply(self, headers: dict[str, str]) -> None: ...

    def refresh(self) -> bool:
        """Refresh after a 401; return True if the request should be retried."""
        ...


class RateLimiter(Protocol):
    def acquire(self) -> None:
        """Block briefly or raise ApiRateLimited / ApiQuotaExhausted."""
        ...

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from vendor rate headers (daily usage, remaining budget)."""
        ...


class BearerAuth:
    def __init__(self, token: str):
        self._token = token

    def apply(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = f"Bearer {self._token}"

    def refresh(self) -> bool:
        return False


class BasicAuth:
    def __init__(self, username: str, password: str):
        self._auth = requests.auth._basic_auth_str(username, password)

    def apply(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = self._auth

    def refresh(self) -> bool:
        return False


class HeaderAuth:
    """A fixed header such as `Authorization: SSWS <token>` or `X-Api-Key`."""

    def __init__(self, name: str, value: str):
        self._name, self._value = name, value

    def apply(self, headers: dict[str, str]) -> None:
        headers[self._name] = self._value

    def refresh(self) -> bool:
        return False


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """Longest wait any known header asks for (Retry-After, X-RateLimit-Reset, X-Rate-Limit-Reset)."""
    waits: list[float] = []
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if retry_after is not None:
        waits.append(retry_after)
    for name in ("X-RateLimit-Reset", "X-Rate-Limit-Reset"):
        raw = headers.get(name)
        if not raw:
            continue
        raw = raw.strip()
        if re.fullmatch(r"\d{9,}", raw):  # epoch seconds
            waits.append(max(0.0, float(raw) - time.time()))
        else:
            parsed = parse_retry_after(raw)
            if parsed is not None:
                waits.append(parsed)
    return max(waits) if waits else None


def decode_json_once(response: requests.Response) -> None:
    """Make response.json() decode with orjson, once: the error check and the connector both read every body.

    The first call's result is handed to the second and then forgotten (the error check only reads it; a third caller decodes
    afresh, so nobody sees another caller's edits). Bodies orjson refuses (NaN literals, integers past 64 bits) go through
    requests' own decoder, which also raises its usual error for a body that is not JSON.
    """
    original = response.json
    decoded: list[Any] = []

    def json(**kwargs: Any) -> Any:
        if kwargs:
            return original(**kwargs)
        if decoded:
            return decoded.pop()
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return original()
        decoded.append(body)
        return body

    response.json = json  # type: ignore[method-assign]


def _json_or_none(response: requests.Response) -> Any:
    if "json" not in response.headers.get("Content-Type", "") and response.content[:1] not in (b"{", b"["):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _status_phrase(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def response_json(response: requests.Response) -> Any:
    """The decoded body when it is JSON, else None (error envelopes are read with this)."""
    return _json_or_none(response)


def classify_status(response: requests.Response, path: str, *, message: str = "", code: str = "") -> ApiError | None:
    """The error tree by HTTP status alone, with the vendor's message and code when its envelope gave them."""
    status = response.status_code
    if 200 <= status < 400:
        return None
    headers = response.headers
    # The reason phrase is whatever the server wrote after the status code (a banner when it is no vendor API): never shown.
    text = message[:500] or _status_phrase(status)
    if status == 429 or status == 420:
        return ApiRateLimited(text, retry_after=rate_limit_wait(headers) or 1.0, status=status, vendor_code=code, path=path)
    if status == 401:
        return ApiUnauthorized(text, status=status, vendor_code=code, path=path)
    if status == 403:
        return ApiForbidden(text, status=status, vendor_code=code, path=path)
    if status in (404, 410):
        return ApiNotFound(text, status=status, vendor_code=code, path=path)
    if status == 409:
        return ApiConflict(text, status=status, vendor_code=code, path=path)
    if status >= 500:
        # Some 503s carry Retry-After.
        return ApiHostError(text, status=status, vendor_code=code, path=path, retry_after=rate_limit_wait(headers))
    return ApiBadRequest(text, status=status, vendor_code=code, path=path)


def generic_error_message(body: Any) -> tuple[str, str]:
    """(message, code) from the envelope shapes many APIs share; a vendor with its own envelope reads it in its connector."""
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error")
    if isinstance(error, dict):  # {"error": {"code", "message", "errors": [{"reason"}…]}}: the first reason is the code
        reasons = error.get("errors") or []
        reason = reasons[0].get("reason", "") if reasons and isinstance(reasons[0], dict) else ""
        details = "; ".join(str(e) for e in reasons if isinstance(e, str))
        message = str(error.get("message", "")) + (f": {details}" if details else "")
        return message, str(reason or error.get("code", ""))
    if "message" in body:
        return str(body["message"]), str(body.get("code", "") or body.get("error", ""))
    if "detail" in body:  # RFC 7807 problem details
        return str(body["detail"]), str(body.get("type", ""))
    if isinstance(error, str):  # OAuth 2.0 (RFC 6749 5.2)
        return str(body.get("error_description") or error), error
    return "", ""


def classify_generic(response: requests.Response, path: str) -> ApiError | None:
    """The default ResponseClassifier: a vendor's connector overrides it with its own envelope and rate signals."""
    status = response.status_code
    if 200 <= status < 400:
        return None
    message, code = generic_error_message(_json_or_none(response))
    return classify_status(response, path, message=message, code=code)


def name_resolution_failure(error: BaseException) -> tuple[str, socket.gaierror] | None:
    """(host, gaierror) when a requests/urllib3 connection error was a failed DNS lookup; None for any other failure."""
    pending: list[Any] = [error]
    seen: set[int] = set()
    host = ""
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NameResolutionError):
            host = host or str(getattr(current, "_host", "") or "")
        if isinstance(current, socket.gaierror):
            return host, current
        # requests wraps urllib3's MaxRetryError in args; MaxRetryError keeps the connection error in `reason`.
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None), *current.args])
    return None


def connection_failure(error: BaseException, url: str, path: str) -> ApiHostError:
    """The ApiHostError for a request that never got an answer; a failed DNS lookup says so (and stays retryable)."""
    unresolved = name_resolution_failure(error)
    if unresolved is not None:
        host, gaierror = unresolved
        failure = host_unresolved(host or urlsplit(url).hostname or "", gaierror)
        failure.path = path
    else:
        failure = ApiHostError(f"Could not connect to {urlsplit(url).netloc}", path=path)
    failure.__cause__ = error
    return failure


class HttpClient:
    """Per-integration client: every connector call goes through `request`."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: AuthProvider | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        max_inline_wait: float = 10.0,
        limiter: RateLimiter | None = None,
        recorder: Callable[[CallRecord], None] | None = None,
        default_headers: Mapping[str, str] | None = None,
        url_guard: Callable[[str], None] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        connector_key: str = "",
        classify: ResponseClassifier | None = None,
    ):
        self.base_url = base_url.rstrip("/") + "/"
        self.connector_key = connector_key or "unknown"  # the metrics label of every call
        self.auth = auth
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_inline_wait = max_inline_wait
        self.limiter = limiter
        self.recorder = recorder
        self.default_headers = dict(default_headers or {})
        self.url_guard = url_guard
        self.session = session or requests.Session()
        self.sleep = sleep
        # The connector's reading of its vendor's answers (error envelope, rate signals sent with a 200 or a 403).
        # Unset (None) until a connector takes the client: BaseConnector.__init__ installs the connector's classify_response.
        self.classify: ResponseClassifier = classify or classify_generic
        self.classify_is_default = classify is None
        if isinstance(url_guard, PinningGuard):
            current = self.session.get_adapter("https://")
            if not (isinstance(current, PinnedAdapter) and current.guard is url_guard):  # a shared session keeps its pool
                self.set_pool_size(DEFAULT_POOLSIZE)

    def set_pool_size(self, maxsize: int) -> None:
        """Keep up to `maxsize` connections per host; with a pinning url_guard every connection stays pinned."""
        if isinstance(self.url_guard, PinningGuard):
            adapter: HTTPAdapter = PinnedAdapter(self.url_guard, pool_maxsize=maxsize)
        else:
            adapter = HTTPAdapter(pool_maxsize=maxsize)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def _check_url(self, url: str) -> None:
        """Run the url_guard for one request or redirect hop."""
        if self.url_guard is None:
            return
        if not isinstance(self.url_guard, PinningGuard):
            self.url_guard(url)
            return
        self.url_guard.check_target(url)
        adapter = self.session.get_adapter(url)
        if not (isinstance(adapter, PinnedAdapter) and adapter.guard is self.url_guard):
            # Fail closed: an adapter mounted over ours would connect wherever DNS says at that moment.
            raise UnsafeBaseUrl(f"The HTTP session's adapter for {urlsplit(url).scheme} does not pin vetted addresses; use HttpClient.set_pool_size.")

    def url_for(self, path: str) -> str:
        if path.startswith("http://") or path.startswith("https://"):
            return path
        return urljoin(self.base_url, path.lstrip("/"))

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1))))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
    ) -> requests.Response:
        """Send one logical request, retrying transient failures; raise an ApiError subclass on failure."""
        url = self.url_for(path)
        self._check_url(url)
        log_path = urlsplit(url).path
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            if self.limiter:
                self.limiter.acquire()
            send_headers = {"Accept": "application/json", **self.default_headers, **(headers or {})}
            if self.auth:
                self.auth.apply(send_headers)
            started = time.monotonic()
            try:
                response = self._send(method, url, params=params, json=json, data=data, headers=send_headers)
            except requests.Timeout as exc:
                error: ApiError = ApiTimeout(f"Timed out calling {log_path}", path=log_path)
                error.__cause__ = exc
                self._record(method, log_path, None, started, error, attempt)
            except requests.ConnectionError as exc:
                error = connection_failure(exc, url, log_path)
                self._record(method, log_path, None, started, error, attempt)
            except ApiHostError as exc:  # the egress-proxy check in PinnedAdapter.send could not resolve the name
                error = exc
                error.path = error.path or log_path
                self._record(method, log_path, None, started, error, attempt)
            else:
                decode_json_once(response)
                if self.limiter:
                    self.limiter.observe(response.headers)
                error = self.classify(response, log_path)
                self._record(method, log_path, response.status_code, started, error, attempt)
                if error is None and response.status_code in REDIRECT_STATUSES:
                    error = ApiBadRequest(f"Too many redirects from {log_path}", status=response.status_code, path=log_path)
                if error is None:
                    return response
                if isinstance(error, ApiUnauthorized) and self.auth and not refreshed and self.auth.refresh():
                    refreshed = True
                    continue
            if not (retry and error.retryable) or attempt > self.max_retries:
                raise error
            wait = self._wait_for(error, attempt)
            if wait > self.max_inline_wait:
                # Do not hold a worker slot hostage: the caller re-queues with a countdown.
                raise error
            logger.info("http.retry", extra={"path": log_path, "attempt": attempt, "wait": round(wait, 2), "error": type(error).__name__})
            metrics.vendor_retries.labels(self.connector_key, type(error).__name__).inc()
            self.sleep(wait)

    def _send(self, method: str, url: str, *, params: Any, json: Any, data: Any, headers: dict[str, str]) -> requests.Response:
        """Send, following redirects by hand so every hop passes the URL guard (no redirect into the metadata service).

        With a pinning guard each hop's host is also resolved and vetted when its connection opens.
        """
        origin = urlsplit(url).netloc
        response = self.session.request(method, url, params=params, json=json, data=data, headers=headers, timeout=self.timeout, allow_redirects=False)
        for _ in range(MAX_REDIRECTS):
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            url = urljoin(response.url, location)
            self._check_url(url)
            if response.status_code in (301, 302, 303) and method.upper() not in ("GET", "HEAD"):
                method, json, data = "GET", None, None
            if urlsplit(url).netloc != origin:
                # Never carry credentials to another host.
                headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie", "x-api-key")}
            response = self.session.request(method, url, json=json, data=data, headers=headers, timeout=self.timeout, allow_redirects=False)
        return response

    def _wait_for(self, error: ApiError, attempt: int) -> float:
        hinted = error.retry_after
        if hinted:
            return float(hinted) + random.uniform(0, 0.25)
        return self.backoff(attempt)

    def _record(self, method: str, path: str, status: int | None, started: float, error: ApiError | None, attempt: int) -> None:
        elapsed = time.monotonic() - started
        try:
            status_class = metrics.status_class(status)
            metrics.vendor_calls.labels(self.connector_key, method.upper(), status_class).inc()
            metrics.vendor_call_duration.labels(self.connector_key, status_class).observe(elapsed)
            if isinstance(error, ApiRateLimited):
                metrics.vendor_rate_limited.labels(self.connector_key).inc()
        except Exception:  # noqa: BLE001 - a failing metrics sink must not fail the vendor call
            logger.exception("http.metrics_failed", extra={"path": path})
        if not self.recorder:
            return
        record = CallRecord(
            method=method.upper(),
            path=path,
            status=status,
            latency_ms=round(elapsed * 1000, 2),
            ok=error is None,
            error=type(error).__name__ if error else "",
            attempt=attempt,
            vendor_code=(error.vendor_code if error else "")[:120],
        )
        if record_later(self.recorder, record):  # a helper thread: the thread that started it records the call
            return
        try:
            self.recorder(record)
        except Exception:  # noqa: BLE001 - a failing metrics sink must not fail the vendor call
            logger.exception("http.record_failed", extra={"path": path})

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    # Pagination helpers: each yields (items, response) per page.
    def paginate_cursor(
        self,
        path: str,
        *,
        items_key: str,
        next_cursor: Callable[[Any], str | None],
        cursor_param: str = "cursor",
        params: Mapping[str, Any] | None = None,
        method: str = "GET",
        body_cursor: bool = False,
        json: Mapping[str, Any] | None = None,
    ) -> Iterator[tuple[list[Any], requests.Response]]:
        """Cursor style (a next-cursor token in the body, sent back as a query or body parameter)."""
        cursor: str | None = None
        while True:
            query = dict(params or {})
            payload = dict(json or {}) if json is not None else None
            if cursor:
                if body_cursor and payload is not None:
                    payload[cursor_param] = cursor
                else:
                    query[cursor_param] = cursor
            response = self.request(method, path, params=query, json=payload)
            body = response.json()
            yield body.get(items_key, []), response
            cursor = next_cursor(body)
            if not cursor:
                return

    def paginate_link(self, path: str, *, params: Mapping[str, Any] | None = None) -> Iterator[tuple[list[Any], requests.Response]]:
        """RFC 8288 `Link: <…>; rel="next"` style."""
        url: str | None = path
        query: Mapping[str, Any] | None = params
        while url:
            response = self.request("GET", url, params=query)
            yield response.json(), response
            next_url = response.links.get("next", {}).get("url")
            url = urljoin(response.url, next_url) if next_url else None
            query = None

    def paginate_offset(
        self,
        path: str,
        *,
        items_key: str,
        limit: int = 100,
        offset_param: str = "offset",
        limit_param: str = "limit",
        more: Callable[[Any, int], bool] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[tuple[list[Any], requests.Response]]:
        """Offset/limit style (a `more` flag, or a full page meaning there may be more)."""
        offset = 0
        while True:
            response = self.request("GET", path, params={**(params or {}), offset_param: offset, limit_param: limit})
            body = response.json()
            items = body.get(items_key, [])
            yield items, response
            offset += len(items)
            has_more = more(body, offset) if more else len(items) == limit
            if not items or not has_more:
                return

    def paginate_next_url(
        self, path: str, *, items_key: str, next_key: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[tuple[list[Any], requests.Response]]:
        """Next-URL style (a next-page URL in the body, absolute or relative)."""
        url: str | None = path
        query: Mapping[str, Any] | None = params
        while url:
            response = self.request("GET", url, params=query)
            body = response.json()
            yield body.get(items_key, []), response
            next_url = body.get(next_key)
            # Some vendors answer a path, others an absolute URL: both resolve against the page's own URL.
            url = urljoin(response.url, next_url) if next_url else None
            query = None
