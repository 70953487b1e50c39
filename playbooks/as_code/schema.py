"""The published JSON Schema of a playbook template file (served at /api/template-files/schema.json)."""

from __future__ import annotations

from typing import Any

SCHEMA_ID = "https://bastion.dev/schemas/playbook-template/v1.json"
FORMAT = "bastion/playbook-template@1"

STEP: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["key", "name", "connector_key", "action"],
    "properties": {
        "key": {"type": "string", "pattern": "^[-a-zA-Z0-9_]{1,60}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "connector_key": {
            "type": "string",
            "minLength": 1,
            "maxLength": 60,
            "description": "A connector key, a role the organization's tools play ('@chat', '@meeting', '@documents'), or 'bastion' for a human step.",
        },
        "action": {"type": "string", "minLength": 1, "maxLength": 60},
        "payload_template": {"type": "object"},
        "depends_on": {"type": "array", "items": {"type": "string", "pattern": "^[-a-zA-Z0-9_]{1,60}(:(approved|rejected|timed_out))?$"}},
        "for_each": {"type": "string", "maxLength": 120},
        "items": {"type": "array"},
        "item_key": {"type": "string", "maxLength": 60},
        "is_bulk": {"type": "boolean"},
        "bulk_chunk_size": {"type": "integer", "minimum": 1, "maximum": 50},
        "is_required": {"type": "boolean"},
        "condition": {"type": ["object", "null"], "description": "JSON Logic over the scenario values."},
        "task_kind": {"type": "string", "maxLength": 40},
        "description": {"type": "string", "maxLength": 300},
    },
}

TEMPLATE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "Bastion playbook template",
    "type": "object",
    "additionalProperties": False,
    "required": ["format", "scenario_type", "name", "steps"],
    "properties": {
        "format": {"const": FORMAT},
        "scenario_type": {"type": "string", "pattern": "^[a-z0-9_]{1,60}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string"},
        "is_active": {"type": "boolean"},
        "manual_baseline_minutes": {"type": "integer", "minimum": 0},
        "steps": {"type": "array", "minItems": 1, "items": STEP},
    },
}
