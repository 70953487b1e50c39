import json

from django.test import Client

from accounts.models import AuditEvent


def test_oversized_api_body_gets_413_with_envelope(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("/api/members/", data=json.dumps({"username": "x" * 5000, "role": "viewer"}), content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_oversized_webhook_gets_413(client, settings, db):
    settings.BASTION_WEBHOOK_MAX_BYTES = 100
    response = client.post("/api/webhooks/00000000-0000-0000-0000-000000000000", data="x" * 500, content_type="application/json")
    assert response.status_code == 413


def test_sign_in_brute_force_is_locked_out(owner):
    client = Client()
    for _ in range(5):
        assert client.post("/accounts/login/", {"login": owner.username, "password": "wrong"}).status_code == 200
    # Even the right password is refused while the lockout lasts.
    response = client.post("/accounts/login/", {"login": owner.username, "password": "pw-Secret-123"})
    assert response.status_code in (200, 429)
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.sign_in").count() == 0


def test_csrf_holds_on_forms(owner):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"login": owner.username, "password": "pw-Secret-123"})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_nul_bytes_in_the_url_are_refused_with_400(api):
    response = api.get("/api/members/?search=%00abc")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_api_is_rate_limited_per_user(api, monkeypatch):
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})
    codes = [api.get("/api/members/").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    response = api.get("/api/members/")
    assert response.json()["error"]["code"] == "throttled" and int(response["Retry-After"]) > 0
