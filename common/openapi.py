"""The OpenAPI schema says everything the API answers: the error statuses every operation can give, and URLs that may be empty.

Registered from CommonConfig.ready (the field extension) and SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] (the statuses);
tests/hardening/test_api_fuzz.py checks answers against the schema, statuses included.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension

ERROR_COMPONENT = "ErrorEnvelope"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every failure has this shape.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string", "description": "What happened and what to do next, for a person."},
                "fields": {"type": "object", "additionalProperties": True, "description": "Messages per input field."},
                "reference": {"type": "string", "description": "Quote it to an administrator (server errors only)."},
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}
# What any operation may answer besides its own success statuses: bad input, not signed in, not allowed (role or
# integration permission), not found (also another organization's object), too large, throttled; writes may conflict.
COMMON_ERRORS = {
    "400": "The request is invalid (fields, JSON, parameters); `fields` names what to fix.",
    "401": "Not signed in (no session or token).",
    "403": "Signed in, but the role (or the integration's allowed roles) does not allow this.",
    "404": "No such object in the current organization.",
    "413": "The request body is larger than the limit.",
    "429": "Too many requests; retry after the Retry-After header.",
}
WRITE_ERRORS = {"409": "The object's state does not allow this now (for example the last owner, a run already finished)."}
WRITE_METHODS = {"post", "put", "patch", "delete"}


def document_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: add the common error statuses (with the error envelope) to every operation that lacks them."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(ERROR_COMPONENT, ERROR_SCHEMA)
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = {**COMMON_ERRORS, **(WRITE_ERRORS if method in WRITE_METHODS else {})}
            for code, description in statuses.items():
                operation["responses"].setdefault(code, {"description": description, "content": {"application/json": {"schema": reference}}})
    return result


class BlankableURLFieldExtension(OpenApiSerializerFieldExtension):
    """A URL field that may be blank (a model URLField with blank=True) is a URI or "" in the schema, as in the answers."""

    target_class = "rest_framework.fields.URLField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = {"type": "string", "format": "uri"}
        if getattr(self.target, "max_length", None):
            schema["maxLength"] = self.target.max_length
        if getattr(self.target, "allow_blank", False) or _model_field_is_blank(self.target):
            return {"oneOf": [schema, {"type": "string", "maxLength": 0}]}
        return schema


def _model_field_is_blank(field: Any) -> bool:
    # A read-only ModelSerializer field loses allow_blank; the model field still says whether "" is stored.
    model = getattr(getattr(getattr(field, "parent", None), "Meta", None), "model", None)
    if model is None or not getattr(field, "source", None) or "." in field.source:
        return False
    try:
        return bool(model._meta.get_field(field.source).blank)
    except Exception:  # noqa: BLE001 - not a model field (a property, an annotation): no blank to honour
        return False
