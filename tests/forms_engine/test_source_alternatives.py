"""A field fed by Jira or Asana (the launch timeline): each connector's records are read with its own label and value paths."""

from __future__ import annotations

from django.utils import timezone

from integrations.models import Integration, IntegrationStatus
from scenarios.spec import source_paths
from sync.models import SyncRecord


def _records(organization, connector_key: str, entity: str, rows: list[dict]) -> Integration:
    integration = Integration.objects.create(
        organization=organization, connector_key=connector_key, display_name=connector_key.title(), status=IntegrationStatus.CONNECTED
    )
    for row in rows:
        external_id = str(row.get("id") or row.get("key"))
        SyncRecord.objects.create(
            organization=organization,
            integration=integration,
            entity_type=entity,
            external_id=external_id,
            raw=row,
            data=row,
            content_hash=external_id,
            last_seen_at=timezone.now(),
        )
    return integration


def test_alternative_paths_inherit_what_they_do_not_name():
    source = {
        "connector": "jira",
        "entity": "issues",
        "mapping": "$.key",
        "options_label": "$.summary",
        "alternatives": [
            {"connector": "asana", "entity": "tasks", "mapping": "$.id", "options_label": "$.title"},
            {"connector": "jira_dc", "entity": "issues"},
        ],
    }
    assert source_paths(source) == {
        "jira": ("$.summary", "$.key", "$.key"),
        "asana": ("$.title", "$.id", "$.id"),
        "jira_dc": ("$.summary", "$.key", "$.key"),
    }


def test_launch_timeline_offers_jira_issues_and_asana_tasks_each_by_its_own_paths(api, organization):
    _records(organization, "jira", "issues", [{"key": "LAUNCH-1", "id": "10001", "summary": "Publish docs"}])
    asana = _records(organization, "asana", "tasks", [{"id": "1400000000001", "title": "Brief the press", "done": False}])
    body = api.get("/api/scenarios/product_launch/fields/launch_timeline/options").json()
    assert sorted((r["value"], r["label"]) for r in body["results"]) == [("1400000000001", "Brief the press"), ("LAUNCH-1", "Publish docs")]
    only_asana = api.get("/api/scenarios/product_launch/fields/launch_timeline/options", {"connector": "asana", "q": "press"}).json()["results"]
    assert [(r["value"], r["provenance"]["integration_id"]) for r in only_asana] == [("1400000000001", str(asana.pk))]
    schema = api.get("/api/scenarios/product_launch/form-schema").json()
    timeline = next(f for f in schema["fields"] if f["key"] == "launch_timeline")
    assert [(c["connector"], c["options_label"], c["options_value"]) for c in timeline["source"]["connectors"]] == [
        ("jira", "$.summary", "$.key"),
        ("asana", "$.title", "$.id"),
    ]
    imported = api.post("/api/scenarios/product_launch/fields/launch_timeline/import", {"connector": "asana"}, format="json")
    assert imported.status_code == 200, imported.content
    assert imported.json()["value"] == ["1400000000001"]
