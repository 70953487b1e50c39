"""allowed_roles when only some of a field's sources are restricted: their data is left out, the rest still answers."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Role
from integrations.models import Integration, IntegrationStatus
from people.models import Person, PersonIdentity
from sync.models import SyncRecord


def _person(organization, integration: Integration, name: str) -> Person:
    email = f"{name.lower()}@acme.example"
    person = Person.objects.create(organization=organization, display_name=name, email=email, search_text=f"{name.lower()} {email}")
    PersonIdentity.objects.create(organization=organization, person=person, integration=integration, source=integration.connector_key, external_id=name)
    return person


@pytest.fixture
def mixed_sources(organization):
    """Active Directory open to everyone, Okta restricted to admins; a person known from both, and one from each."""
    ldap = Integration.objects.create(organization=organization, connector_key="ldap", display_name="AD", status=IntegrationStatus.CONNECTED)
    okta = Integration.objects.create(
        organization=organization, connector_key="okta", display_name="Okta (HR only)", status=IntegrationStatus.CONNECTED, allowed_roles=["admin"]
    )
    both = _person(organization, ldap, "Both")
    PersonIdentity.objects.create(organization=organization, person=both, integration=okta, source="okta", external_id="both-okta")
    _person(organization, ldap, "Directory")
    _person(organization, okta, "Hidden")
    for integration, entity, name in ((ldap, "users", "Directory"), (okta, "users", "Hidden")):
        data = {"external_id": name, "name": name, "email": f"{name.lower()}@acme.example"}
        SyncRecord.objects.create(
            organization=organization,
            integration=integration,
            entity_type=entity,
            external_id=name,
            raw=data,
            data=data,
            content_hash=name,
            last_seen_at=timezone.now(),
        )
    return ldap, okta


def _labels(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(result["label"] for result in response.json()["results"])


@pytest.mark.django_db
def test_people_known_only_through_a_restricted_integration_are_left_out_of_options(mixed_sources, users_by_role, api_for):
    viewer = api_for(users_by_role[Role.VIEWER])
    url = "/api/scenarios/crisis_management/fields/stakeholders/options"
    assert _labels(viewer.get(url)) == ["Both", "Directory"]
    assert _labels(viewer.get(url, {"connector": "ldap"})) == ["Both", "Directory"]
    refused = viewer.get(url, {"connector": "okta"})
    assert refused.status_code == 403
    assert refused.json()["error"]["message"].startswith("Your role (viewer) may not use the integration Okta (HR only)")
    admin = api_for(users_by_role[Role.ADMIN])
    assert _labels(admin.get(url)) == ["Both", "Directory", "Hidden"]
    assert _labels(admin.get(url, {"connector": "okta"})) == ["Both", "Hidden"]


@pytest.mark.django_db
def test_field_import_leaves_restricted_sources_out(mixed_sources, users_by_role, api_for):
    editor = api_for(users_by_role[Role.EDITOR])
    url = "/api/scenarios/crisis_management/fields/stakeholders/import"
    imported = editor.post(url, {}, format="json")
    assert imported.status_code == 200, imported.content
    assert sorted(entry["email"] for entry in imported.json()["value"]) == ["both@acme.example", "directory@acme.example"]
    refused = editor.post(url, {"connector": "okta"}, format="json")
    assert refused.status_code == 403 and "Okta (HR only)" in refused.json()["error"]["message"]
    admin = api_for(users_by_role[Role.ADMIN]).post(url, {"connector": "okta"}, format="json")
    assert sorted(entry["email"] for entry in admin.json()["value"]) == ["both@acme.example", "hidden@acme.example"]


@pytest.mark.django_db
def test_syncs_started_by_bastion_itself_are_not_restricted(mixed_sources, users_by_role):
    """Schedules and webhooks have no person behind them: allowed_roles is about people, so they still run."""
    from common.errors import ApplicationError
    from integrations.access import integration_access_check

    _ldap, okta = mixed_sources
    integration_access_check(integration=okta, actor=None)
    with pytest.raises(ApplicationError) as caught:
        integration_access_check(integration=okta, actor=users_by_role[Role.EDITOR])
    assert caught.value.status_code == 403 and "(editor)" in caught.value.message
    integration_access_check(integration=okta, actor=users_by_role[Role.ADMIN])
