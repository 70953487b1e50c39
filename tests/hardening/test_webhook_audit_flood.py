"""Forged webhooks write nothing: no audit row, no inbox row; routine secret use is not audited (issue 13, finding 7)."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from sync.models import WebhookDelivery
from tests.hardening.test_webhook_hardening import WEBHOOK_VENDORS, post, signed_for, url_of, webhook_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_flood_guard(settings):
    # Every forged request must reach signature verification, not stop at the per-second flood guard.
    settings.BASTION_WEBHOOK_MAX_PER_SECOND = 100_000


def forged(item, index: int = 0):
    return webhook_for(item.key, secret=f"forged-{index}", url=f"http://testserver{url_of(item)}", delivery_id=f"forged-{index}")


def test_three_hundred_bad_signatures_write_nothing(client, connect_one, organization):
    item = connect_one(organization, "sandbox_directory")
    audit_before = AuditEvent.objects.count()
    codes = {post(client, item, forged(item, index)).status_code for index in range(300)}
    assert codes == {401}
    assert AuditEvent.objects.count() == audit_before
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("key", WEBHOOK_VENDORS)
def test_no_vendor_writes_before_verifying(client, connect_one, organization, key):
    item = connect_one(organization, key)
    audit_before = AuditEvent.objects.count()
    for index in range(3):
        assert post(client, item, forged(item, index)).status_code == 401
    assert AuditEvent.objects.count() == audit_before and not WebhookDelivery.objects.exists()


def test_a_valid_delivery_does_not_audit_the_secret_use(client, connect_one, organization, django_capture_on_commit_callbacks):
    item = connect_one(organization, "sandbox_directory")
    with django_capture_on_commit_callbacks(execute=False):
        assert post(client, item, signed_for(item, delivery_id="ok-1")).status_code == 202
    assert not AuditEvent.objects.filter(action="credential.decrypt", changes__purpose="webhook_verify").exists()
    assert WebhookDelivery.objects.count() == 1
