"""Writes for organizations, memberships and the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils.text import slugify

from accounts.models import AuditEvent, Membership, Organization, Role
from common.client_address import client_address
from common.errors import ApplicationError

SECRET_KEY_HINTS = ("secret", "password", "token", "key", "credential", "authorization", "private")
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    """Replace values under secret-looking keys so they never reach the audit log."""
    if isinstance(value, dict):
        return {k: (REDACTED if any(h in str(k).lower() for h in SECRET_KEY_HINTS) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def client_ip(request: HttpRequest | None) -> str | None:
    return client_address(request)


def audit_record(
    *,
    action: str,
    organization: Organization | None = None,
    actor: Any = None,
    target: Any = None,
    target_type: str = "",
    target_id: str = "",
    changes: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Append one audit event; secret-looking values are redacted."""
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
    if actor is None and request is not None and getattr(request, "user", None) and request.user.is_authenticated:
        actor = request.user
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor,
        actor_label=(actor.get_username() if actor else "system"),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        changes=redact(changes or {}),
        ip_address=client_ip(request),
    )


def model_changes(instance: Any, fields: list[str], before: dict[str, Any] | None = None) -> dict[str, Any]:
    """Describe a create or update as {field: [old, new]} over the given fields."""
    after = {f: _jsonable(getattr(instance, f, None)) for f in fields}
    if before is None:
        return {f: [None, v] for f, v in after.items()}
    return {f: [before.get(f), v] for f, v in after.items() if before.get(f) != v}


def snapshot(instance: Any, fields: list[str]) -> dict[str, Any]:
    return {f: _jsonable(getattr(instance, f, None)) for f in fields}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    if hasattr(value, "pk"):
        return str(value.pk)
    return str(value)


@transaction.atomic
def organization_create(*, name: str, owner: Any, slug: str | None = None, request: HttpRequest | None = None) -> Organization:
    """Create an organization with its first owner."""
    base = slugify(slug or name)[:70] or "org"
    candidate, n = base, 1
    while Organization.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    organization = Organization.objects.create(name=name, slug=candidate)
    Membership.objects.create(user=owner, organization=organization, role=Role.OWNER)
    audit_record(action="organization.create", organization=organization, actor=owner, target=organization, changes={"name": [None, name]}, request=request)
    return organization


def _ensure_an_owner_remains(*, organization: Organization, leaving: Membership) -> None:
    """Refuse (409) any change that would leave the organization without an owner; owner rows are locked, so two owners
    demoting each other at the same time cannot both succeed."""
    owners = list(Membership.objects.select_for_update().filter(organization=organization, role=Role.OWNER).order_by("pk").values_list("pk", flat=True))
    if owners == [leaving.pk]:
        raise ApplicationError("An organization needs at least one owner: make someone else owner first.", code="last_owner", status_code=409)


@transaction.atomic
def membership_set(*, organization: Organization, user: Any, role: str, actor: Any = None, request: HttpRequest | None = None) -> Membership:
    """Add a member or change their role (never the last owner's)."""
    membership, created = Membership.objects.get_or_create(user=user, organization=organization, defaults={"role": role})
    old_role = None if created else membership.role
    if not created and membership.role == Role.OWNER and role != Role.OWNER:
        _ensure_an_owner_remains(organization=organization, leaving=membership)
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
    audit_record(
        action="membership.set",
        organization=organization,
        actor=actor,
        target=membership,
        changes={"role": [old_role, role], "user": user.get_username()},
        request=request,
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Any = None, request: HttpRequest | None = None) -> None:
    """Remove a member (never the last owner)."""
    if membership.role == Role.OWNER:
        _ensure_an_owner_remains(organization=membership.organization, leaving=membership)
    audit_record(
        action="membership.remove",
        organization=membership.organization,
        actor=actor,
        target=membership,
        changes={"user": membership.user.get_username()},
        request=request,
    )
    membership.delete()


def user_create(*, username: str, email: str, password: str, is_staff: bool = False, is_superuser: bool = False) -> Any:
    User = get_user_model()
    return User.objects.create_user(username=username, email=email, password=password, is_staff=is_staff, is_superuser=is_superuser)
