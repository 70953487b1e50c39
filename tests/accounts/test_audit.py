import pytest
from django.test import Client

from accounts.models import AuditEvent
from accounts.services import audit_record, redact


def test_sign_in_and_failed_sign_in_are_audited(owner):
    client = Client()
    assert client.post("/accounts/login/", {"login": owner.username, "password": "wrong-password"}).status_code == 200
    assert AuditEvent.objects.filter(action="auth.sign_in_failed").count() == 1
    response = client.post("/accounts/login/", {"login": owner.username, "password": "pw-Secret-123"})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="auth.sign_in")
    assert event.actor == owner
    assert event.ip_address == "127.0.0.1"


def test_secrets_never_enter_the_audit_log(organization):
    event = audit_record(
        action="credential.update", organization=organization, changes={"client_secret": "s3cr3t", "nested": {"api_token": "t0k3n"}, "note": "kept"}
    )
    event.refresh_from_db()
    assert "s3cr3t" not in str(event.changes) and "t0k3n" not in str(event.changes)
    assert event.changes["note"] == "kept"
    assert redact([{"password": "x"}]) == [{"password": "[redacted]"}]


def test_audit_events_are_append_only(organization):
    event = audit_record(action="x.y", organization=organization)
    event.action = "changed"
    with pytest.raises(RuntimeError, match="append-only"):
        event.save()
    with pytest.raises(RuntimeError, match="append-only"):
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "x.y"
