"""A data source's field mapping in the admin: one picker per Bastion field, choices from discovery; unknown names refused."""

from __future__ import annotations

import pytest

from integrations.models import DataSource, Integration, IntegrationStatus

DISCOVERED = [
    {"name": "email", "label": "Email", "type": "string", "path": "$.email"},
    {"name": "first_name", "label": "First name", "type": "string", "path": "$.first_name"},
    {"name": "job_title", "label": "Job title", "type": "string", "path": "$.job_title"},
]


@pytest.fixture
def people_source(organization) -> DataSource:
    integration = Integration.objects.create(organization=organization, connector_key="demo", display_name="Demo", status=IntegrationStatus.CONNECTED)
    return DataSource.objects.create(
        organization=organization, integration=integration, entity_type="people", discovered_fields=DISCOVERED, field_mapping={"email": "email"}
    )


def _post(people_source, **mapping) -> dict[str, str]:
    data = {
        "organization": str(people_source.organization_id),
        "integration": str(people_source.integration_id),
        "entity_type": "people",
        "is_enabled": "on",
        "cursor": "null",
        "schedule": "",
        "field_mapping": "{}",
        "stale_reason": "",
    }
    data.update({f"map__{k}": v for k, v in mapping.items()})
    return data


def test_mapping_is_edited_with_pickers_and_saved_through_the_service(admin_client, people_source):
    url = f"/admin/integrations/datasource/{people_source.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="map__given_name"' in page and '<option value="first_name">First name (first_name)</option>' in page
    assert 'name="field_mapping"' in page and 'type="hidden" name="field_mapping"' in page  # no raw JSON box
    response = admin_client.post(url, _post(people_source, email="email", given_name="first_name", title="job_title"))
    assert response.status_code == 302, response.content.decode()[:3000]
    people_source.refresh_from_db()
    assert people_source.field_mapping == {"email": "email", "given_name": "first_name", "title": "job_title"}


def test_a_field_that_was_not_discovered_is_refused(admin_client, people_source):
    url = f"/admin/integrations/datasource/{people_source.pk}/change/"
    response = admin_client.post(url, _post(people_source, email="email", given_name="nickname"))
    assert response.status_code == 200 and "Select a valid choice. nickname is not one of the available choices." in response.content.decode()
    people_source.refresh_from_db()
    assert people_source.field_mapping == {"email": "email"}


def test_without_discovery_the_raw_mapping_may_name_only_bastion_fields(admin_client, people_source):
    DataSource.objects.filter(pk=people_source.pk).update(discovered_fields=[])
    url = f"/admin/integrations/datasource/{people_source.pk}/change/"
    data = _post(people_source)
    data["field_mapping"] = '{"shoe_size": "shoe"}'
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "Not a Bastion field here: shoe_size." in response.content.decode()
    data["field_mapping"] = '["email"]'
    assert "A mapping is an object of Bastion field" in admin_client.post(url, data).content.decode()
    people_source.refresh_from_db()
    assert people_source.field_mapping == {"email": "email"}
