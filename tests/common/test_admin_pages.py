"""Every project model is in the admin, and its list, search, filters and change pages render for staff."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from tests.hardening.tenant_objects import PROJECT_APPS, build
from tests.hardening.tenant_objects import tenant_models as tenant_model_list

# Join tables and internals that are edited inline from their parent, with the parent named.
INLINE_ONLY: dict[str, str] = {
    "playbooks.PlaybookStepTemplate": "edited inline on its PlaybookTemplate (the structured step editor)",
    "playbooks.TimelineEvent": "shown inline on its PlaybookRun",
    "people.PersonIdentity": "shown inline on its Person (one row per source system)",
    "sync.SyncJobLog": "shown inline on its DataSyncJob",
}


def project_models():
    return [m for m in apps.get_models() if m._meta.app_label in PROJECT_APPS]


def test_every_project_model_is_registered():
    missing = [m._meta.label for m in project_models() if not admin.site.is_registered(m) and m._meta.label not in INLINE_ONLY]
    assert not missing, f"Models missing from the admin: {missing}"


@pytest.mark.django_db
def test_admin_pages_render(admin_client, other_organization):
    cache: dict = {}
    tenant = set(tenant_model_list())
    failures = []
    for model in project_models():
        if not admin.site.is_registered(model):
            continue
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        row = build(model, other_organization, cache) if model in tenant else None
        pages = [reverse(f"{prefix}_changelist"), reverse(f"{prefix}_changelist") + "?q=x"]
        if row is not None:
            pages.append(reverse(f"{prefix}_change", args=[row.pk]))
        for page in pages:
            response = admin_client.get(page)
            if response.status_code != 200:
                failures.append(f"{page} → {response.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_credential_contents_never_shown_in_admin(admin_client, organization):
    from integrations.models import CredentialType, Integration, IntegrationCredential

    integration = Integration.objects.create(organization=organization, connector_key="slack", display_name="Slack")
    credential = IntegrationCredential.objects.create(
        organization=organization, integration=integration, credential_type=CredentialType.OAUTH, data={"access_token": "xoxb-admin-leak-check"}
    )
    for page in [
        reverse("admin:integrations_integrationcredential_change", args=[credential.pk]),
        reverse("admin:integrations_integrationcredential_changelist"),
        reverse("admin:integrations_integration_change", args=[integration.pk]),
    ]:
        body = admin_client.get(page).content.decode()
        assert "xoxb-admin-leak-check" not in body
        assert "v1:test1:" not in body  # not even the ciphertext
