"""Sign-in lockout per account and per client address; X-Forwarded-For trusted only when configured (issue 13, finding 6)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEvent

PASSWORD = "pw-Secret-123"  # tests/conftest.py's make_user password


def sign_in(login: str, password: str, **meta: str) -> Client:
    client = Client(**meta)
    client.post("/accounts/login/", {"login": login, "password": password})
    return client


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def alice(make_user):
    user = make_user(username="alice")
    user.email = "alice@acme.example"
    user.save(update_fields=["email"])
    return user


@pytest.fixture
def bob(make_user):
    user = make_user(username="bob")
    user.email = "bob@acme.example"
    user.save(update_fields=["email"])
    return user


def test_one_persons_wrong_passwords_do_not_lock_others_behind_the_same_address(alice, bob):
    for _ in range(6):
        assert not signed_in(sign_in("alice", "wrong", REMOTE_ADDR="203.0.113.7"))
    assert signed_in(sign_in("bob", PASSWORD, REMOTE_ADDR="203.0.113.7"))
    # Alice herself is locked, even with the right password.
    assert not signed_in(sign_in("alice", PASSWORD, REMOTE_ADDR="203.0.113.7"))


def test_wrong_passwords_spread_over_addresses_and_login_names_still_lock_the_account(alice):
    logins = ["alice", "ALICE", "alice@acme.example", "Alice@Acme.Example", "alice", "alice@acme.example"]
    for index, login in enumerate(logins):
        assert not signed_in(sign_in(login, "wrong", REMOTE_ADDR=f"198.51.100.{index + 1}"))
    assert not signed_in(sign_in("alice@acme.example", PASSWORD, REMOTE_ADDR="198.51.100.200"))
    assert AuditEvent.objects.filter(action="auth.sign_in").count() == 0


def test_an_address_trying_many_accounts_is_locked_and_a_spoofed_forwarded_for_does_not_help(alice, settings):
    settings.BASTION_TRUSTED_PROXY_COUNT = 0
    for index in range(30):
        sign_in(f"nobody{index}", "wrong", REMOTE_ADDR="192.0.2.50", HTTP_X_FORWARDED_FOR=f"10.9.{index}.1")
    # The address is locked whatever X-Forwarded-For claims; the audit trail names the real peer.
    assert not signed_in(sign_in("alice", PASSWORD, REMOTE_ADDR="192.0.2.50", HTTP_X_FORWARDED_FOR="10.99.99.99"))
    assert set(AuditEvent.objects.filter(action="auth.sign_in_failed").values_list("ip_address", flat=True)) == {"192.0.2.50"}
    # Another address is not.
    assert signed_in(sign_in("alice", PASSWORD, REMOTE_ADDR="192.0.2.51"))


def test_behind_a_configured_proxy_each_client_address_counts_separately(alice, settings):
    settings.BASTION_TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for index in range(30):
        # A client's own X-Forwarded-For entries (left) are not trusted: only the entry the proxy appended (right) counts.
        sign_in(f"nobody{index}", "wrong", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"10.9.{index}.1, 203.0.113.9")
    assert not signed_in(sign_in("alice", PASSWORD, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.9"))
    client = sign_in("alice", PASSWORD, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.10")
    assert signed_in(client)
    assert AuditEvent.objects.filter(action="auth.sign_in").get().ip_address == "203.0.113.10"
