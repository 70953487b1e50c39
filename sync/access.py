"""allowed_roles for what sync serves whole: the people export carries every source's people (integrations.access)."""

from __future__ import annotations

from accounts.models import Membership, Organization, Role
from integrations.access import integrations_access_check
from integrations.models import Integration
from people.models import PersonIdentity


def people_export_check(*, organization: Organization, membership: Membership | None) -> None:
    """Refuse the export (403 naming the integration and the role) when people came from an integration the member may not use."""
    if membership is None or membership.has_role(Role.ADMIN):
        return
    feeding = PersonIdentity.objects.filter(organization=organization, integration__isnull=False).values("integration_id")
    integrations_access_check(integrations=Integration.objects.filter(pk__in=feeding).exclude(allowed_roles=[]), membership=membership)
