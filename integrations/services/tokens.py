"""OAuth access tokens in use: the refreshing auth provider and the single-flight refresh that stores what the vendor returns."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.utils import timezone

from common import metrics
from integrations.errors import ApiError, ApiHostError, ApiRateLimited, AuthRefreshFailed
from integrations.models import CredentialType, Integration, IntegrationCredential
from integrations.oauth import REFRESH_EARLY, needs_refresh, oauth_endpoints, oauth_token_refresh, refresh_lock, token_to_credential
from integrations.services.catalog import connector_class_for
from integrations.services.credentials import credential_store
from integrations.services.health import integration_auth_failed, integration_record_failure

logger = logging.getLogger(__name__)


def oauth_refresh(
    *,
    integration_id: Any,
    force: bool = False,
    stale_access_token: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Refresh the integration's access token once, however many workers ask at the same moment.

    Under the lock the credential is re-read: if another worker already refreshed (expiry far enough, or the access
    token differs from the one that got a 401), its tokens are used and the token endpoint is not called again.
    The rotated refresh token is saved before the lock is released.
    """
    with refresh_lock(integration_id):
        credential = IntegrationCredential.objects.select_related("integration", "integration__organization").get(
            integration_id=integration_id, credential_type=CredentialType.OAUTH
        )
        data = dict(credential.data or {})
        now = timezone.now()
        if force and stale_access_token and data.get("access_token") != stale_access_token:
            return data
        if not force and not needs_refresh(credential, now=now):
            return data
        integration = credential.integration
        refresh_token = data.get("refresh_token")
        if not refresh_token:
            error = AuthRefreshFailed(
                "The access token expired and the vendor gave no refresh token: reconnect the integration.", vendor_code="no_refresh_token"
            )
            integration_auth_failed(integration=integration, error=error)
            metrics.oauth_refresh_failures.labels(integration.connector_key, "no_refresh_token").inc()
            raise error
        connector_class = connector_class_for(integration.connector_key)
        spec = connector_class.manifest.oauth
        if spec is None:
            raise AuthRefreshFailed(f"{connector_class.manifest.name} does not use OAuth.")
        token_url = oauth_endpoints(integration, spec, connector_class.manifest.default_base_url).token_url
        token = _token_refreshed(integration, spec, token_url, refresh_token, sleep=sleep)
        if not token.get("access_token"):
            error = ApiHostError("The token endpoint answered without an access token; the refresh will be retried.", path=urlsplit(token_url).path)
            integration_record_failure(integration=integration, error=error)
            metrics.oauth_refresh_failures.labels(integration.connector_key, "transient").inc()
            raise error
        new_data, expires_at, scopes = token_to_credential(token, previous=data)
        credential_store(
            integration=integration,
            credential_type=CredentialType.OAUTH,
            data=new_data,
            expires_at=expires_at,
            scopes=scopes or list(credential.scopes or []),
            audit_action="credential.refresh",
        )
        metrics.oauth_refreshes.labels(integration.connector_key).inc()
        logger.info("oauth.refreshed", extra={"integration": str(integration_id), "rotated": new_data.get("refresh_token") != refresh_token})
        return new_data


def _token_refreshed(integration: Integration, spec: Any, token_url: str, refresh_token: str, *, sleep: Callable[[float], None]) -> dict[str, Any]:
    """The token endpoint's answer; a refused grant marks the integration auth_failed, a busy endpoint counts a failure."""
    try:
        return oauth_token_refresh(
            connector_key=integration.connector_key, spec=spec, token_url=token_url, refresh_token=refresh_token, integration_id=integration.pk, sleep=sleep
        )
    except AuthRefreshFailed as error:
        integration_auth_failed(integration=integration, error=error)
        metrics.oauth_refresh_failures.labels(integration.connector_key, "refused").inc()
        raise
    except ApiError as error:
        integration_record_failure(integration=integration, error=error)
        metrics.oauth_refresh_failures.labels(integration.connector_key, "transient" if error.retryable else error.category).inc()
        raise


class OAuthTokenAuth:
    """HttpClient auth for OAuth integrations: refresh before expiry and once on a 401, never twice concurrently."""

    def __init__(self, integration_id: Any, data: Mapping[str, Any], *, sleep: Callable[[float], None] = time.sleep):
        self.integration_id = integration_id
        self._data = dict(data)
        self._sleep = sleep

    @property
    def access_token(self) -> str:
        return str(self._data.get("access_token") or "")

    def _expires_at(self) -> datetime | None:
        raw = self._data.get("expires_at")
        return datetime.fromisoformat(raw) if raw else None

    def apply(self, headers: dict[str, str]) -> None:
        expires_at = self._expires_at()
        if expires_at is not None and expires_at - REFRESH_EARLY <= timezone.now():
            try:
                self._data = oauth_refresh(integration_id=self.integration_id, sleep=self._sleep)
            except (ApiHostError, ApiRateLimited):
                if expires_at <= timezone.now():
                    raise
                # Still valid for a few minutes: use it, the next call tries the refresh again.
                logger.warning("oauth.refresh_deferred", extra={"integration": str(self.integration_id)})
        headers["Authorization"] = f"{self._data.get('token_type') or 'Bearer'}".capitalize() + f" {self.access_token}"

    def refresh(self) -> bool:
        """After a 401: refresh unless another worker already did; retry when we now hold a different token."""
        used = self.access_token
        self._data = oauth_refresh(integration_id=self.integration_id, force=True, stale_access_token=used, sleep=self._sleep)
        return self.access_token != used
