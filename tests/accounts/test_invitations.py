"""Members join by e-mailed invitation; the last owner stays; sign-up is invitation-only and discloses nothing (issue 13, Low)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent, Invitation, Membership, Role

LINK = re.compile(r"/invitations/([\w-]+)/")


def invite(api, email: str, role: str = "editor", capture=None):
    response = api.post("/api/invitations/", {"email": email, "role": role}, format="json")
    assert response.status_code == 201, response.content
    return response


def token_from_mail() -> str:
    return LINK.search(mail.outbox[-1].body).group(1)


@pytest.fixture
def outsider_with_address(other_organization, make_user):
    user = make_user(Role.OWNER, other_organization, username="globex-ceo")
    user.email = "ceo@globex.example"
    user.save(update_fields=["email"])
    return user


# --- The last owner -------------------------------------------------------------------------------------------------


def test_the_last_owner_cannot_be_demoted_by_patch(api_for, owner, organization):
    membership = Membership.objects.get(user=owner, organization=organization)
    response = api_for(owner).patch(f"/api/members/{membership.pk}/", {"role": "admin"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "last_owner"
    membership.refresh_from_db()
    assert membership.role == Role.OWNER
    assert not AuditEvent.objects.filter(action="membership.set").exists()


def test_with_two_owners_one_may_step_down_but_not_the_second(api_for, owner, organization, make_user):
    second = make_user(Role.OWNER, organization, username="second-owner")
    first, other = (Membership.objects.get(user=u, organization=organization) for u in (owner, second))
    assert api_for(owner).patch(f"/api/members/{first.pk}/", {"role": "viewer"}, format="json").status_code == 200
    assert api_for(second).patch(f"/api/members/{other.pk}/", {"role": "viewer"}, format="json").status_code == 409
    assert api_for(second).delete(f"/api/members/{other.pk}/").status_code == 409
    assert Membership.objects.filter(organization=organization, role=Role.OWNER).count() == 1


# --- Invitations ----------------------------------------------------------------------------------------------------


def test_adding_a_platform_user_by_username_is_gone(api_for, owner, outsider_with_address):
    response = api_for(owner).post("/api/members/", {"username": outsider_with_address.username, "role": "viewer"}, format="json")
    assert response.status_code == 405
    assert outsider_with_address.email not in response.content.decode()
    assert not Membership.objects.filter(user=outsider_with_address, organization__slug="acme").exists()


def test_an_invitation_answers_the_same_whether_or_not_the_address_has_an_account(api_for, owner, outsider_with_address, django_capture_on_commit_callbacks):
    client = api_for(owner)
    with django_capture_on_commit_callbacks(execute=True):
        known = invite(client, outsider_with_address.email).json()
        unknown = invite(client, "nobody-yet@globex.example").json()
    assert set(known) == set(unknown) == {"id", "email", "role", "invited_by", "expires_at", "created_at"}
    assert outsider_with_address.username not in str(known)
    assert not Membership.objects.filter(user=outsider_with_address, organization__slug="acme").exists()  # nothing until accepted
    assert [m.to for m in mail.outbox] == [[outsider_with_address.email], ["nobody-yet@globex.example"]]


def test_the_invitee_accepts_through_the_page_and_joins_with_the_role(api_for, owner, organization, outsider_with_address, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invite(api_for(owner), "CEO@globex.example", role="admin")
    token = token_from_mail()
    page = Client()
    assert page.get(f"/invitations/{token}/").status_code == 200
    page.force_login(outsider_with_address)
    response = page.post(f"/invitations/{token}/")
    assert response.status_code == 302
    assert Membership.objects.get(user=outsider_with_address, organization=organization).role == Role.ADMIN
    # Used once: the link is dead afterwards.
    assert page.get(f"/invitations/{token}/").status_code == 404
    assert AuditEvent.objects.filter(action="invitation.accept", organization=organization).count() == 1


def test_someone_else_holding_the_link_cannot_accept(api_for, owner, organization, make_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invite(api_for(owner), "intended@acme.example")
    intruder = make_user(None, username="intruder")
    response = api_for(intruder).post("/api/invitations/accept", {"token": token_from_mail()}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "invitation_other_address"
    assert not Membership.objects.filter(user=intruder).exists()


def test_expired_or_revoked_invitations_are_refused(api_for, owner, organization, make_user, django_capture_on_commit_callbacks):
    invitee = make_user(None, username="invitee")
    invitee.email = "invitee@acme.example"
    invitee.save(update_fields=["email"])
    with django_capture_on_commit_callbacks(execute=True):
        invite(api_for(owner), invitee.email)
    expired = token_from_mail()
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_for(invitee).post("/api/invitations/accept", {"token": expired}, format="json").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        created = invite(api_for(owner), invitee.email).json()
    revoked = token_from_mail()
    assert api_for(owner).delete(f"/api/invitations/{created['id']}/").status_code == 204
    assert api_for(invitee).post("/api/invitations/accept", {"token": revoked}, format="json").status_code == 404
    assert api_for(invitee).post("/api/invitations/accept", {"token": "x" * 500}, format="json").status_code == 400
    assert not Membership.objects.filter(user=invitee).exists()


def test_accepting_never_lowers_an_existing_role(api_for, owner, organization, users_by_role, django_capture_on_commit_callbacks):
    admin = users_by_role[Role.ADMIN]
    admin.email = "admin@acme.example"
    admin.save(update_fields=["email"])
    with django_capture_on_commit_callbacks(execute=True):
        invite(api_for(owner), admin.email, role="viewer")
    assert api_for(admin).post("/api/invitations/accept", {"token": token_from_mail()}, format="json").status_code == 200
    assert Membership.objects.get(user=admin, organization=organization).role == Role.ADMIN


# --- Sign-up and password reset -------------------------------------------------------------------------------------


def signup(client: Client, email: str, username: str = "newperson"):
    return client.post("/accounts/signup/", {"email": email, "username": username, "password1": "a-Long-passw0rd!", "password2": "a-Long-passw0rd!"})


def test_sign_up_is_closed_without_an_invitation(db):
    client = Client()
    response = signup(client, "walk-in@example.com")
    assert "_auth_user_id" not in client.session
    assert response.status_code == 200 and b'name="password1"' not in response.content
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(email="walk-in@example.com").exists()


def test_sign_up_with_an_invitation_uses_the_invited_address_then_joins(api_for, owner, organization, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invite(api_for(owner), "new.hire@acme.example", role="editor")
    token = token_from_mail()
    client = Client()
    assert client.get(f"/invitations/{token}/").status_code == 200
    refused = signup(client, "someone.else@acme.example")
    assert "_auth_user_id" not in client.session and b"invitation was sent to" in refused.content
    signup(client, "new.hire@acme.example")
    assert "_auth_user_id" in client.session
    client.post(f"/invitations/{token}/")
    assert Membership.objects.get(organization=organization, user__email="new.hire@acme.example").role == Role.EDITOR


def test_password_reset_does_not_tell_whether_an_address_is_registered(owner):
    owner.email = "owner@acme.example"
    owner.save(update_fields=["email"])
    known = Client().post("/accounts/password/reset/", {"email": "owner@acme.example"})
    unknown = Client().post("/accounts/password/reset/", {"email": "stranger@acme.example"})
    assert (known.status_code, known.get("Location")) == (unknown.status_code, unknown.get("Location"))
    assert known.status_code == 302


def test_an_invitation_without_a_role_invites_a_viewer(api_for, owner, organization):
    response = api_for(owner).post("/api/invitations/", {"email": "quiet@acme.example"}, format="multipart")
    assert response.status_code == 201 and response.json()["role"] == "viewer"


def test_open_sign_up_when_turned_on_answers_a_taken_address_like_a_new_one(owner, settings):
    """Re-enabling open sign-up goes with mandatory verification: allauth then hides whether an address is registered."""
    settings.BASTION_OPEN_SIGNUP = True
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    owner.email = "owner@acme.example"
    owner.save(update_fields=["email"])
    taken = signup(Client(), "owner@acme.example", username="someone-new")
    fresh = signup(Client(), "fresh@acme.example", username="someone-else")
    assert (taken.status_code, taken.get("Location")) == (fresh.status_code, fresh.get("Location"))
    assert taken.status_code == 302 and b"already" not in taken.content
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.filter(email__iexact="owner@acme.example").count() == 1


def test_the_admin_cannot_demote_or_delete_the_last_owner_either(admin_client, owner, organization):
    membership = Membership.objects.get(user=owner, organization=organization)
    change = admin_client.post(f"/admin/accounts/membership/{membership.pk}/change/", {"user": owner.pk, "organization": organization.pk, "role": "admin"})
    assert change.status_code == 200 and b"at least one owner" in change.content
    assert admin_client.post(f"/admin/accounts/membership/{membership.pk}/delete/", {"post": "yes"}).status_code == 403
    membership.refresh_from_db()
    assert membership.role == Role.OWNER
