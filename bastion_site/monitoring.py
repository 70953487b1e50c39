"""GET /metrics: Prometheus exposition for a bearer token (BASTION_METRICS_TOKEN) or a signed-in staff user; never public."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from common.metrics import multiprocess_dir
from sync.metrics import SyncStateCollector


class _Exposition:
    """What one scrape shows: every process's counters (or this process's), then the state read now."""

    def __init__(self, sources: Iterable[object]):
        self.sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()  # type: ignore[attr-defined]


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _error(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message, "fields": {}}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def metrics_allowed(request: HttpRequest) -> tuple[bool, JsonResponse | None]:
    """A matching bearer token or a staff session; otherwise the 401/403 to answer."""
    expected = str(getattr(settings, "BASTION_METRICS_TOKEN", "") or "")
    presented = _bearer_token(request)
    if presented:
        if expected and hmac.compare_digest(presented.encode(), expected.encode()):
            return True, None
        return False, _error(401, "invalid_token", "The metrics token is not valid.")
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        if user.is_staff:
            return True, None
        return False, _error(403, "staff_only", "Metrics are visible to staff users and to scrapers holding the metrics token.")
    return False, _error(401, "authentication_required", "Send the metrics token as 'Authorization: Bearer <token>' or sign in as staff.")


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    allowed, refusal = metrics_allowed(request)
    if not allowed:
        return refusal  # type: ignore[return-value]
    directory = multiprocess_dir()
    if directory:
        # Gunicorn workers and Celery pool processes each write their own files; this adds them up.
        processes = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(processes, path=directory)
    else:
        processes = REGISTRY
    state = SyncStateCollector(per_source=bool(getattr(settings, "BASTION_METRICS_PER_SOURCE", True)))
    body = generate_latest(_Exposition([processes, state]))  # type: ignore[arg-type]
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
