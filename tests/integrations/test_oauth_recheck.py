"""An OAuth callback completes only while the user who started it is still an admin of that organization (issue 13, Low)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEvent, Membership, Role
from integrations.models import Integration, IntegrationCredential, IntegrationStatus
from tests.integrations.oauth_helpers import consent, local, start_connect


@pytest.fixture
def admin_client(users_by_role) -> Client:
    client = Client()
    client.force_login(users_by_role[Role.ADMIN])
    return client


@pytest.mark.parametrize("change", ["demoted", "removed"])
def test_a_callback_after_demotion_or_removal_stores_nothing(admin_client, sandbox, users_by_role, organization, other_organization, change):
    # A member of another organization too: removal from this one must still stop the callback.
    Membership.objects.create(user=users_by_role[Role.ADMIN], organization=other_organization, role=Role.OWNER)
    callback = local(consent(start_connect(admin_client, sandbox)))
    membership = Membership.objects.get(user=users_by_role[Role.ADMIN], organization=organization)
    if change == "demoted":
        membership.role = Role.EDITOR
        membership.save(update_fields=["role"])
    else:
        membership.delete()
    response = admin_client.get(callback)
    assert response.status_code in (400, 403) and b"no longer an admin" in response.content
    assert not IntegrationCredential.objects.exists()
    assert Integration.objects.get().status == IntegrationStatus.DISCONNECTED
    assert not AuditEvent.objects.filter(action="credential.oauth_authorized").exists()


def test_a_callback_while_still_admin_completes(admin_client, sandbox):
    assert admin_client.get(local(consent(start_connect(admin_client, sandbox)))).status_code == 302
    assert Integration.objects.get().status == IntegrationStatus.CONNECTED
