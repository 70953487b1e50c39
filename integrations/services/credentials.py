"""An integration's credentials: validated, stored encrypted, decrypted with an audited purpose; the webhook secret."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.services import audit_record
from common.errors import ApplicationError
from integrations.connectors.base import ConnectorManifest
from integrations.models import CredentialType, Integration, IntegrationCredential

AUTH_METHOD_CREDENTIAL_TYPES = {
    "oauth2": CredentialType.OAUTH,
    "api_key": CredentialType.API_KEY,
    "basic": CredentialType.API_KEY,
    "service_account": CredentialType.SERVICE_ACCOUNT,
    "ldap_bind": CredentialType.SERVICE_ACCOUNT,
}


SERVICE_ACCOUNT_JSON_FIELDS = ("service_account_json", "service_account_key", "key_json")


def credentials_validate(manifest: ConnectorManifest, credential_type: str, data: Any) -> dict[str, Any]:
    """Check a credential against the connector's declared fields before anything is stored."""
    if credential_type not in CredentialType.values or credential_type == CredentialType.WEBHOOK_SECRET:
        message = f"credential_type must be one of oauth, api_key, service_account (not {credential_type!r})."
        raise ApplicationError(message, code="invalid", fields={"credential_type": [message]})
    allowed = {AUTH_METHOD_CREDENTIAL_TYPES.get(m) for m in manifest.auth_methods}
    if credential_type not in allowed:
        message = f"{manifest.name} does not accept {credential_type} credentials (it supports: {', '.join(manifest.auth_methods)})."
        raise ApplicationError(message, code="invalid", fields={"credential_type": [message]})
    if not isinstance(data, Mapping):
        raise ApplicationError("credentials must be a JSON object.", code="invalid", fields={"credentials": ["Must be a JSON object."]})
    cleaned = {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()}
    if credential_type == CredentialType.OAUTH:
        if not cleaned.get("access_token"):
            raise ApplicationError("An OAuth credential needs an access_token.", code="invalid", fields={"credentials": ["access_token is required."]})
        return cleaned
    missing = [f.name for f in manifest.credential_fields if f.is_required and cleaned.get(f.name) in (None, "")]
    if missing:
        raise ApplicationError(
            f"Missing credential fields: {', '.join(missing)}.", code="invalid", fields={f"credentials.{name}": ["This field is required."] for name in missing}
        )
    for name in SERVICE_ACCOUNT_JSON_FIELDS:
        if name in cleaned and cleaned[name] not in (None, ""):
            cleaned[name] = _service_account_key(name, cleaned[name])
    return cleaned


def _service_account_key(name: str, raw: Any) -> dict[str, Any]:
    """Parse a Google-style service-account key JSON and check its required members (never echo it back)."""
    try:
        key = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (TypeError, ValueError):
        raise ApplicationError(
            "The service-account key is not valid JSON.", code="invalid", fields={f"credentials.{name}": ["Paste the whole key file (JSON)."]}
        )
    missing = [k for k in ("type", "client_email", "private_key") if not key.get(k)]
    if missing or key.get("type") != "service_account":
        message = f"This is not a service-account key (missing or wrong: {', '.join(missing) or 'type'})."
        raise ApplicationError(message, code="invalid", fields={f"credentials.{name}": [message]})
    return key


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
    audit_action: str = "",
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
        action=audit_action or ("credential.create" if created else "credential.update"),
        organization=integration.organization,
        actor=actor,
        target=credential,
        changes={"credential_type": credential_type, "fields": sorted(data.keys()), "expires_at": expires_at.isoformat() if expires_at else None},
        request=request,
    )
    return credential


def credential_secret(*, integration: Integration, credential_type: str, purpose: str, audited: bool = True) -> dict[str, Any] | None:
    """Decrypt a credential for use; audited with its purpose, except routine per-request use (webhook verification).

    Auditing every webhook verification would let anyone who knows an intake URL write audit rows with forged requests;
    changes to the secret are audited where they are made.
    """
    credential = IntegrationCredential.objects.filter(integration=integration, credential_type=credential_type).first()
    if credential is None:
        return None
    data = credential.data
    if audited:
        audit_record(action="credential.decrypt", organization=integration.organization, target=credential, changes={"purpose": purpose})
    return dict(data or {})


def credential_secrets(*, integration: Integration, purpose: str) -> dict[str, dict[str, Any]]:
    """Decrypt all of an integration's credentials in one read; one audit event names the types decrypted and why."""
    rows = list(IntegrationCredential.objects.filter(integration=integration))
    if not rows:
        return {}
    secrets = {row.credential_type: dict(row.data or {}) for row in rows}
    audit_record(
        action="credential.decrypt",
        organization=integration.organization,
        target=integration,
        changes={"purpose": purpose, "credential_types": sorted(secrets)},
    )
    return secrets


@transaction.atomic
def webhook_secret_generate(*, integration: Integration, actor: Any = None, request: HttpRequest | None = None) -> str:
    """Create (or rotate) the per-integration webhook signing secret; it can be revealed once."""
    secret = secrets.token_urlsafe(32)
    credential_store(
        integration=integration,
        credential_type=CredentialType.WEBHOOK_SECRET,
        data={"secret": secret},
        actor=actor,
        request=request,
        audit_action="webhook_secret.generate",
    )
    Integration.objects.filter(pk=integration.pk).update(webhook_secret_revealed_at=None)
    integration.webhook_secret_revealed_at = None
    return secret


@transaction.atomic
def webhook_secret_reveal(*, integration: Integration, actor: Any = None, request: HttpRequest | None = None) -> str | None:
    """Return the webhook secret the first time only (to paste into the vendor); None afterwards."""
    claimed = Integration.objects.filter(pk=integration.pk, webhook_secret_revealed_at__isnull=True).update(webhook_secret_revealed_at=timezone.now())
    if not claimed:
        return None
    integration.refresh_from_db(fields=["webhook_secret_revealed_at"])
    data = credential_secret(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, purpose="reveal_once")
    audit_record(action="webhook_secret.reveal", organization=integration.organization, actor=actor, target=integration, request=request)
    return (data or {}).get("secret")
