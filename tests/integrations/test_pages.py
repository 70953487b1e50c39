"""The marketplace, the connection wizard (credential path) and the detail page, server-rendered."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEvent, Role
from integrations.models import Integration, IntegrationStatus


@pytest.fixture
def admin_client(users_by_role) -> Client:
    client = Client()
    client.force_login(users_by_role[Role.ADMIN])
    return client


@pytest.fixture
def viewer_client(users_by_role) -> Client:
    client = Client()
    client.force_login(users_by_role[Role.VIEWER])
    return client


def test_marketplace_requires_sign_in(client):
    response = client.get("/integrations/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_marketplace_shows_categories_and_status(admin_client, organization):
    page = admin_client.get("/integrations/").content.decode()
    assert "Connect your tools" in page and "Demo Workspace" in page and "Not connected" in page
    assert 'href="/integrations/connect/demo/"' in page
    Integration.objects.create(organization=organization, connector_key="demo", display_name="Demo A", status=IntegrationStatus.CONNECTED)
    assert "Connected" in admin_client.get("/integrations/?category=collaboration").content.decode()
    Integration.objects.update(status=IntegrationStatus.DEGRADED)
    assert "Needs attention" in admin_client.get("/integrations/").content.decode()
    filtered = admin_client.get("/integrations/?category=crm").content.decode()
    assert "Demo Workspace" not in filtered


def test_viewers_browse_but_cannot_open_the_wizard(viewer_client):
    assert 'href="/integrations/connect/demo/"' not in viewer_client.get("/integrations/").content.decode()
    assert viewer_client.get("/integrations/connect/demo/").status_code == 403
    assert viewer_client.post("/integrations/connect/demo/", {"auth_method": "api_key"}).status_code == 403
    assert not Integration.objects.exists()


def test_wizard_with_an_api_key_end_to_end(admin_client, sandbox, demo_token):
    form = admin_client.get("/integrations/connect/demo/").content.decode()
    assert 'for="credential_api_key"' in form and 'type="password"' in form
    bad = admin_client.post("/integrations/connect/demo/", {"display_name": "Demo", "base_url": f"{sandbox}/demo", "auth_method": "api_key"})
    assert bad.status_code == 400 and "This field is required." in bad.content.decode() and not Integration.objects.exists()
    response = admin_client.post(
        "/integrations/connect/demo/", {"display_name": "Demo", "base_url": f"{sandbox}/demo", "auth_method": "api_key", "credential_api_key": demo_token}
    )
    integration = Integration.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/integrations/{integration.pk}/setup/"
    setup = admin_client.get(response["Location"]).content.decode()
    assert "Operations (OPS)" in setup  # live project choices from the vendor
    assert "It is shown only once" in setup and demo_token not in setup
    assert "It is shown only once" not in admin_client.get(response["Location"]).content.decode()
    assert admin_client.post(response["Location"], {"config_project": ""}).status_code == 400
    mapped = admin_client.post(response["Location"], {"config_project": "OPS"})
    assert mapped["Location"] == f"/integrations/{integration.pk}/map/"
    mapping = admin_client.get(mapped["Location"]).content.decode()
    assert "first_name" in mapping and "known synonym" in mapping
    assert '<option value="first_name" selected>' in mapping  # given_name preselected from the suggestion
    done = admin_client.post(mapped["Location"], {"enabled_people": "on", "map_people_email": "email", "map_people_given_name": "first_name"})
    assert done["Location"] == f"/integrations/{integration.pk}/finish/"
    ds = integration.data_sources.get()
    assert ds.field_mapping == {"email": "email", "given_name": "first_name"} and ds.is_enabled
    tested = admin_client.post(done["Location"]).content.decode()
    assert "Connection works" in tested and 'id="wizard-done"' in tested
    integration.refresh_from_db()
    assert integration.config["project"] == "OPS" and integration.status == IntegrationStatus.CONNECTED
    detail = admin_client.get(f"/integrations/{integration.pk}/").content.decode()
    assert "GET /demo/api/me" in detail and "Reconnect" in detail and demo_token not in detail
    assert AuditEvent.objects.filter(action="data_source.update").exists()


def test_detail_disconnect_keeps_settings_and_reconnect_with_a_key_restores(admin_client, sandbox, demo_token):
    admin_client.post(
        "/integrations/connect/demo/", {"display_name": "Demo", "base_url": f"{sandbox}/demo", "auth_method": "api_key", "credential_api_key": demo_token}
    )
    integration = Integration.objects.get()
    admin_client.post(f"/integrations/{integration.pk}/setup/", {"config_project": "OPS"})
    admin_client.post(f"/integrations/{integration.pk}/actions/", {"action": "disconnect"})
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.DISCONNECTED and not integration.credentials.exists() and integration.config["project"] == "OPS"
    page = admin_client.post(f"/integrations/{integration.pk}/reconnect/", {"auth_method": "api_key", "credential_api_key": demo_token})
    assert page.status_code == 302
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.config["project"] == "OPS"
    assert admin_client.post(f"/integrations/{integration.pk}/actions/", {"action": "test"}).status_code == 302


def test_other_organizations_integration_pages_are_404(admin_client, other_organization):
    foreign = Integration.objects.create(organization=other_organization, connector_key="demo", display_name="Theirs")
    for url in ["/", "setup/", "map/", "finish/", "reconnect/", "authorize/"]:
        assert admin_client.get(f"/integrations/{foreign.pk}/{url.lstrip('/')}").status_code == 404
    assert admin_client.get("/integrations/connect/unknown/").status_code == 404


def test_every_connector_logo_is_a_shipped_local_file(admin_client):
    """Logos are small local SVGs (no CDN); a connector without one gets the generic logo."""
    from django.contrib.staticfiles import finders

    from integrations.registry import manifests
    from integrations.selectors import logo_url

    for manifest in manifests():
        url = logo_url(manifest.logo)
        assert url.startswith("/static/connectors/") and url.endswith(".svg")
        assert finders.find(url.removeprefix("/static/")), manifest.key
    assert logo_url("connectors/not-shipped.svg") == "/static/connectors/generic.svg"
    main = admin_client.get("/integrations/").content.decode().split("<main")[1].split("</main>")[0]
    assert "http://" not in main and "https://" not in main  # nothing is loaded from another origin
