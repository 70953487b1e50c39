"""Sign-in policy for allauth: lockout keyed by account and by the trusted client address."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse

from accounts.invitations import SESSION_KEY, invitation_for_token
from accounts.models import Invitation
from common.client_address import client_address


def _session_invitation(request: HttpRequest | None) -> Invitation | None:
    session = getattr(request, "session", None)
    return invitation_for_token(str(session.get(SESSION_KEY) or "")) if session is not None else None


class AccountAdapter(DefaultAccountAdapter):
    """Failed sign-ins count per account (whatever login names it) and per client address, each with its own limit.

    Sign-up is by invitation unless BASTION_OPEN_SIGNUP is on: only someone who opened a valid invitation link may create
    an account, and only with the address the invitation was sent to.
    """

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(settings.BASTION_OPEN_SIGNUP) or _session_invitation(request) is not None

    def clean_email(self, email: str) -> str:
        email = super().clean_email(email)
        request = getattr(self, "request", None)
        if not settings.BASTION_OPEN_SIGNUP and request is not None and request.path == reverse("account_signup"):
            invitation = _session_invitation(request)
            if invitation is None or email.strip().lower() != invitation.email:
                raise ValidationError("Use the address your invitation was sent to.")
        return email

    def get_client_ip(self, request: HttpRequest) -> str:
        address = client_address(request)
        if not address:
            raise PermissionDenied("Unable to determine the client address.")
        return address

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # Username, e-mail and any casing of either name the same account: one counter, so alternating them gains nothing.
        login = str(credentials.get("email") or credentials.get("username") or "").strip().lower()
        user = (
            get_user_model().objects.filter(Q(username__iexact=login) | Q(email__iexact=login)).order_by("pk").values_list("pk", flat=True).first()
            if login
            else None
        )
        return f"account:{user}" if user is not None else f"login:{login}"
