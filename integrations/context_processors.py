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
    banners = []
    for integration in Integration.objects.filter(organization=organization, status__in=[IntegrationStatus.AUTH_FAILED, IntegrationStatus.DEGRADED]):
        if integration.status == IntegrationStatus.AUTH_FAILED:
            message = f"{integration.display_name} needs reconnecting: its authorization failed. Open Integrations → Reconnect."
            level = "error"
        else:
            message = f"{integration.display_name} is degraded: its recent API calls keep failing ({integration.last_error[:120] or 'see its page'})."
            level = "warning"
        banners.append({"level": level, "message": message, "integration_id": str(integration.pk), "url": f"/integrations/{integration.pk}/"})
    return {"attention_banners": banners, "organization": organization}
