"""Reads for organizations and memberships."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import AuditEvent, Invitation, Membership, Organization


def organization_list(*, user: Any) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user).distinct()


def membership_for(*, user: Any, organization: Organization | None) -> Membership | None:
    if organization is None or not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organization=organization).first()


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=organization).select_related("user")


def audit_event_list(*, organization: Organization) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(organization=organization).select_related("actor")


def invitation_pending_list(*, organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        organization=organization, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).select_related("invited_by")
