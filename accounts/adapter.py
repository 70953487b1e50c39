"""Sign-in policy for allauth: lockout keyed by account and by the trusted client address."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest

from common.client_address import client_address


class AccountAdapter(DefaultAccountAdapter):
    """Failed sign-ins count per account (whatever login names it) and per client address, each with its own limit."""

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
