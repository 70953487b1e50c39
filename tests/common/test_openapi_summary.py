"""Every API operation is listed with a one-line summary: its own, or its description's first sentence."""

from __future__ import annotations

import re

from common.openapi_summary import first_sentence


def test_first_sentence_is_one_short_line():
    assert first_sentence("Start a run (202), or return the open run (200): activating twice never acts twice.") == (
        "Start a run (202), or return the open run (200): activating twice never acts twice"
    )
    assert first_sentence("Re-run only the failed steps.\n\nWith the same keys.") == "Re-run only the failed steps"
    long = first_sentence("word " * 40)
    assert len(long) <= 90 and long.endswith("…")


def test_operations_on_the_summary_schema_have_a_summary_and_a_description(db):
    from drf_spectacular.generators import SchemaGenerator

    from common.openapi_summary import SummaryAutoSchema

    generator = SchemaGenerator()
    schema = generator.get_schema(request=None, public=True)
    operations = [
        (route, method, op) for route, item in schema["paths"].items() for method, op in item.items() if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 90

    # Views on SummaryAutoSchema (every organization-scoped API, and the few others set by hand) all carry a summary.
    def shape(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", path)

    on_summary_schema = {
        (shape(path), method.lower())
        for path, _, method, view in generator.endpoints
        if isinstance(getattr(getattr(view, "cls", view), "schema", None), SummaryAutoSchema)
    }
    assert len(on_summary_schema) > 90
    covered = [(r, m, op) for r, m, op in operations if (shape(r), m) in on_summary_schema]
    assert [(m, r) for r, m, op in covered if not op.get("summary")] == []
    assert [(m, r) for r, m, op in covered if not op.get("description")] == []


def test_the_documented_scenario_example_is_accepted(api):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    example = schema["paths"]["/api/scenarios/"]["post"]["requestBody"]["content"]["application/json"]["examples"]["ACrisis"]["value"]
    response = api.post("/api/scenarios/", example, format="json")
    assert response.status_code == 201, response.json()


def test_every_operation_of_the_schema_has_a_summary_and_a_description(db):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = [
        (route, method, op) for route, item in schema["paths"].items() for method, op in item.items() if method in ("get", "post", "put", "patch", "delete")
    ]
    assert [(route, method) for route, method, op in operations if not op.get("summary")] == []
    assert [(route, method) for route, method, op in operations if not op.get("description")] == []
