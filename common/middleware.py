"""Security headers for every response, and request-size limits with a clear error."""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

from common.client_address import client_address

logger = logging.getLogger(__name__)

# Scripts only from our own files: no inline <script>, no on*= handlers (a stored XSS cannot run). Inline styles stay
# allowed for style="width:…" progress bars and the Swagger UI sidecar's <style>.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self' http: https:"
)

# Paths that accept file uploads get the upload limit; webhooks get theirs; everything else the body limit.
UPLOAD_PATH_MARKERS = ("/import", "/csv", "/upload", "populate-field")


class SecurityHeadersMiddleware:
    """Add a Content-Security-Policy and related headers (no external origins are ever needed)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


def body_limit_for(path: str, content_type: str = "") -> int:
    """The byte limit for a request body: only a file upload (multipart) to an upload path gets the upload limit; a JSON
    or form body anywhere is parsed whole in memory, so it gets the body limit."""
    if path.startswith("/api/webhooks/"):
        return settings.BASTION_WEBHOOK_MAX_BYTES
    if any(marker in path for marker in UPLOAD_PATH_MARKERS) and content_type.lower().startswith("multipart/form-data"):
        return settings.BASTION_MAX_UPLOAD_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class RequestSizeLimitMiddleware:
    """Refuse bodies over the limit before anything reads them (413), and NUL bytes in the URL (400)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"error": {"code": "bad_request", "message": "Content-Length is not a number.", "fields": {}}}, status=400)
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", "") or "\x00" in request.META.get("QUERY_STRING", ""):
            # No text column can hold NUL; refuse it here rather than fail deep in the database.
            return JsonResponse({"error": {"code": "bad_request", "message": "The URL contains a NUL character.", "fields": {}}}, status=400)
        limit = body_limit_for(request.path, request.META.get("CONTENT_TYPE", ""))
        if length > limit:
            return JsonResponse(
                {"error": {"code": "payload_too_large", "message": f"The request body is {length} bytes; the limit here is {limit} bytes.", "fields": {}}},
                status=413,
            )
        return self.get_response(request)


class InvalidInputMiddleware:
    """Input a view could not use is the sender's error (4xx), whichever view met it: a malformed id in a lookup, a
    number or text the database cannot store, a body too big for Django to buffer. Never a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RequestDataTooBig):
            return _error(request, 413, "payload_too_large", "The request body is larger than this page accepts.")
        if isinstance(exception, DjangoValidationError):
            message = " ".join(str(m) for m in exception.messages)[:300] or "A value in the request is not valid."
            return _error(request, 400, "invalid", message)
        if isinstance(exception, DataError | OverflowError):
            logger.warning("request.unstorable_value", extra={"path": request.path[:200], "error": type(exception).__name__})
            return _error(request, 400, "invalid_value", "A value in the request is out of range or cannot be stored (check numbers and text).")
        return None


def _error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": code, "message": message, "fields": {}}}, status=status)
    try:
        html = loader.render_to_string("400.html", {"message": message, "status": status}, request=request)
    except Exception:  # noqa: BLE001 - the error page itself must never fail; fall back to plain text
        html = message
    return HttpResponse(html, status=status)


PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def parse_rate(rate: str) -> tuple[int, int]:
    """'120/minute' → (120, 60), the same notation as the API throttle (BASTION_API_RATE)."""
    count, _, period = rate.partition("/")
    return int(count), PERIOD_SECONDS[period.strip()[:1].lower()]


class PageRateLimitMiddleware:
    """Form posts to pages are rate limited like the API: per signed-in user, else per client address (429 + Retry-After).

    The API has DRF's throttle and webhooks their flood guard; sign-in, sign-up and password reset also have allauth's
    per-account and per-address limits. A fixed window in the shared cache, so every process counts together.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in UNSAFE_METHODS and not request.path.startswith("/api/"):
            limited = self._limited(request)
            if limited is not None:
                return limited
        return self.get_response(request)

    def _limited(self, request: HttpRequest) -> HttpResponse | None:
        count, seconds = parse_rate(str(getattr(settings, "BASTION_PAGE_RATE", "120/minute")))
        user = getattr(request, "user", None)
        who = f"user:{user.pk}" if user is not None and user.is_authenticated else f"ip:{client_address(request) or 'unknown'}"
        window = int(time.time() // seconds)
        key = f"bastion:pages:{who}:{window}"
        cache.add(key, 0, timeout=seconds + 1)
        try:
            used = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=seconds + 1)
            used = 1
        if used <= count:
            return None
        retry_after = str(max(1, seconds - int(time.time()) % seconds))
        logger.warning("pages.throttled", extra={"who": who.split(":", 1)[0], "path": request.path[:200]})
        response = _error(request, 429, "throttled", f"Too many submissions; wait {retry_after} seconds and try again.")
        response["Retry-After"] = retry_after
        return response
