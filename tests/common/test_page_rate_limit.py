"""Pages are rate limited like the API: form posts per user or client address; sign-in, sign-up and reset by allauth (issue 13, Low)."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.test import Client

from accounts.models import Role


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_page_posts_are_limited_per_user_with_retry_after(users_by_role, settings):
    settings.BASTION_PAGE_RATE = "3/minute"
    editor, other = signed_in(users_by_role[Role.EDITOR]), signed_in(users_by_role[Role.VIEWER])
    codes = [editor.post("/playbooks/new/", {"scenario_id": ""}).status_code for _ in range(5)]
    assert codes[:3] == [302, 302, 302] and codes[3:] == [429, 429]
    refused = editor.post("/playbooks/new/", {"scenario_id": ""})
    assert int(refused["Retry-After"]) > 0 and b"wait" in refused.content
    # Someone else, and reading pages, are not affected.
    assert other.post("/playbooks/new/", {"scenario_id": ""}).status_code != 429
    assert editor.get("/playbooks/").status_code == 200


def test_anonymous_page_posts_are_limited_per_address(db, settings):
    settings.BASTION_PAGE_RATE = "2/minute"
    codes = [Client(REMOTE_ADDR="198.51.100.9").post("/accounts/password/reset/", {"email": f"x{i}@example.com"}).status_code for i in range(3)]
    assert codes[-1] == 429
    assert Client(REMOTE_ADDR="198.51.100.10").post("/accounts/password/reset/", {"email": "y@example.com"}).status_code != 429


def test_the_api_keeps_its_own_throttle(api, settings):
    settings.BASTION_PAGE_RATE = "1/minute"
    assert [api.post("/api/scenarios/", {}, format="json").status_code for _ in range(3)] == [400, 400, 400]


def test_sign_in_sign_up_and_reset_have_allauth_limits():
    limits = django_settings.ACCOUNT_RATE_LIMITS
    assert {"login_failed", "login", "signup", "reset_password", "reset_password_from_key"} <= set(limits)
    assert "/key" in limits["login_failed"] and "/ip" in limits["login_failed"]
