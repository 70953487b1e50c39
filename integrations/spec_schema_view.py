"""GET /api/schema/connector-spec.json: the JSON Schema of declarative connector specs, public like the API schema."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from integrations.connectors.declarative import SPEC_SCHEMA


@require_GET
def connector_spec_schema(request: HttpRequest) -> JsonResponse:
    """The schema every spec.yaml is validated against (draft 2020-12)."""
    response = JsonResponse(SPEC_SCHEMA, json_dumps_params={"indent": 1})
    response["Content-Type"] = "application/schema+json"
    response["Cache-Control"] = "public, max-age=3600"
    return response
