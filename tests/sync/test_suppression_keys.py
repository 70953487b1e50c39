"""Erasure suppressions are digests under an encryption key: rotation must say which keys they still need."""

import base64
import io

import pytest
from django.core.management import call_command

from people.services import email_digests, suppressions_add


def key(seed: str) -> str:
    return base64.b64encode(seed.encode().ljust(32, b"0")[:32]).decode()


@pytest.mark.django_db
def test_rotation_reports_suppressions_that_need_a_retired_or_missing_key(organization, settings):
    settings.BASTION_ENCRYPTION_KEYS = f"old:{key('old-key')}"
    suppressions_add(organization_id=organization.pk, emails=["Erased.Person@Acme.example"], source_keys=["okta:people:00u1"], erasure_reference="r1")
    before = set(email_digests(organization_id=organization.pk, email="erased.person@acme.example"))

    settings.BASTION_ENCRYPTION_KEYS = f"new:{key('new-key')},old:{key('old-key')}"
    out = io.StringIO()
    call_command("rotate_credentials_key", stdout=out)
    assert "sync.I001: 2 erasure suppression(s) use the retired key 'old'" in out.getvalue()
    # While the old key is listed the suppression still matches the address.
    assert before & set(email_digests(organization_id=organization.pk, email="erased.person@acme.example"))

    settings.BASTION_ENCRYPTION_KEYS = f"new:{key('new-key')}"
    out = io.StringIO()
    call_command("rotate_credentials_key", stdout=out)
    assert "sync.W001: 2 erasure suppression(s) were made with encryption key 'old'" in out.getvalue()
    assert "Add key 'old' back to BASTION_ENCRYPTION_KEYS" in out.getvalue()
