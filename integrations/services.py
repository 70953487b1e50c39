"""Writes for integrations: connect, configure, credentials, and building a ready connector."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Organization
from accounts.services import audit_record, model_changes, snapshot
from common.errors import ApplicationError
from integrations.connectors.base import BaseConnector, ConnectionTest
from integrations.errors import ApiError
from integrations.http import AuthProvider, BearerAuth, CallRecord, HttpClient
from integrations.models import CredentialType, Integration, IntegrationCredential, IntegrationStatus
from integrations.registry import UnknownConnector, get_connector_class

AUDITED_FIELDS = ["display_name", "connector_key", "status", "config", "base_url", "allowed_roles"]
DEGRADED_AFTER_FAILURES = 5


def _connector_class(key: str) -> type[BaseConnector]:
    try:
        return get_connector_class(key)
    except UnknownConnector as exc:
        raise ApplicationError(str(exc), code="unknown_connector", fields={"connector_key": [str(exc)]})


@transaction.atomic
def integration_create(
    *,
    organization: Organization,
    connector_key: str,
    display_name: str = "",
    config: Mapping[str, Any] | None = None,
    base_url: str = "",
    actor: Any = None,
    request: HttpRequest | None = None,
) -> Integration:
    """Create an integration (not yet connected) for a connector in the catalog."""
    connector = _connector_class(connector_key)
    integration = Integration.objects.create(
        organization=organization,
        connector_key=connector_key,
        display_name=display_name or connector.manifest.name,
        config=dict(config or {}),
        base_url=base_url,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(
        action="integration.create",
        organization=organization,
        actor=actor,
        target=integration,
        changes=model_changes(integration, AUDITED_FIELDS),
        request=request,
    )
    return integration


@transaction.atomic
def integration_update(*, integration: Integration, actor: Any = None, request: HttpRequest | None = None, **fields: Any) -> Integration:
    """Update editable fields (display name, config, base URL, allowed roles)."""
    before = snapshot(integration, AUDITED_FIELDS)
    for name, value in fields.items():
        if name not in ("display_name", "config", "base_url", "allowed_roles"):
            raise ApplicationError(f"Field {name} cannot be changed here.", code="not_editable")
        setattr(integration, name, value)
    integration.save()
    audit_record(
        action="integration.update",
        organization=integration.organization,
        actor=actor,
        target=integration,
        changes=model_changes(integration, AUDITED_FIELDS, before),
        request=request,
    )
    return integration


@transaction.atomic
def integration_delete(*, integration: Integration, actor: Any = None, request: HttpRequest | None = None) -> None:
    audit_record(
        action="integration.delete",
        organization=integration.organization,
        actor=actor,
        target=integration,
        changes=snapshot(integration, ["display_name", "connector_key"]),
        request=request,
    )
    integration.delete()


@transaction.atomic
def credential_store(
    *,
    integration: Integration,
    credential_type: str,
    data: Mapping[str, Any],
    expires_at: datetime | None = None,
    scopes: list[str] | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> IntegrationCredential:
    """Store (or replace) a credential, encrypted; the audit entry names the keys, never the values."""
    credential, created = IntegrationCredential.objects.select_for_update().get_or_create(
        integration=integration, credential_type=credential_type, defaults={"organization": integration.organization}
    )
    credential.data = dict(data)
    credential.expires_at = expires_at
    credential.scopes = list(scopes or [])
    credential.refreshed_at = timezone.now()
    credential.save()
    audit_record(
        action="credential.create" if created else "credential.update",
        organization=integration.organization,
        actor=actor,
        target=credential,
        changes={"credential_type": credential_type, "fields": sorted(data.keys()), "expires_at": expires_at.isoformat() if expires_at else None},
        request=request,
    )
    return credential


def credential_secret(*, integration: Integration, credential_type: str, purpose: str) -> dict[str, Any] | None:
    """Decrypt a credential for use; every decryption is audited with its purpose."""
    credential = IntegrationCredential.objects.filter(integration=integration, credential_type=credential_type).first()
    if credential is None:
        return None
    data = credential.data
    audit_record(action="credential.decrypt", organization=integration.organization, target=credential, changes={"purpose": purpose})
    return dict(data or {})


def integration_connect(
    *,
    organization: Organization,
    connector_key: str,
    credentials: Mapping[str, Any],
    credential_type: str = CredentialType.API_KEY,
    display_name: str = "",
    config: Mapping[str, Any] | None = None,
    base_url: str = "",
    expires_at: datetime | None = None,
    scopes: list[str] | None = None,
    test: bool = True,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> Integration:
    """Create an integration with its credential, then test it (status follows the test)."""
    integration = integration_create(
        organization=organization, connector_key=connector_key, display_name=display_name, config=config, base_url=base_url, actor=actor, request=request
    )
    credential_store(
        integration=integration, credential_type=credential_type, data=credentials, expires_at=expires_at, scopes=scopes, actor=actor, request=request
    )
    if test:
        integration_test(integration=integration, actor=actor, request=request)
    return integration


def record_call(integration_id: Any) -> Any:
    """Return a recorder that feeds an integration's call counters (never bodies or secrets)."""

    def recorder(call: CallRecord) -> None:
        updates: dict[str, Any] = {"calls_24h": F("calls_24h") + 1}
        if not call.ok:
            updates["failures_24h"] = F("failures_24h") + 1
        Integration.objects.filter(pk=integration_id).update(**updates)

    return recorder


def auth_provider_for(integration: Integration) -> AuthProvider | None:
    """Pick the auth provider from the stored credential (OAuth bearer or the connector's own scheme)."""
    oauth = credential_secret(integration=integration, credential_type=CredentialType.OAUTH, purpose="api_call")
    if oauth and oauth.get("access_token"):
        return BearerAuth(oauth["access_token"])
    return None


def build_connector(integration: Integration) -> BaseConnector:
    """A connector instance wired with an HttpClient for this integration (base URL, auth, call log)."""
    connector_class = _connector_class(integration.connector_key)
    credentials: dict[str, Any] = {}
    for credential_type in (CredentialType.API_KEY, CredentialType.SERVICE_ACCOUNT, CredentialType.OAUTH, CredentialType.WEBHOOK_SECRET):
        secret = credential_secret(integration=integration, credential_type=credential_type, purpose="connector")
        if secret:
            credentials.update(secret)
    base_url = integration.base_url or connector_class.manifest.default_base_url
    client = None
    if base_url.startswith("http"):
        client = HttpClient(base_url, auth=auth_provider_for(integration), recorder=record_call(integration.pk))
    return connector_class(client=client, config=integration.config, credentials=credentials)


def integration_record_success(*, integration: Integration) -> None:
    now = timezone.now()
    Integration.objects.filter(pk=integration.pk).update(last_success_at=now, last_sync_at=now, error_count=0, status=IntegrationStatus.CONNECTED)
    integration.refresh_from_db()


def integration_record_failure(*, integration: Integration, error: Exception) -> None:
    """Count a failure; auth failures mark auth_failed, repeated ones degrade the integration."""
    now = timezone.now()
    integration.refresh_from_db()
    integration.error_count += 1
    integration.last_error = str(error)[:2000]
    integration.last_error_at = now
    integration.last_sync_at = now
    if isinstance(error, ApiError) and error.category == "auth":
        integration.status = IntegrationStatus.AUTH_FAILED
    elif integration.error_count >= DEGRADED_AFTER_FAILURES and integration.status == IntegrationStatus.CONNECTED:
        integration.status = IntegrationStatus.DEGRADED
    integration.save(update_fields=["error_count", "last_error", "last_error_at", "last_sync_at", "status", "updated_at"])


def integration_test(*, integration: Integration, actor: Any = None, request: HttpRequest | None = None) -> ConnectionTest:
    """Prove the credential works; record identity, account id and health."""
    try:
        result = build_connector(integration).test_connection()
    except ApiError as error:
        integration_record_failure(integration=integration, error=error)
        audit_record(
            action="integration.test",
            organization=integration.organization,
            actor=actor,
            target=integration,
            changes={"ok": False, "error": str(error)},
            request=request,
        )
        return ConnectionTest(ok=False, detail={"error": str(error), "category": error.category})
    if result.ok:
        if result.account_id and not integration.external_account_id:
            Integration.objects.filter(pk=integration.pk).update(external_account_id=result.account_id)
        integration_record_success(integration=integration)
    audit_record(
        action="integration.test",
        organization=integration.organization,
        actor=actor,
        target=integration,
        changes={"ok": result.ok, "identity": result.identity},
        request=request,
    )
    return result


def sandbox_base_url(connector_key: str) -> str:
    """Where the demo sandbox serves a vendor (used to prefill base URLs in the demo)."""
    return f"{settings.BASTION_SANDBOX_URL.rstrip('/')}/{connector_key}"
