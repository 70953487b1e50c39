import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent, Role
from accounts.services import audit_record
from data_rights.models import DataRightsRequest, RetentionPolicy
from data_rights.services import find_mentions, retention_enforce
from integrations.models import Integration
from people.models import Person, PersonIdentity
from scenarios.models import Scenario, ScenarioDataModel
from sync.models import DataSyncJob, SyncRecord

EMAIL = "Chloe.Dubois@acme.example"
NAME = "Chloé Dubois"


@pytest.fixture
def subject(organization):
    """A person known to two sources, named in a scenario, a sync job log and the audit trail."""
    slack = Integration.objects.create(organization=organization, connector_key="slack", display_name="Slack")
    ldap = Integration.objects.create(organization=organization, connector_key="ldap", display_name="AD")
    person = Person.objects.create(
        organization=organization, email=EMAIL.lower(), display_name=NAME, title="Press Officer", search_text=f"{NAME} {EMAIL}".lower()
    )
    now = timezone.now()
    for integration, external_id, raw in [
        (slack, "U100", {"id": "U100", "profile": {"email": EMAIL, "real_name": NAME}}),
        (ldap, "e-1", {"mail": EMAIL, "cn": NAME}),
    ]:
        PersonIdentity.objects.create(
            organization=organization,
            person=person,
            integration=integration,
            source=integration.connector_key,
            entity_type="users",
            external_id=external_id,
            attributes={"email": EMAIL},
        )
        SyncRecord.objects.create(
            organization=organization,
            integration=integration,
            entity_type="users",
            external_id=external_id,
            raw=raw,
            data={"email": EMAIL, "name": NAME},
            content_hash="h",
            last_seen_at=now,
        )
    model = ScenarioDataModel.objects.create(scenario_type="crisis_management", version=99)
    Scenario.objects.create(
        organization=organization,
        data_model=model,
        scenario_type="crisis_management",
        title="Data breach",
        values={
            "stakeholders": [
                {"person_id": str(person.pk), "name": NAME, "email": EMAIL, "role": "comms"},
                {"name": "Other Person", "email": "other@acme.example"},
            ]
        },
    )
    DataSyncJob.objects.create(organization=organization, integration=slack, error_log=[{"message": f"user {EMAIL} not found in channel"}])
    audit_record(action="membership.set", organization=organization, changes={"invited": EMAIL})
    return person


def test_export_lists_everything_about_the_person(api_for, users_by_role, subject):
    response = api_for(users_by_role[Role.ADMIN]).get(f"/api/data-rights/people/{subject.pk}/export")
    assert response.status_code == 200
    body = response.json()
    assert body["person"]["email"] == EMAIL.lower()
    assert {i["external_id"] for i in body["identities"]} == {"U100", "e-1"}
    assert {r["external_id"] for r in body["source_records"]} == {"U100", "e-1"}
    assert set(body["mentions"]) >= {"scenarios.Scenario", "sync.DataSyncJob", "accounts.AuditEvent"}
    assert DataRightsRequest.objects.filter(kind="export").count() == 1


def test_erase_leaves_nothing_behind(api_for, users_by_role, subject, organization):
    response = api_for(users_by_role[Role.ADMIN]).post(f"/api/data-rights/people/{subject.pk}/erase")
    assert response.status_code == 200
    counts = response.json()["erased"]
    assert counts["sync.Person"] == 1 and counts["sync.SyncRecord"] == 2 and counts["scenarios.Scenario"] == 1
    # Nothing anywhere still mentions the email or the name.
    assert find_mentions(organization=organization, needles=[EMAIL.lower(), NAME]) == {}
    scenario = Scenario.objects.get()
    assert scenario.values["stakeholders"][0]["email"] == "[erased]"
    assert scenario.values["stakeholders"][1]["email"] == "other@acme.example"  # others untouched
    everything = json.dumps([list(AuditEvent.objects.values("changes")), list(DataSyncJob.objects.values("error_log"))]).lower()
    assert EMAIL.lower() not in everything
    # The erasure itself is audited by a hash, never by the address.
    erase_event = AuditEvent.objects.get(action="data_rights.erase")
    assert EMAIL.lower() not in json.dumps(erase_event.changes).lower()


@pytest.mark.parametrize(("role", "allowed"), [(Role.VIEWER, False), (Role.EDITOR, False), (Role.ADMIN, True), (Role.OWNER, True)])
def test_only_admins_erase(api_for, users_by_role, subject, role, allowed):
    response = api_for(users_by_role[role]).post(f"/api/data-rights/people/{subject.pk}/erase")
    assert response.status_code == (200 if allowed else 403)
    assert Person.objects.filter(pk=subject.pk).exists() is not allowed


def test_another_organization_cannot_export_or_erase(api_for, outsider, subject):
    client = api_for(outsider)
    assert client.get(f"/api/data-rights/people/{subject.pk}/export").status_code == 404
    assert client.post(f"/api/data-rights/people/{subject.pk}/erase").status_code == 404
    assert Person.objects.filter(pk=subject.pk).exists()


def test_retention_purges_only_what_expired(organization, subject):
    RetentionPolicy.objects.create(organization=organization, deleted_records_days=30, job_logs_days=90)
    old = timezone.now() - timedelta(days=31)
    SyncRecord.objects.filter(external_id="U100").update(is_deleted=True, deleted_at=old)
    SyncRecord.objects.filter(external_id="e-1").update(is_deleted=True, deleted_at=timezone.now() - timedelta(days=2))
    DataSyncJob.objects.update(completed_at=timezone.now() - timedelta(days=91))
    totals = retention_enforce()
    assert totals["records"] == 1 and totals["jobs"] == 1
    assert list(SyncRecord.objects.values_list("external_id", flat=True)) == ["e-1"]


def test_retention_settings_api(api_for, users_by_role):
    admin, viewer = api_for(users_by_role[Role.ADMIN]), api_for(users_by_role[Role.VIEWER])
    assert viewer.get("/api/data-rights/retention").json()["job_logs_days"] == 90
    assert (
        viewer.put("/api/data-rights/retention", {"deleted_records_days": 1, "webhook_deliveries_days": 1, "job_logs_days": 1}, format="json").status_code
        == 403
    )
    response = admin.put("/api/data-rights/retention", {"deleted_records_days": 7, "webhook_deliveries_days": 3, "job_logs_days": 30}, format="json")
    assert response.status_code == 200 and response.json()["webhook_deliveries_days"] == 3
