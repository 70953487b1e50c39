"""Resolve the organization a request acts in, and enforce roles in one place."""

from __future__ import annotations

import uuid
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest
from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import Membership, Organization, Role
from common.openapi_summary import SummaryAutoSchema

ORGANIZATION_HEADER = "HTTP_X_BASTION_ORGANIZATION"


def resolve_membership(request: HttpRequest) -> Membership | None:
    """Return the caller's membership in the organization named by header/query/session, or their first."""
    if hasattr(request, "_bastion_membership"):
        return request._bastion_membership
    user = getattr(request, "user", None)
    membership = None
    if user is not None and user.is_authenticated:
        memberships = Membership.objects.filter(user=user).select_related("organization").order_by("created_at")
        wanted = (
            request.META.get(ORGANIZATION_HEADER)
            or request.GET.get("organization")
            or (request.session.get("organization_id") if hasattr(request, "session") else None)
        )
        if wanted:
            try:
                membership = memberships.filter(organization_id=uuid.UUID(str(wanted))).first()
            except ValueError:
                membership = memberships.filter(organization__slug=wanted).first()
            if membership is None and (request.META.get(ORGANIZATION_HEADER) or request.GET.get("organization")):
                raise Http404("No such organization.")
        if membership is None:
            membership = memberships.first()
    request._bastion_membership = membership
    return membership


def resolve_organization(request: HttpRequest) -> Organization | None:
    membership = resolve_membership(request)
    return membership.organization if membership else None


class HasOrganizationRole(BasePermission):
    """Viewers read; writes need the view's write role; per-action overrides in `action_roles`."""

    message = "Your role in this organization does not allow this action."

    def required_role(self, request: HttpRequest, view: Any) -> str:
        action = getattr(view, "action", None)
        action_roles = getattr(view, "action_roles", {}) or {}
        if action and action in action_roles:
            return action_roles[action]
        if request.method in SAFE_METHODS:
            return getattr(view, "read_role", Role.VIEWER)
        return getattr(view, "write_role", Role.EDITOR)

    def has_permission(self, request: HttpRequest, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        membership = resolve_membership(request)
        if membership is None:
            return False
        return membership.has_role(self.required_role(request, view))


class OrganizationScopedMixin:
    """Scope a DRF view to the caller's organization; objects of other organizations are 404."""

    permission_classes = [HasOrganizationRole]
    schema = SummaryAutoSchema()  # every operation listed with a one-line summary in the API docs
    read_role: str = Role.VIEWER
    write_role: str = Role.EDITOR
    action_roles: dict[str, str] = {}

    def get_queryset(self):
        """Views define `queryset = Model.objects.none()` (for the schema) and `get_scoped_queryset()`."""
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return self.get_scoped_queryset()

    def get_scoped_queryset(self):
        raise NotImplementedError

    @property
    def organization(self) -> Organization:
        organization = resolve_organization(self.request)
        if organization is None:
            raise Http404("No organization.")
        return organization

    @property
    def membership(self) -> Membership:
        return resolve_membership(self.request)


def organization_page(role: str = Role.VIEWER):
    """Decorate a page view: signed in, member of an organization with at least `role`."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            membership = resolve_membership(request)
            if membership is None:
                raise Http404("You are not a member of any organization.")
            if not membership.has_role(role):
                from django.core.exceptions import PermissionDenied

                raise PermissionDenied("Your role does not allow this page.")
            request.organization = membership.organization
            request.membership = membership
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
