"""Invitations: owners invite by e-mail; the person holding the link accepts with an account under that address.

Nothing here tells the inviter whether the address already has an account, and nothing looks a person up by username,
so one organization learns nothing about another's members.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Invitation, Membership, Organization, Role
from accounts.services import audit_record, membership_set
from common.errors import ApplicationError

logger = logging.getLogger(__name__)

SESSION_KEY = "bastion_invitation"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _normalize(email: str) -> str:
    return (email or "").strip().lower()


def invitation_link(token: str) -> str:
    return f"{settings.BASTION_PUBLIC_URL.rstrip('/')}/invitations/{token}/"


@transaction.atomic
def invitation_create(*, organization: Organization, email: str, role: str = Role.VIEWER, actor: Any = None, request: HttpRequest | None = None) -> Invitation:
    """Invite an address (a pending invitation to the same address is replaced) and e-mail the link."""
    email = _normalize(email)
    now = timezone.now()
    Invitation.objects.filter(organization=organization, email=email, accepted_at__isnull=True, revoked_at__isnull=True).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    days = int(getattr(settings, "BASTION_INVITATION_DAYS", 7))
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_digest=_digest(token),
        invited_by=actor if getattr(actor, "is_authenticated", False) else None,
        expires_at=now + timedelta(days=days),
    )
    audit_record(action="invitation.create", organization=organization, actor=actor, target=invitation, changes={"email": email, "role": role}, request=request)
    inviter = actor.get_username() if getattr(actor, "is_authenticated", False) else "An owner"
    body = (
        f"{inviter} invited you to join {organization.name} on Bastion as {Role(role).label.lower()}.\n\n"
        f"Accept within {days} days: {invitation_link(token)}\n\nIf you did not expect this, ignore this message."
    )
    # Sent after commit: a mail server outage never rolls back the invitation, and the owner can send a new one.
    transaction.on_commit(lambda: _send(invitation.pk, email, f"Join {organization.name} on Bastion", body))
    return invitation


def _send(invitation_id: Any, email: str, subject: str, body: str) -> None:
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email])
    except Exception:  # noqa: BLE001 - logged; the owner sees the invitation pending and can send it again
        logger.exception("accounts.invitation.send_failed", extra={"invitation": str(invitation_id)})


def invitation_for_token(token: str) -> Invitation | None:
    """The pending, unexpired invitation a link names, or None."""
    if not token or len(token) > 100:
        return None
    return (
        Invitation.objects.select_related("organization")
        .filter(token_digest=_digest(token), accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )


@transaction.atomic
def invitation_accept(*, token: str, user: Any, request: HttpRequest | None = None) -> Membership:
    """Join the invitation's organization as the signed-in user, whose address must be the one invited."""
    invitation = invitation_for_token(token)
    if invitation is None:
        raise ApplicationError("This invitation is not valid any more: ask an owner for a new one.", code="invitation_invalid", status_code=404)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise ApplicationError("This invitation is not valid any more: ask an owner for a new one.", code="invitation_invalid", status_code=404)
    if _normalize(getattr(user, "email", "")) != invitation.email:
        raise ApplicationError(
            "This invitation was sent to another address: sign in with the account that uses it.", code="invitation_other_address", status_code=403
        )
    existing = Membership.objects.filter(user=user, organization=invitation.organization).first()
    # An invitation never lowers a role someone already has.
    membership = existing or membership_set(organization=invitation.organization, user=user, role=invitation.role, actor=user, request=request)
    Invitation.objects.filter(pk=invitation.pk).update(accepted_at=timezone.now(), accepted_by=user)
    audit_record(
        action="invitation.accept", organization=invitation.organization, actor=user, target=invitation, changes={"role": membership.role}, request=request
    )
    return membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Any = None, request: HttpRequest | None = None) -> None:
    Invitation.objects.filter(pk=invitation.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    audit_record(action="invitation.revoke", organization=invitation.organization, actor=actor, target=invitation, request=request)
