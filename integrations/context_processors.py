"""Banners on every page for integrations that need a person (auth failed, degraded)."""

from django.http import HttpRequest

from accounts.tenancy import resolve_organization
from integrations.models import Integration, IntegrationStatus


def attention_banners(request: HttpRequest) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    organization = resolve_organization(request)
    if organization is None:
        return {"organization": None}
    banners = [
        {
            "level": "error",
            "message": f"{i.display_name} needs reconnecting: its authorization failed. Open Integrations → Reconnect.",
            "integration_id": str(i.pk),
        }
        for i in Integration.objects.filter(organization=organization, status=IntegrationStatus.AUTH_FAILED)
    ]
    return {"attention_banners": banners, "organization": organization}
