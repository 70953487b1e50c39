"""A reference id on every request, and error answers that show it instead of a traceback (the details go to the log)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.template import loader

logger = logging.getLogger(__name__)

REFERENCE_HEADER = "X-Bastion-Reference"


def request_reference(request: HttpRequest) -> str:
    """The request's short reference id (set by RequestReferenceMiddleware; made here for requests it did not see)."""
    reference = getattr(request, "bastion_reference", "")
    if not reference:
        reference = secrets.token_hex(6)
        request.bastion_reference = reference
    return reference


class RequestReferenceMiddleware:
    """Give each request a reference id, answer it in a header, and log any unhandled exception with it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        reference = request_reference(request)
        response = self.get_response(request)
        response[REFERENCE_HEADER] = reference
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        reference = request_reference(request)
        # The reference is in the message too: operators' log formats rarely print `extra` fields.
        logger.error("request.failed reference=%s path=%s", reference, request.path[:200], exc_info=exception, extra={"reference": reference})


def server_error(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """handler500: a friendly page (or the API's error body) naming the reference to quote, never a traceback."""
    reference = request_reference(request)
    message = f"Something went wrong on our side. Nothing you entered is lost; try again. If it happens again, quote reference {reference}."
    if request.path.startswith("/api/"):
        body = {"error": {"code": "server_error", "message": message, "fields": {}, "reference": reference}}
        return JsonResponse(body, status=500, headers={REFERENCE_HEADER: reference})
    try:
        html = loader.render_to_string("500.html", {"reference": reference, "message": message})
    except Exception:  # noqa: BLE001 - the error page itself must never fail; fall back to plain text
        html = message
    return HttpResponseServerError(html, headers={REFERENCE_HEADER: reference})
