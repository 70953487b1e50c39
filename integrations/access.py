"""Per-integration permissions (`allowed_roles`): the one rule every use of an integration's data or actions goes through.

An integration with `allowed_roles` set is used only by members with one of those roles, and by admins and owners (who
can change the setting anyway). Live reads and pushes, form options, field imports, syncs, playbook bindings and
activations all call `integration_access_check` (one integration) or `restricted_integration_ids` (lists), so the
answer and its message are the same everywhere. Work Bastion starts itself (schedules, webhooks, trigger rules) has
no person behind it and is not restricted here; the person who configured it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from accounts.models import ROLE_RANK, Membership, Organization, Role
from common.errors import ApplicationError
from integrations.models import Integration

RESTRICTED_CODE = "permission_denied"  # the code every refused role gets; the message names the integration


def role_may_use(integration: Integration, role: str) -> bool:
    """True when a member with `role` may use the integration's data and actions."""
    allowed = integration.allowed_roles or []
    return not allowed or role in allowed or ROLE_RANK[Role(role)] >= ROLE_RANK[Role.ADMIN]


def restricted_error(integration: Integration, role: str) -> ApplicationError:
    """The 403 a person gets: which integration, their role, and the roles that may use it."""
    allowed = ", ".join(integration.allowed_roles or [])
    return ApplicationError(
        f"Your role ({role}) may not use the integration {integration.display_name}: only {allowed} may (admins and owners always may). "
        "Ask an admin to do this, or to change the integration's allowed roles.",
        code=RESTRICTED_CODE,
        status_code=403,
        fields={"integration": [f"{integration.display_name} ({integration.pk}) is restricted to {allowed}."]},
    )


def membership_of(actor: Any, organization: Organization | Any) -> Membership | None:
    """The actor's membership in the organization; None for work Bastion starts itself (no person) or a non-member."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None
    organization_id = getattr(organization, "pk", organization)
    return Membership.objects.filter(user=actor, organization_id=organization_id).first()


def integration_access_check(*, integration: Integration, membership: Membership | None = None, actor: Any = None) -> None:
    """Raise the 403 unless the member (or the signed-in actor) may use the integration; no person means system work."""
    if membership is None and getattr(actor, "is_authenticated", False) and not getattr(actor, "is_staff", False):
        # Staff act through the Django admin, which sees every organization by design (like the admin's own actions).
        membership = membership_of(actor, integration.organization_id)
        if membership is None:
            raise ApplicationError("You are not a member of this organization.", code="permission_denied", status_code=403)
    if membership is not None and not role_may_use(integration, membership.role):
        raise restricted_error(integration, membership.role)


def integrations_access_check(*, integrations: Iterable[Integration | None], membership: Membership | None = None, actor: Any = None) -> None:
    """The same check for several integrations (a playbook's steps): the first refused one answers."""
    seen: set[Any] = set()
    for integration in integrations:
        if integration is not None and integration.pk not in seen:
            seen.add(integration.pk)
            integration_access_check(integration=integration, membership=membership, actor=actor)


def restricted_integration_ids(*, organization: Organization | Any, membership: Membership | None) -> set[Any]:
    """Ids of the organization's integrations this member may not use (empty for admins, owners and system work)."""
    if membership is None or membership.has_role(Role.ADMIN):
        return set()
    organization_id = getattr(organization, "pk", organization)
    return {
        integration.pk
        for integration in Integration.objects.filter(organization_id=organization_id).exclude(allowed_roles=[]).only("pk", "allowed_roles")
        if not role_may_use(integration, membership.role)
    }


def sources_access_check(
    *, organization: Organization | Any, connector_keys: Iterable[str], membership: Membership | None = None, actor: Any = None
) -> set[Any]:
    """For reads across a field's source connectors: the ids to leave out; a 403 when the member may use none of them."""
    if membership is None and not getattr(actor, "is_staff", False):
        membership = membership_of(actor, organization)
    restricted = restricted_integration_ids(organization=organization, membership=membership)
    if restricted and membership is not None:
        organization_id = getattr(organization, "pk", organization)
        candidates = list(Integration.objects.filter(organization_id=organization_id, connector_key__in=list(connector_keys)).order_by("created_at"))
        if candidates and all(candidate.pk in restricted for candidate in candidates):
            raise restricted_error(candidates[0], membership.role)
    return restricted
