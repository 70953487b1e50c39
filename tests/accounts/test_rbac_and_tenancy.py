import pytest

from accounts.models import AuditEvent, Invitation, Membership, Role

ROLES = [Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER]


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_members(role, api_for, users_by_role):
    assert api_for(users_by_role[role]).get("/api/members/").status_code == 200


@pytest.mark.parametrize(("role", "allowed"), [(Role.VIEWER, False), (Role.EDITOR, False), (Role.ADMIN, False), (Role.OWNER, True)])
def test_only_owners_invite_members(role, allowed, api_for, users_by_role, organization):
    response = api_for(users_by_role[role]).post("/api/invitations/", {"email": f"new-{role}@acme.example", "role": "editor"}, format="json")
    assert response.status_code == (201 if allowed else 403)
    assert Invitation.objects.filter(organization=organization, email=f"new-{role}@acme.example").exists() is allowed
    if not allowed:
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(("role", "allowed"), [(Role.VIEWER, False), (Role.EDITOR, False), (Role.ADMIN, True), (Role.OWNER, True)])
def test_audit_trail_needs_admin(role, allowed, api_for, users_by_role):
    assert api_for(users_by_role[role]).get("/api/audit-events/").status_code == (200 if allowed else 403)


def test_other_organizations_membership_is_404(api_for, users_by_role, outsider, other_organization):
    foreign = Membership.objects.get(user=outsider, organization=other_organization)
    client = api_for(users_by_role[Role.OWNER])
    assert client.get(f"/api/members/{foreign.pk}/").status_code == 404
    assert client.patch(f"/api/members/{foreign.pk}/", {"role": "viewer"}, format="json").status_code == 404
    assert client.delete(f"/api/members/{foreign.pk}/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.role == Role.OWNER


def test_selecting_an_organization_you_do_not_belong_to_is_404(api_for, users_by_role, other_organization):
    client = api_for(users_by_role[Role.OWNER])
    response = client.get("/api/members/", HTTP_X_BASTION_ORGANIZATION=str(other_organization.pk))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_user_in_two_organizations_chooses_with_header(api_for, owner, other_organization):
    Membership.objects.create(user=owner, organization=other_organization, role=Role.VIEWER)
    client = api_for(owner)
    members = client.get("/api/members/", HTTP_X_BASTION_ORGANIZATION=other_organization.slug).json()["results"]
    assert [m["username"] for m in members] == [owner.username]
    # Viewer there: cannot manage members of the other organization.
    mine = Membership.objects.get(user=owner, organization=other_organization)
    response = client.patch(f"/api/members/{mine.pk}/", {"role": "owner"}, format="json", HTTP_X_BASTION_ORGANIZATION=other_organization.slug)
    assert response.status_code == 403


def test_last_owner_cannot_be_removed(api_for, owner, organization):
    membership = Membership.objects.get(user=owner, organization=organization)
    response = api_for(owner).delete(f"/api/members/{membership.pk}/")
    assert response.status_code == 409
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_anonymous_is_refused_with_envelope(client, db):
    response = client.get("/api/members/")
    assert response.status_code in (401, 403)
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_organization_list_shows_only_mine(api_for, owner, organization, other_organization):
    names = [o["name"] for o in api_for(owner).get("/api/organizations/").json()["results"]]
    assert names == [organization.name]
    assert api_for(owner).get(f"/api/organizations/{other_organization.pk}/").status_code == 404


def test_member_changes_are_audited(api_for, owner, organization, make_user):
    newcomer = make_user(Role.VIEWER, organization, username="newcomer")
    membership = Membership.objects.get(user=newcomer, organization=organization)
    api_for(owner).patch(f"/api/members/{membership.pk}/", {"role": "editor"}, format="json")
    event = AuditEvent.objects.get(action="membership.set", organization=organization)
    assert event.actor == owner
    assert event.changes["role"] == ["viewer", "editor"]
    assert event.changes["user"] == newcomer.username
