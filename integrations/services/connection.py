"""Connecting an integration: the connector wired with its credentials and client, connection tests, OAuth completion, shared connectors."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max
from django.http import HttpRequest

from accounts.models import Membership, Organization, Role
from accounts.services import audit_record
from integrations.connectors.base import BaseConnector, ConnectionTest, ConnectorManifest
from integrations.errors import ApiError
from integrations.http import AuthProvider, BearerAuth, HttpClient
from integrations.models import CredentialType, Integration, IntegrationCredential, IntegrationStatus
from integrations.oauth import OAuthFlowError, oauth_exchange_code, oauth_post_authorize, oauth_take_state, token_to_credential
from integrations.services.catalog import connector_class_for
from integrations.services.credentials import credential_secret, credential_secrets, credential_store, credentials_validate, webhook_secret_generate
from integrations.services.health import integration_record_failure, integration_record_success, record_call
from integrations.services.lifecycle import integration_create, integration_update
from integrations.services.tokens import OAuthTokenAuth

logger = logging.getLogger(__name__)


def auth_provider_for(integration: Integration, oauth: dict[str, Any] | None = None) -> AuthProvider | None:
    """Pick the auth provider from the stored credential: OAuth tokens get the refreshing provider."""
    if oauth is None:
        oauth = credential_secret(integration=integration, credential_type=CredentialType.OAUTH, purpose="api_call")
    if oauth and oauth.get("access_token"):
        if oauth.get("refresh_token") or oauth.get("expires_at"):
            return OAuthTokenAuth(integration.pk, oauth)
        return BearerAuth(oauth["access_token"])
    return None


def rate_limiter_for(integration: Integration, manifest: ConnectorManifest) -> Any:
    """The shared Redis limiter for this integration: `integration.config["rate_limit"]` overrides the manifest's budget."""
    from integrations.ratelimit import LimitConfig, RedisRateLimiter

    override = integration.config.get("rate_limit")
    if isinstance(override, Mapping):
        config = LimitConfig.from_mapping(override, quota_window=manifest.rate_limit.quota_window if manifest.rate_limit else "utc_day")
    elif manifest.rate_limit is not None:
        config = LimitConfig.from_spec(manifest.rate_limit)
    else:
        return None
    if not config.is_limited or not settings.REDIS_URL:
        return None
    from integrations.ratelimit import redis_client

    return RedisRateLimiter(str(integration.pk), config, client=redis_client(settings.REDIS_URL))


def build_connector(integration: Integration) -> BaseConnector:
    """A connector instance wired with an HttpClient for this integration (base URL, auth, SSRF guard, limits, call log)."""
    from integrations.ssrf import url_guard

    connector_class = connector_class_for(integration.connector_key)
    credentials: dict[str, Any] = {}
    secrets = credential_secrets(integration=integration, purpose="connector")
    for credential_type in (CredentialType.API_KEY, CredentialType.SERVICE_ACCOUNT, CredentialType.OAUTH, CredentialType.WEBHOOK_SECRET):
        secret = secrets.get(credential_type)
        if secret:
            if credential_type == CredentialType.WEBHOOK_SECRET:
                credentials["webhook_secret"] = secret.get("secret", "")
            else:
                credentials.update(secret)
    base_url = integration.base_url or connector_class.manifest.default_base_url
    client = None
    if base_url.startswith("http"):
        timeout = integration.config.get("timeout")
        client = HttpClient(
            base_url,
            auth=auth_provider_for(integration, oauth=secrets.get(CredentialType.OAUTH, {})),
            recorder=record_call(integration.pk, status=integration.status),
            limiter=rate_limiter_for(integration, connector_class.manifest),
            url_guard=url_guard,
            connector_key=integration.connector_key,
            classify=connector_class.classify_response,
            **({"timeout": (float(timeout[0]), float(timeout[1]))} if isinstance(timeout, list) and len(timeout) == 2 else {}),
        )
    return connector_class(client=client, config=integration.config, credentials=credentials)


CONNECTOR_TTL_SECONDS = 60.0


SHARED_POOL_SIZE = 32  # HTTP connections kept per shared connector (requests' default of 10 is below a 16-thread pool)


_shared_connectors: dict[tuple[str, str], tuple[float, tuple[Any, ...], BaseConnector]] = {}


_shared_connector_locks: dict[tuple[str, str], threading.Lock] = {}


_shared_connectors_guard = threading.Lock()


def _credential_fingerprint(integration: Integration) -> tuple[Any, ...]:
    """Changes whenever the integration or any of its credentials changes (reconnect, token refresh, status change)."""
    credentials = IntegrationCredential.objects.filter(integration_id=integration.pk).aggregate(latest=Max("updated_at"), count=Count("id"))
    return (integration.updated_at, integration.status, integration.base_url, credentials["latest"], credentials["count"])


def shared_connector(integration: Integration, *, purpose: str) -> BaseConnector:
    """A connector shared by the work one worker process does for `purpose` within CONNECTOR_TTL_SECONDS.

    build_connector decrypts and audits the credentials and may ask the vendor who it is; the pages of a sync or the
    steps of an activation would repeat that for every page or step. The key includes the credentials' last change,
    so a reconnect or a refreshed token is picked up at once; the TTL bounds how long decrypted secrets stay in a
    worker's memory. Each purpose has its own instance because callers tune the client (retries) differently.
    """
    key = (str(integration.pk), purpose)
    fingerprint = _credential_fingerprint(integration)
    with _shared_connectors_guard:
        lock = _shared_connector_locks.setdefault(key, threading.Lock())
    with lock:  # concurrent steps starting together build it once
        cached = _shared_connectors.get(key)
        if cached is not None and cached[1] == fingerprint and cached[0] > time.monotonic():
            return cached[2]
        connector = build_connector(integration)
        if isinstance(connector.client, HttpClient):
            connector.client.set_pool_size(SHARED_POOL_SIZE)  # keeps the SSRF guard's pinned connections
        _shared_connectors[key] = (time.monotonic() + CONNECTOR_TTL_SECONDS, fingerprint, connector)
        return connector


def shared_connectors_forget() -> None:
    """Drop every shared connector (tests; a worker shutting down)."""
    with _shared_connectors_guard:
        _shared_connectors.clear()


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
    allowed_roles: list[str] | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> Integration:
    """Create an integration with its credential (validated first: nothing is written on bad input), then test it."""
    manifest = connector_class_for(connector_key).manifest
    data = credentials_validate(manifest, credential_type, credentials)
    with transaction.atomic():
        integration = integration_create(
            organization=organization,
            connector_key=connector_key,
            display_name=display_name,
            config=config,
            base_url=base_url,
            allowed_roles=allowed_roles,
            actor=actor,
            request=request,
        )
        credential_store(
            integration=integration, credential_type=credential_type, data=data, expires_at=expires_at, scopes=scopes, actor=actor, request=request
        )
        if manifest.webhook is not None and not manifest.webhook.key_field:  # a vendor signing with the credential needs no generated secret
            webhook_secret_generate(integration=integration, actor=actor, request=request)
    if test:
        integration_test(integration=integration, actor=actor, request=request)
    return integration


def integration_reconnect(
    *,
    integration: Integration,
    credentials: Mapping[str, Any],
    credential_type: str = CredentialType.API_KEY,
    expires_at: datetime | None = None,
    scopes: list[str] | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> ConnectionTest:
    """Replace the credential of an existing integration and test it; config, mappings and data sources are untouched."""
    manifest = connector_class_for(integration.connector_key).manifest
    data = credentials_validate(manifest, credential_type, credentials)
    credential_store(integration=integration, credential_type=credential_type, data=data, expires_at=expires_at, scopes=scopes, actor=actor, request=request)
    audit_record(
        action="integration.reconnect",
        organization=integration.organization,
        actor=actor,
        target=integration,
        changes={"credential_type": credential_type},
        request=request,
    )
    return integration_test(integration=integration, actor=actor, request=request)


def integration_oauth_complete(
    *, request: HttpRequest, state: str, code: str = "", error: str = "", error_description: str = ""
) -> tuple[Integration, ConnectionTest, str]:
    """Finish the authorization redirect: check the session-bound state, exchange the code, store tokens, test."""
    entry = oauth_take_state(request=request, state=state)
    integration = Integration.objects.select_related("organization").filter(pk=entry["integration_id"], organization_id=entry["organization_id"]).first()
    if integration is None:
        raise OAuthFlowError("The integration being connected no longer exists.", code="not_found", status_code=404)
    # Authorization takes minutes on the vendor's side: whoever started it must still be an admin of that organization.
    membership = Membership.objects.filter(user=request.user, organization_id=integration.organization_id).first()
    if membership is None or not membership.has_role(Role.ADMIN):
        audit_record(
            action="integration.oauth_refused", organization=integration.organization, target=integration, changes={"reason": "not_admin"}, request=request
        )
        raise OAuthFlowError(
            "You are no longer an admin of the organization this connection belongs to, so it was not completed.", code="permission_denied", status_code=403
        )
    if error:
        audit_record(action="integration.oauth_denied", organization=integration.organization, target=integration, changes={"error": error}, request=request)
        raise OAuthFlowError(f"The vendor did not grant access ({error}{': ' + error_description if error_description else ''}).", code="oauth_denied")
    if not code:
        raise OAuthFlowError("The vendor's answer had no authorization code.", code="oauth_exchange_failed")
    connector_class = connector_class_for(integration.connector_key)
    manifest = connector_class.manifest
    if manifest.oauth is None:
        raise OAuthFlowError(f"{manifest.name} does not use OAuth.", code="invalid")
    token = oauth_exchange_code(integration=integration, spec=manifest.oauth, default_base_url=manifest.default_base_url, code=code, entry=entry)
    updates = oauth_post_authorize(
        integration=integration,
        connector_class=connector_class,
        token=token,
        default_base_url=manifest.default_base_url,
        recorder=record_call(integration.pk, status=integration.status),
    )
    if updates:
        integration_update(integration=integration, config={**integration.config, **updates})
    data, expires_at, scopes = token_to_credential(token)
    with transaction.atomic():
        credential_store(
            integration=integration,
            credential_type=CredentialType.OAUTH,
            data=data,
            expires_at=expires_at,
            scopes=scopes or list(manifest.oauth.scopes),
            request=request,
            audit_action="credential.oauth_authorized",
        )
        if manifest.supports_webhooks and not integration.credentials.filter(credential_type=CredentialType.WEBHOOK_SECRET).exists():
            webhook_secret_generate(integration=integration, request=request)
    result = integration_test(integration=integration, request=request)
    return integration, result, entry.get("next") or ""


@transaction.atomic
def integration_disconnect(*, integration: Integration, actor: Any = None, request: HttpRequest | None = None) -> Integration:
    """Drop the credentials and stop using the integration; settings, mappings and data sources stay for a later reconnect."""
    kinds = list(integration.credentials.values_list("credential_type", flat=True))
    integration.credentials.all().delete()
    integration.status = IntegrationStatus.DISCONNECTED
    integration.save(update_fields=["status", "updated_at"])
    audit_record(
        action="integration.disconnect",
        organization=integration.organization,
        actor=actor,
        target=integration,
        changes={"credentials_removed": kinds},
        request=request,
    )
    return integration


def integration_external_account_update(*, integration: Integration, account_id: str, actor: Any = None, request: HttpRequest | None = None) -> bool:
    """Record the vendor account the credential reaches (webhooks are routed by it); a change is audited. True if changed.

    A reconnect may reach another account (another Jira site, Slack workspace): the connection test that proved it wins.
    """
    account_id = account_id[: Integration._meta.get_field("external_account_id").max_length]
    with transaction.atomic():
        locked = Integration.objects.select_for_update().select_related("organization").get(pk=integration.pk)
        previous = locked.external_account_id
        if previous == account_id:
            return False
        locked.external_account_id = account_id
        locked.save(update_fields=["external_account_id", "updated_at"])
        audit_record(
            action="integration.account_changed",
            organization=locked.organization,
            actor=actor,
            target=locked,
            changes={"external_account_id": [previous, account_id]},
            request=request,
        )
    integration.external_account_id = account_id
    if previous:
        logger.warning("integration.account_changed", extra={"integration": str(integration.pk), "previous": previous, "account": account_id})
    return True


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
        if result.account_id:
            integration_external_account_update(integration=integration, account_id=result.account_id, actor=actor, request=request)
        integration_record_success(integration=integration)
        # A person just proved the connection works: the earlier error is history, not the current state.
        Integration.objects.filter(pk=integration.pk).exclude(last_error="").update(last_error="")
        integration.last_error = ""
    audit_record(
        action="integration.test",
        organization=integration.organization,
        actor=actor,
        target=integration,
        changes={"ok": result.ok, "identity": result.identity},
        request=request,
    )
    return result
