"""Writes for integrations: connect, configure, credentials, and building a ready connector."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, F, Max, Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Membership, Organization, Role
from accounts.services import audit_record, model_changes, snapshot
from common.errors import ApplicationError
from common.url_safety import link_fields_sanitized
from integrations.connectors.base import ActionResult, BaseConnector, Capability, ConnectionTest, ConnectorManifest, FieldInfo, Page
from integrations.errors import ApiBadRequest, ApiError, ApiHostError, UnsafeBaseUrl
from integrations.http import AuthProvider, BearerAuth, CallRecord, HttpClient
from integrations.models import CredentialType, DataSource, Integration, IntegrationCall, IntegrationCredential, IntegrationStatus
from integrations.registry import UnknownConnector, get_connector_class

logger = logging.getLogger(__name__)

AUDITED_FIELDS = ["display_name", "connector_key", "status", "config", "base_url", "allowed_roles"]
DEGRADED_AFTER_FAILURES = 5
# An integration whose calls keep failing is degraded: at least this many failed calls in the window, at this failure rate.
DEGRADED_WINDOW = timedelta(minutes=15)
DEGRADED_MIN_FAILED_CALLS = 5
DEGRADED_FAILURE_RATE = 0.5
CALL_LOG_RETENTION = timedelta(hours=48)
QUERY_MAX_LIMIT = 200


def _connector_class(key: str) -> type[BaseConnector]:
    try:
        return get_connector_class(key)
    except UnknownConnector as exc:
        raise ApplicationError(str(exc), code="unknown_connector", fields={"connector_key": [str(exc)]})


def connector_class_for(key: str) -> type[BaseConnector]:
    """The installed connector class for a key (ApplicationError when unknown)."""
    return _connector_class(key)


def base_url_validate(base_url: str) -> str:
    """Refuse base URLs that would point Bastion's server at internal hosts (SSRF), with a clear field error."""
    from integrations.ssrf import check_url

    base_url = (base_url or "").strip()
    if not base_url:
        return ""
    try:
        check_url(base_url)
    except UnsafeBaseUrl as exc:
        raise ApplicationError(exc.message, code="unsafe_base_url", fields={"base_url": [exc.message]})
    except ApiHostError as exc:
        # The name does not resolve now (a typo, or DNS is down): nothing to refuse, since every connection vets its own
        # DNS answer; the connection test names the problem, and a resolver outage must not block saving settings.
        logger.info("integration.base_url_unresolved", extra={"error": exc.message})
    return base_url.rstrip("/")


def allowed_roles_validate(roles: Any) -> list[str]:
    if roles in (None, ""):
        return []
    if not isinstance(roles, list) or any(r not in Role.values for r in roles):
        message = f"allowed_roles must be a list of roles from {', '.join(Role.values)}."
        raise ApplicationError(message, code="invalid", fields={"allowed_roles": [message]})
    return sorted(set(roles), key=Role.values.index)


def config_targets_validate(connector_class: type[BaseConnector], config: Mapping[str, Any]) -> None:
    """Refuse URL settings that are not http(s) (or the field's own scheme) and hosts the SSRF guard refuses, with field errors.

    Every "*url" setting is a URL Bastion calls or renders as a link; hosts a connector reaches outside the HTTP client
    (SMTP, LDAP) are vetted like base URLs, now and again on every connect.
    """
    from common.url_safety import url_problem
    from integrations.ssrf import check_url, outbound_target_problem

    problems: dict[str, list[str]] = {}
    for name, value in config.items():
        if str(name).lower().endswith("url") and value not in (None, ""):
            schemes = connector_class.url_config_schemes.get(name, ("http", "https"))
            problem = url_problem(value, schemes=schemes) if isinstance(value, str) else "must be a URL"
            if problem:
                problems[str(name)] = [f"{name} {problem}."]
            elif name not in connector_class.url_config_schemes:
                try:
                    check_url(value.strip())
                except UnsafeBaseUrl as exc:
                    problems[str(name)] = [exc.message]
                except ApiHostError:
                    pass  # does not resolve now: every connection vets its own DNS answer
    for target in connector_class.outbound_targets(config):
        if target.field not in problems:
            problem = outbound_target_problem(target)
            if problem:
                problems[target.field] = [problem]
    if problems:
        first = next(iter(problems.values()))[0]
        raise ApplicationError(first, code="unsafe_config", fields=problems)


def config_validate(manifest: ConnectorManifest, config: Mapping[str, Any] | None, *, partial: bool = True) -> dict[str, Any]:
    """Config is non-secret JSON; required config fields are checked when the wizard finishes (partial=False)."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ApplicationError("config must be a JSON object.", code="invalid", fields={"config": ["Must be a JSON object."]})
    config = dict(config)
    config_targets_validate(_connector_class(manifest.key), config)
    if not partial:
        missing = [f.name for f in manifest.config_fields if f.is_required and not str(config.get(f.name, "")).strip()]
        if missing:
            raise ApplicationError(f"Missing settings: {', '.join(missing)}.", code="invalid", fields={name: ["This setting is required."] for name in missing})
    if config.get("oauth_base_url"):
        base_url_validate(str(config["oauth_base_url"]))
    return config


@transaction.atomic
def integration_create(
    *,
    organization: Organization,
    connector_key: str,
    display_name: str = "",
    config: Mapping[str, Any] | None = None,
    base_url: str = "",
    allowed_roles: list[str] | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> Integration:
    """Create an integration (not yet connected) for a connector in the catalog, with a data source per entity."""
    connector = _connector_class(connector_key)
    base_url = base_url_validate(base_url)
    config = config_validate(connector.manifest, config)
    if base_url and connector.manifest.oauth and not config.get("oauth_base_url") and _is_sandbox_url(base_url):
        # The sandbox serves each vendor's OAuth server at <sandbox>/<vendor>/oauth/…, not at the vendor's real path.
        config["oauth_base_url"] = base_url
    integration = Integration.objects.create(
        organization=organization,
        connector_key=connector_key,
        display_name=display_name or connector.manifest.name,
        config=config,
        base_url=base_url,
        allowed_roles=allowed_roles_validate(allowed_roles),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    data_sources_ensure(integration=integration)
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
    manifest = _connector_class(integration.connector_key).manifest
    for name, value in fields.items():
        if name not in ("display_name", "config", "base_url", "allowed_roles"):
            raise ApplicationError(f"Field {name} cannot be changed here.", code="not_editable")
        if name == "base_url":
            value = base_url_validate(value)
        elif name == "allowed_roles":
            value = allowed_roles_validate(value)
        elif name == "config":
            value = config_validate(manifest, value)
        elif name == "display_name" and not str(value).strip():
            raise ApplicationError("A name is required.", code="invalid", fields={"display_name": ["This field may not be blank."]})
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
    manifest = _connector_class(connector_key).manifest
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


def record_call(integration_id: Any, *, status: str | None = None) -> Any:
    """Return a recorder that logs every call (method, path, status, latency) and feeds the integration's health.

    The log row and the counters are written in one transaction (one commit per call). Health is re-evaluated after a
    failed call, and after a success only while the integration is degraded, so the healthy path costs no extra reads.
    """
    known = {"status": status}

    def recorder(call: CallRecord) -> None:
        updates: dict[str, Any] = {"calls_24h": F("calls_24h") + 1}
        if not call.ok:
            updates["failures_24h"] = F("failures_24h") + 1
        with transaction.atomic():
            IntegrationCall.objects.create(
                integration_id=integration_id,
                method=call.method[:10],
                path=call.path[:500],
                status=call.status,
                latency_ms=call.latency_ms,
                is_ok=call.ok,
                error=call.error[:80],
                vendor_code=call.vendor_code[:120],
                attempt=call.attempt,
            )
            Integration.objects.filter(pk=integration_id).update(**updates)
        if not call.ok or known["status"] in (None, IntegrationStatus.DEGRADED):
            changed = integration_health_evaluate(integration_id=integration_id)
            if changed:
                known["status"] = changed
            elif known["status"] is None:
                known["status"] = Integration.objects.filter(pk=integration_id).values_list("status", flat=True).first()

    return recorder


def integration_health_evaluate(*, integration_id: Any) -> str | None:
    """Degrade an integration whose recent calls keep failing; restore it once they succeed again. Returns the new status."""
    integration = Integration.objects.filter(pk=integration_id).only("status").first()
    if integration is None or integration.status not in (IntegrationStatus.CONNECTED, IntegrationStatus.DEGRADED):
        return None
    since = timezone.now() - DEGRADED_WINDOW
    counts = IntegrationCall.objects.filter(integration_id=integration_id, created_at__gte=since).aggregate(
        total=Count("id"), failed=Count("id", filter=Q(is_ok=False))
    )
    total, failed = counts["total"] or 0, counts["failed"] or 0
    failing = failed >= DEGRADED_MIN_FAILED_CALLS and failed / max(total, 1) >= DEGRADED_FAILURE_RATE
    status = IntegrationStatus.DEGRADED if failing else IntegrationStatus.CONNECTED
    if status != integration.status:
        updated = Integration.objects.filter(pk=integration_id, status=integration.status).update(status=status, updated_at=timezone.now())
        if updated:  # another worker may have made the same transition first: audit it once
            changed = Integration.objects.select_related("organization").get(pk=integration_id)
            audit_record(
                action="integration.degraded" if status == IntegrationStatus.DEGRADED else "integration.recovered",
                organization=changed.organization,
                target=changed,
                changes={"status": [integration.status, status], "failed_calls": failed, "calls": total},
            )
        logger.warning("integration.health_changed", extra={"integration": str(integration_id), "status": status, "failed": failed, "total": total})
        return status
    return None


def integration_health_refresh(*, integration: Integration | None = None) -> int:
    """Recompute calls_24h / failures_24h from the call log and prune old log rows (run periodically)."""
    now = timezone.now()
    IntegrationCall.objects.filter(created_at__lt=now - CALL_LOG_RETENTION).delete()
    integrations = Integration.objects.all() if integration is None else Integration.objects.filter(pk=integration.pk)
    since = now - timedelta(hours=24)
    updated = 0
    for row in integrations.annotate(
        window_calls=Count("calls", filter=Q(calls__created_at__gte=since)),
        window_failures=Count("calls", filter=Q(calls__created_at__gte=since, calls__is_ok=False)),
    ).values("pk", "window_calls", "window_failures"):
        updated += Integration.objects.filter(pk=row["pk"]).update(calls_24h=row["window_calls"], failures_24h=row["window_failures"])
    return updated


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


def auth_provider_for(integration: Integration, oauth: dict[str, Any] | None = None) -> AuthProvider | None:
    """Pick the auth provider from the stored credential: OAuth tokens get the refreshing provider."""
    from integrations.oauth import OAuthTokenAuth

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
        config = LimitConfig.from_mapping(override, quota_window=getattr(manifest.rate_limit, "quota_window", "utc_day"))
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

    connector_class = _connector_class(integration.connector_key)
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
        client = getattr(connector, "client", None)
        if isinstance(client, HttpClient):
            client.set_pool_size(SHARED_POOL_SIZE)  # keeps the SSRF guard's pinned connections
        _shared_connectors[key] = (time.monotonic() + CONNECTOR_TTL_SECONDS, fingerprint, connector)
        return connector


def shared_connectors_forget() -> None:
    """Drop every shared connector (tests; a worker shutting down)."""
    with _shared_connectors_guard:
        _shared_connectors.clear()


def integration_record_success(*, integration: Integration) -> None:
    """Record a success; an integration that was broken or degraded is recovered (and that is audited, like the break)."""
    now = timezone.now()
    previous = Integration.objects.filter(pk=integration.pk).values_list("status", flat=True).first()
    Integration.objects.filter(pk=integration.pk).update(
        last_success_at=now, last_sync_at=now, error_count=0, status=IntegrationStatus.CONNECTED, auth_failed_at=None
    )
    integration.refresh_from_db()
    if previous in (IntegrationStatus.AUTH_FAILED, IntegrationStatus.DEGRADED):
        audit_record(action="integration.recovered", organization=integration.organization, target=integration, changes={"status": [previous, "connected"]})
        logger.info("integration.recovered", extra={"integration": str(integration.pk), "from": previous})


def integration_record_failure(*, integration: Integration, error: Exception) -> None:
    """Count a failure; auth failures mark auth_failed (and alert), repeated ones degrade the integration."""
    now = timezone.now()
    # One UPDATE each (never read-modify-write): parallel steps failing at once all count.
    Integration.objects.filter(pk=integration.pk).update(
        error_count=F("error_count") + 1, last_error=str(error)[:2000], last_error_at=now, last_sync_at=now, updated_at=now
    )
    if isinstance(error, ApiError) and error.category == "auth":
        integration.refresh_from_db()
        integration_auth_failed(integration=integration, error=error)
        return
    Integration.objects.filter(pk=integration.pk, status=IntegrationStatus.CONNECTED, error_count__gte=DEGRADED_AFTER_FAILURES).update(
        status=IntegrationStatus.DEGRADED
    )
    integration.refresh_from_db()


def organization_admin_emails(organization: Organization) -> list[str]:
    return sorted(
        set(
            Membership.objects.filter(organization=organization, role__in=[Role.ADMIN, Role.OWNER], user__is_active=True)
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    )


def integration_auth_failed(*, integration: Integration, error: Exception) -> bool:
    """Mark the integration auth_failed and alert its organization's admins once per break; settings and mappings are kept."""
    now = timezone.now()
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        already = locked.status == IntegrationStatus.AUTH_FAILED
        locked.status = IntegrationStatus.AUTH_FAILED
        locked.last_error = str(error)[:2000]
        locked.last_error_at = now
        if not already:
            locked.auth_failed_at = now
        locked.save(update_fields=["status", "last_error", "last_error_at", "auth_failed_at", "updated_at"])
        if not already:
            audit_record(action="integration.auth_failed", organization=locked.organization, target=locked, changes={"error": str(error)[:500]})
    integration.refresh_from_db()
    if already:
        return False
    recipients = organization_admin_emails(integration.organization)
    if recipients:
        link = f"{settings.BASTION_PUBLIC_URL.rstrip('/')}/integrations/{integration.pk}/"
        try:
            send_mail(
                subject=f"[Bastion] {integration.display_name} needs reconnecting",
                message=(
                    f"Bastion can no longer authenticate to {integration.display_name} ({integration.connector_key}).\n\n"
                    f"Reason: {error}\n\n"
                    "Its settings, field mappings and data sources are kept. Reconnect it here to resume syncs and playbook steps:\n"
                    f"{link}\n"
                ),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=recipients,
            )
        except OSError:
            # The banner still shows; a mail outage must not hide the auth failure itself.
            logger.exception("integration.auth_failed_mail_error", extra={"integration": str(integration.pk)})
    logger.warning("integration.auth_failed", extra={"integration": str(integration.pk), "alerted": len(recipients)})
    return True


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


def _is_sandbox_url(url: str) -> bool:
    sandbox = settings.BASTION_SANDBOX_URL.rstrip("/")
    return bool(sandbox) and (url == sandbox or url.startswith(sandbox + "/"))


def sandbox_base_url(connector_key: str) -> str:
    """Where the demo sandbox serves a vendor (used to prefill base URLs in the demo)."""
    return f"{settings.BASTION_SANDBOX_URL.rstrip('/')}/{connector_key}"


# Credentials ---------------------------------------------------------------------------------------------------

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


def integration_webhook_url(integration: Integration) -> str:
    return f"{settings.BASTION_PUBLIC_URL.rstrip('/')}/api/webhooks/{integration.pk}"


def integration_webhook_register(*, integration: Integration, actor: Any = None, request: HttpRequest | None = None) -> dict[str, Any]:
    """Register Bastion's webhook at the vendor with a fresh signing secret, for connectors that can do it themselves."""
    connector = build_connector(integration)
    if not connector.supports(Capability.WEBHOOK_REGISTRATION):
        raise ApplicationError(
            f"{connector.manifest.name} cannot register webhooks through its API: paste the webhook URL and secret into its settings.",
            code="webhook_registration_unsupported",
            status_code=409,
        )
    secret = webhook_secret_generate(integration=integration, actor=actor, request=request)
    # The secret was handed to the vendor, not to a person: it is not revealed again.
    Integration.objects.filter(pk=integration.pk).update(webhook_secret_revealed_at=timezone.now())
    url = integration_webhook_url(integration)
    try:
        registered = connector.register_webhook(url=url, secret=secret)
    except ApiError as error:
        raise _vendor_error(integration, error)
    if isinstance(registered, Mapping) and registered.get("expires_at"):
        # A registration that expires (Jira's dynamic webhooks, 30 days) is refreshed by integration_webhooks_refresh.
        integration.refresh_from_db(fields=["config"])
        integration.config = {
            **integration.config,
            "webhook_registration": {"ids": list(registered.get("webhook_ids") or [registered.get("id")]), "expires_at": registered["expires_at"]},
        }
        integration.save(update_fields=["config", "updated_at"])
    audit_record(
        action="integration.webhook_register", organization=integration.organization, actor=actor, target=integration, changes={"url": url}, request=request
    )
    return {"url": url, "vendor_id": str(registered.get("id", "")) if isinstance(registered, Mapping) else ""}


WEBHOOK_REFRESH_AHEAD = timedelta(days=7)  # expiring registrations are refreshed this long before they lapse


def integration_webhooks_refresh(*, now: datetime | None = None) -> int:
    """Extend vendor webhook registrations that expire within WEBHOOK_REFRESH_AHEAD (Jira dynamic webhooks); returns how many."""
    now = now or timezone.now()
    refreshed = 0
    due = Integration.objects.filter(
        config__has_key="webhook_registration", status__in=[IntegrationStatus.CONNECTED, IntegrationStatus.DEGRADED]
    ).select_related("organization")
    for integration in due:
        registration = dict(integration.config.get("webhook_registration") or {})
        try:
            expires_at = datetime.fromisoformat(str(registration.get("expires_at")))
        except ValueError:
            expires_at = now
        if expires_at - now > WEBHOOK_REFRESH_AHEAD:
            continue
        connector = build_connector(integration)
        try:
            new_expiry = connector.refresh_webhooks(list(registration.get("ids") or []))  # type: ignore[attr-defined]
        except ApiError as error:
            integration_record_failure(integration=integration, error=error)
            logger.warning("integrations.webhook_refresh_failed", extra={"integration": str(integration.pk), "error": str(error)[:300]})
            continue
        integration.config = {**integration.config, "webhook_registration": {**registration, "expires_at": new_expiry.isoformat()}}
        integration.save(update_fields=["config", "updated_at"])
        refreshed += 1
    return refreshed


# Connection lifecycle -----------------------------------------------------------------------------------------


def data_sources_ensure(*, integration: Integration) -> list[DataSource]:
    """One data source per entity the connector declares (existing ones, with their mappings, are kept)."""
    manifest = _connector_class(integration.connector_key).manifest
    existing = {ds.entity_type: ds for ds in integration.data_sources.all()}
    for entity in manifest.entities:
        if entity.key not in existing:
            existing[entity.key] = DataSource.objects.create(organization=integration.organization, integration=integration, entity_type=entity.key)
    return list(existing.values())


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
    manifest = _connector_class(integration.connector_key).manifest
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
    from integrations.oauth import OAuthFlowError, oauth_exchange_code, oauth_take_state, token_to_credential

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
    manifest = _connector_class(integration.connector_key).manifest
    if manifest.oauth is None:
        raise OAuthFlowError(f"{manifest.name} does not use OAuth.", code="invalid")
    token = oauth_exchange_code(integration=integration, spec=manifest.oauth, default_base_url=manifest.default_base_url, code=code, entry=entry)
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


@transaction.atomic
def integration_config_update(
    *,
    integration: Integration,
    config: Mapping[str, Any] | None = None,
    data_sources: list[Mapping[str, Any]] | None = None,
    finish: bool = False,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> Integration:
    """Set the workspace/project settings and the field mappings per entity (the wizard's middle steps)."""
    manifest = _connector_class(integration.connector_key).manifest
    if config is not None:
        merged = {**integration.config, **config_validate(manifest, config)}
        if "disabled_rules" in manifest.capabilities and "disabled_rules" in config:
            try:  # a directory's disabled-account rules are checked when saved, not first at the next sync
                _connector_class(integration.connector_key).rules_validate(config["disabled_rules"])  # type: ignore[attr-defined]
            except ApiBadRequest as error:
                raise ApplicationError(error.message, code="invalid", fields={"disabled_rules": [error.message]}) from error
        config_validate(manifest, merged, partial=not finish)
        integration_update(integration=integration, config=merged, actor=actor, request=request)
    for item in data_sources or []:
        entity = item.get("entity_type")
        data_source = integration.data_sources.filter(entity_type=entity).first()
        if data_source is None:
            raise ApplicationError(
                f"{integration.display_name} has no data source '{entity}'.", code="invalid", fields={"data_sources": [f"Unknown entity {entity!r}."]}
            )
        data_source_update(data_source=data_source, field_mapping=item.get("field_mapping"), is_enabled=item.get("is_enabled"), actor=actor, request=request)
    return integration


def directory_disabled_rules_preview(*, integration: Integration, rules: Any) -> dict[str, Any]:
    """How many directory entries each disabled-account rule would exclude, read before the rules are saved."""
    if "disabled_rules" not in _connector_class(integration.connector_key).manifest.capabilities:
        raise ApplicationError(f"{integration.display_name} has no disabled-account rules.", code="not_supported", status_code=404)
    connector = build_connector(integration)
    try:
        return connector.disabled_rules_preview(rules)  # type: ignore[attr-defined]
    except ApiBadRequest as error:
        raise ApplicationError(error.message, code="invalid", fields={"rules": [error.message]}) from error
    except ApiError as error:
        raise _vendor_error(integration, error) from error
    finally:
        connector.close()  # type: ignore[attr-defined]


def data_source_update(
    *,
    data_source: DataSource,
    field_mapping: Mapping[str, Any] | None = None,
    is_enabled: bool | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> DataSource:
    """Change a data source's field mapping (Bastion field → discovered source field) or enable it."""
    before = snapshot(data_source, ["field_mapping", "is_enabled"])
    if field_mapping is not None:
        if not isinstance(field_mapping, Mapping) or any(not isinstance(v, str) for v in field_mapping.values()):
            raise ApplicationError(
                "field_mapping must map Bastion field names to source field names.", code="invalid", fields={"field_mapping": ["Invalid mapping."]}
            )
        known = {f.get("name") for f in data_source.discovered_fields or []} | {f.get("path") for f in data_source.discovered_fields or []}
        unknown = sorted(v for v in field_mapping.values() if v and known and v not in known)
        if unknown:
            message = f"Not a discovered field of {data_source.entity_type}: {', '.join(unknown)}. Run discovery again if the vendor added fields."
            raise ApplicationError(message, code="invalid", fields={"field_mapping": [message]})
        data_source.field_mapping = {str(k): v for k, v in field_mapping.items() if v}
    if is_enabled is not None:
        data_source.is_enabled = bool(is_enabled)
    data_source.save()
    audit_record(
        action="data_source.update",
        organization=data_source.organization,
        actor=actor,
        target=data_source,
        changes=model_changes(data_source, ["field_mapping", "is_enabled"], before),
        request=request,
    )
    return data_source


# Using an integration's data -------------------------------------------------------------------------------------


def _vendor_error(integration: Integration, error: ApiError) -> ApplicationError:
    """Count the failure against the integration and turn it into an answer a person can act on."""
    from integrations.errors import ApiRateLimited

    integration_record_failure(integration=integration, error=error)
    if isinstance(error, ApiRateLimited):
        return ApplicationError(
            f"The vendor is rate limiting: {error.message}. Retry in {error.retry_after:.0f}s.", code="vendor_rate_limited", status_code=429
        )
    if error.category == "auth":
        return ApplicationError(f"{integration.display_name} needs reconnecting: {error.message}", code="integration_auth_failed", status_code=409)
    return ApplicationError(f"{integration.display_name} answered with an error: {error}", code="vendor_error", status_code=502)


def integration_use_check(*, integration: Integration, membership: Membership) -> None:
    """Enforce the permission mapping: when allowed_roles is set only those roles (and admins) use the data and actions."""
    if integration.status == IntegrationStatus.DISCONNECTED:
        raise ApplicationError(f"{integration.display_name} is not connected.", code="integration_disconnected", status_code=409)
    from integrations.access import integration_access_check

    integration_access_check(integration=integration, membership=membership)


def data_source_discover(*, data_source: DataSource, actor: Any = None, request: HttpRequest | None = None) -> DataSource:
    """Ask the live system for the entity's fields and keep them (with discovered_at) for the mapping UI."""
    integration = data_source.integration
    connector = build_connector(integration)
    try:
        fields: list[FieldInfo] = connector.discover_fields(data_source.entity_type)
    except ApiError as error:
        raise _vendor_error(integration, error)
    except NotImplementedError:
        raise ApplicationError(f"{integration.display_name} cannot discover fields.", code="unsupported", status_code=409)
    data_source.discovered_fields = [
        {"name": f.name, "label": f.label, "type": f.type, "path": f.path, "is_required": f.is_required, "is_custom": f.is_custom} for f in fields
    ]
    data_source.discovered_at = timezone.now()
    data_source.save(update_fields=["discovered_fields", "discovered_at", "updated_at"])
    audit_record(
        action="data_source.discover", organization=data_source.organization, actor=actor, target=data_source, changes={"fields": len(fields)}, request=request
    )
    return data_source


def data_source_query(
    *, data_source: DataSource, membership: Membership, limit: int = 20, page: Any = None, request: HttpRequest | None = None
) -> dict[str, Any]:
    """Read one page live through the connector (no storage), transformed to Bastion's shape."""
    integration = data_source.integration
    integration_use_check(integration=integration, membership=membership)
    limit = max(1, min(int(limit), QUERY_MAX_LIMIT))
    connector = build_connector(integration)
    try:
        result: Page = connector.read(data_source.entity_type, page=page)
        records = result.records[:limit]
        transformed = [link_fields_sanitized(connector.to_bastion(data_source.entity_type, r)) for r in records]
    except ApiError as error:
        raise _vendor_error(integration, error)
    audit_record(
        action="data_source.query",
        organization=data_source.organization,
        actor=membership.user,
        target=data_source,
        changes={"records": len(records), "limit": limit},
        request=request,
    )
    return {
        "entity_type": data_source.entity_type,
        "records": records,
        "bastion": transformed,
        "next_page": result.next_page if len(result.records) <= limit else None,
        "truncated": len(result.records) > limit,
    }


def data_source_push(
    *,
    data_source: DataSource,
    membership: Membership,
    action: str,
    record: Mapping[str, Any],
    idempotency_key: str,
    request: HttpRequest | None = None,
) -> ActionResult:
    """Transform a Bastion record with from_bastion and perform one connector action (idempotent for the key)."""
    integration = data_source.integration
    integration_use_check(integration=integration, membership=membership)
    connector_class = _connector_class(integration.connector_key)
    try:
        connector_class.manifest.action(action)
    except KeyError:
        actions = ", ".join(a.key for a in connector_class.manifest.actions) or "none"
        raise ApplicationError(
            f"{connector_class.manifest.name} has no action {action!r} (available: {actions}).", code="invalid", fields={"action": ["Unknown action."]}
        )
    connector = build_connector(integration)
    payload = connector.from_bastion(data_source.entity_type, record)
    try:
        result = connector.perform(action, payload, idempotency_key=idempotency_key)
    except ApiError as error:
        raise _vendor_error(integration, error)
    audit_record(
        action="data_source.push",
        organization=data_source.organization,
        actor=membership.user,
        target=data_source,
        changes={"action": action, "idempotency_key": idempotency_key, "external_id": result.external_id, "created": result.created},
        request=request,
    )
    return result
