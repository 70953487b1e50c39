"""One application error type and one DRF handler giving every failure the same envelope."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A failure a person can act on: a code, a message and optional per-field messages."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, code: str = "invalid", fields: dict[str, Any] | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.fields = fields or {}
        if status_code is not None:
            self.status_code = status_code


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten_detail(detail: Any) -> Any:
    if isinstance(detail, list):
        return [str(item) if not isinstance(item, (dict, list)) else _flatten_detail(item) for item in detail]
    if isinstance(detail, dict):
        return {key: _flatten_detail(value) for key, value in detail.items()}
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render any exception as {"error": {"code", "message", "fields"}}."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("payload_too_large", "The request body is larger than this endpoint accepts."), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        )
    if isinstance(exc, DataError | OverflowError):
        # A value the database cannot hold (a number out of range, text it refuses) came from the request: the sender's error.
        logger.warning("api.unstorable_value", extra={"view": context.get("view").__class__.__name__, "error": type(exc).__name__})
        return Response(error_body("invalid_value", "A value in the request is out of range or cannot be stored (check numbers and text)."), status=400)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        from common.error_pages import request_reference

        request = context.get("request")
        reference = request_reference(request) if request is not None else ""
        logger.exception("api.unhandled_error", extra={"view": context.get("view").__class__.__name__, "reference": reference})
        body = error_body("server_error", f"Something went wrong on our side. The error was logged under reference {reference}.")
        body["error"]["reference"] = reference
        return Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, exceptions.ValidationError):
        detail = _flatten_detail(exc.detail)
        if isinstance(detail, dict):
            fields = {k: v for k, v in detail.items() if k != "non_field_errors"}
            general = detail.get("non_field_errors")
            first = general[0] if general else next(iter(fields.values()), ["Invalid input."])
            message = first[0] if isinstance(first, list) and first and isinstance(first[0], str) else "Some fields are invalid."
        else:
            fields, message = {}, detail[0] if detail else "Invalid input."
        response.data = error_body("invalid", message, fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(exc, "default_code", "error")
        if isinstance(exc, exceptions.APIException) and hasattr(exc, "get_codes"):
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) else code
        response.data = error_body(str(code), str(detail))
    return response
