"""The marketplace and wizard as a person meets them: search, one badge and Manage, every tool's own logo, OAuth first,
steps that link back, and a project the vendor does not list refused on its own step."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from integrations.models import Integration, IntegrationStatus
from integrations.selectors import connector_catalog


@pytest.fixture
def admin_client(users_by_role) -> Client:
    client = Client()
    client.force_login(users_by_role[Role.ADMIN])
    return client


def test_every_connector_has_its_own_logo(organization):
    logos = {entry["key"]: entry["logo_url"] for entry in connector_catalog(organization=organization)}
    assert [key for key, url in logos.items() if url.endswith("generic.svg")] == []
    assert {logos[k] for k in ("ldap", "entra", "okta", "scim")} == {f"/static/connectors/{k}.svg" for k in ("ldap", "entra", "okta", "scim")}


def test_marketplace_search_chips_and_manage(admin_client, organization):
    page = admin_client.get("/integrations/?q=jira").content.decode()
    assert 'data-connector="jira"' in page and 'data-connector="slack"' not in page
    assert 'class="chip" href="?category=' in page and "<select" not in page  # chips, not a dropdown and a Filter button
    integration = Integration.objects.create(organization=organization, connector_key="slack", display_name="Slack", status=IntegrationStatus.CONNECTED)
    card = admin_client.get("/integrations/?q=slack").content.decode().split('data-connector="slack"')[1].split("</li>")[0]
    assert card.count('class="badge') == 1 and f'href="/integrations/{integration.pk}/"' in card and ">Manage<" in card and ">Connect<" not in card
    Integration.objects.filter(pk=integration.pk).update(status=IntegrationStatus.AUTH_FAILED)
    card = admin_client.get("/integrations/?q=slack").content.decode().split('data-connector="slack"')[1].split("</li>")[0]
    assert "Needs attention" in card and ">Fix<" in card
    assert "No tool matches" in admin_client.get("/integrations/?q=nothing-like-this").content.decode()


def test_oauth_is_offered_first_and_the_credential_section_is_marked_for_key_methods(admin_client):
    page = admin_client.get("/integrations/connect/jira/").content.decode()
    assert page.index('id="auth_oauth2"') < page.index('id="auth_basic"')
    assert 'id="auth_oauth2" name="auth_method" value="oauth2" checked' in page
    assert 'id="credential-section" aria-labelledby="cred-heading" data-auth="basic ' in page
    assert "js/connect.js" in page and ">basic<" not in page  # sign-in options in words


def test_a_project_the_vendor_does_not_list_is_refused_on_its_step(admin_client, sandbox, demo_token):
    admin_client.post(
        "/integrations/connect/demo/", {"display_name": "Demo", "base_url": f"{sandbox}/demo", "auth_method": "api_key", "credential_api_key": demo_token}
    )
    integration = Integration.objects.get()
    refused = admin_client.post(f"/integrations/{integration.pk}/setup/", {"config_project": "XYZ"})
    assert refused.status_code == 400 and "XYZ: not found in Demo. Choose from the list." in refused.content.decode()
    integration.refresh_from_db()
    assert integration.config.get("project", "") == ""  # nothing saved
    assert admin_client.post(f"/integrations/{integration.pk}/setup/", {"config_project": "OPS"}).status_code == 302
    mapping = admin_client.get(f"/integrations/{integration.pk}/map/").content.decode()
    assert f'href="/integrations/{integration.pk}/setup/"' in mapping  # a done step links back
    assert "Bastion → Demo" in mapping  # the outbound direction is shown


def test_leaving_the_wizard_starts_the_first_sync_and_goes_where_it_says(admin_client, sandbox, demo_token, django_capture_on_commit_callbacks):
    from sync.models import DataSyncJob

    admin_client.post(
        "/integrations/connect/demo/", {"display_name": "Demo", "base_url": f"{sandbox}/demo", "auth_method": "api_key", "credential_api_key": demo_token}
    )
    integration = Integration.objects.get()
    admin_client.post(f"/integrations/{integration.pk}/setup/", {"config_project": "OPS"})
    admin_client.post(f"/integrations/{integration.pk}/map/", {"enabled_people": "on", "map_people_email": "email"})
    done = admin_client.post(f"/integrations/{integration.pk}/finish/").content.decode()
    sample = done.split('id="sample-record"', 1)[1].split("</div>", 1)[0]  # a real record, read through the mapping
    assert "A sample of people" in sample and "@" in sample
    assert 'id="next-scenario"' in done and 'value="/scenarios/new/"' in done and "first sync starts when you leave" in done
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/integrations/status/sync-integration/{integration.pk}", {"next": "/scenarios/new/"})
    assert response.status_code == 302 and response["Location"] == "/scenarios/new/"
    assert DataSyncJob.objects.filter(integration=integration).count() == 1
    elsewhere = admin_client.post(f"/integrations/status/sync-integration/{integration.pk}", {"next": "//evil.example/"})
    assert elsewhere["Location"] == f"/integrations/{integration.pk}/"  # never another origin


def test_an_abandoned_oauth_attempt_leaves_no_twin(admin_client, sandbox):
    for _ in range(2):  # the person goes to Jira's consent page, comes back without allowing, and tries again
        response = admin_client.post("/integrations/connect/jira/", {"display_name": "Jira", "base_url": f"{sandbox}/jira", "auth_method": "oauth2"})
        assert response.status_code == 302 and "/authorize" in response["Location"]
    assert Integration.objects.filter(connector_key="jira").count() == 1


def test_an_error_older_than_the_last_success_is_not_shown_as_current(admin_client, organization):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    integration = Integration.objects.create(
        organization=organization,
        connector_key="demo",
        display_name="Demo",
        status=IntegrationStatus.CONNECTED,
        last_error="HTTP 401 from the vendor",
        last_error_at=now - timedelta(minutes=30),
        last_success_at=now - timedelta(minutes=2),
    )
    cell = admin_client.get(f"/integrations/{integration.pk}/").content.decode().split('id="last-error"', 1)[1].split("</dd>", 1)[0]
    assert "none since 2 min ago" in cell and 'class="error"' not in cell
    Integration.objects.filter(pk=integration.pk).update(last_error_at=now)
    cell = admin_client.get(f"/integrations/{integration.pk}/").content.decode().split('id="last-error"', 1)[1].split("</dd>", 1)[0]
    assert '<span class="error">HTTP 401 from the vendor</span>' in cell
