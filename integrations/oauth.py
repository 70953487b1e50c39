"""OAuth 2.0 for integrations: authorization code + PKCE with a session-bound state, the token endpoint, the refresh lock."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import redis
import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from common.errors import ApplicationError
from integrations.connectors.base import BaseConnector, OAuthSpec
from integrations.errors import ApiError, ApiHostError, ApiRateLimited, AuthRefreshFailed
from integrations.http import BearerAuth, CallRecord, HttpClient, PinnedAdapter, connection_failure, name_resolution_failure, rate_limit_wait
from integrations.models import CredentialType, Integration, IntegrationCredential

logger = logging.getLogger(__name__)

REFRESH_EARLY = timedelta(minutes=5)  # refresh this long before expiry so a call never starts with a dying token
REFRESH_RETRY_WAITS = (0.2, 0.6)  # backoff between token-endpoint attempts when the vendor names no Retry-After
TOKEN_ATTEMPTS = len(REFRESH_RETRY_WAITS) + 1
TOKEN_WAIT_BUDGET = 10.0  # seconds one exchange or refresh may wait in total; a longer Retry-After fails now, retried later
TOKEN_TIMEOUT = (5.0, 20.0)  # (connect, read) per token-endpoint attempt
# The slowest a refresh can be: every wait the budget allows plus each attempt's connect and read timeouts (85 s).
TOKEN_CALL_WORST_CASE = TOKEN_WAIT_BUDGET + TOKEN_ATTEMPTS * (TOKEN_TIMEOUT[0] + TOKEN_TIMEOUT[1])
# The Redis lock outlives the slowest refresh, and is renewed while one runs (a read timeout restarts with every byte, and a
# name with several addresses spends a connect timeout on each), so a second worker never spends a rotating refresh token.
REFRESH_LOCK_TIMEOUT = TOKEN_CALL_WORST_CASE
REFRESH_LOCK_WAIT = TOKEN_CALL_WORST_CASE  # a waiter gives up (a retryable ApiHostError) after the slowest refresh
SESSION_KEY = "bastion_oauth"
STATE_MAX_AGE = 15 * 60
# Token endpoint errors that mean the grant is gone and a person must reconnect (RFC 6749 §5.2, Slack).
TERMINAL_ERRORS = frozenset(
    {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_refresh_token", "token_revoked", "token_expired", "invalid_auth"}
)
# RFC 6749 §4.1.2.1 / §5.2 errors that say "try again later" rather than "this grant is wrong".
TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error", "slow_down"})
TOKEN_FIELDS = ("access_token", "refresh_token", "token_type", "expires_in", "expires_at", "scope")


class OAuthFlowError(ApplicationError):
    """The authorization redirect came back unusable (bad state, denied, failed exchange)."""


class TokenEndpointBusy(Exception):
    """The token endpoint answered 429 or 5xx; `retry_after` is the wait it asked for (None when it named none)."""

    def __init__(self, status: int, retry_after: float | None):
        super().__init__(f"token endpoint answered {status}")
        self.status = status
        self.retry_after = retry_after


def _raise_when_busy(response: requests.Response) -> requests.Response:
    # Authlib would read a 429 body without an `error` member as a token; stop it before it parses anything.
    if response.status_code == 429 or response.status_code >= 500:
        raise TokenEndpointBusy(response.status_code, rate_limit_wait(response.headers))
    return response


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class OAuthEndpoints:
    authorize_url: str
    token_url: str


def oauth_client(connector_key: str) -> OAuthClient:
    """The registered OAuth client for a connector: settings.BASTION_OAUTH_CLIENTS, else development defaults."""
    registered = (settings.BASTION_OAUTH_CLIENTS or {}).get(connector_key) or {}
    if registered.get("client_id"):
        return OAuthClient(registered["client_id"], registered.get("client_secret", ""))
    if settings.IS_PRODUCTION:
        raise ApplicationError(
            f"No OAuth client is registered for {connector_key}: add it to BASTION_OAUTH_CLIENTS.", code="oauth_client_missing", status_code=409
        )
    return OAuthClient("bastion-demo", "bastion-demo-secret")


def oauth_endpoints(integration: Integration, spec: OAuthSpec, default_base_url: str = "") -> OAuthEndpoints:
    """Where to authorize and exchange tokens for this integration.

    - `integration.config["oauth_base_url"]` set: `{oauth_base_url}/oauth/authorize` and `/oauth/token` (the sandbox's layout,
      and any vendor-compatible OAuth server an operator points at);
    - otherwise the manifest's URLs; relative ones resolve against the integration's API base URL.
    """
    override = str(integration.config.get("oauth_base_url") or "").rstrip("/")
    if override:
        return OAuthEndpoints(f"{override}/oauth/authorize", f"{override}/oauth/token")
    base = (integration.base_url or default_base_url).rstrip("/") + "/"
    return OAuthEndpoints(urljoin(base, spec.authorize_url), urljoin(base, spec.token_url))


def _session(connector_key: str, spec: OAuthSpec, *, redirect_uri: str | None = None) -> OAuth2Session:
    from integrations.ssrf import url_guard

    client = oauth_client(connector_key)
    session = OAuth2Session(
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_endpoint_auth_method=spec.client_auth,
        scope=spec.scope_separator.join(spec.scopes) or None,
        redirect_uri=redirect_uri,
        code_challenge_method="S256" if spec.use_pkce else None,
        default_timeout=TOKEN_TIMEOUT,
    )
    # The SSRF guard's transport, as HttpClient uses: each connection goes only to a DNS answer it vetted (the operator's
    # BASTION_ALLOW_PRIVATE_BASE_URLS applies), while Host, SNI and the certificate check keep the token URL's hostname.
    pinned = PinnedAdapter(url_guard)
    session.mount("https://", pinned)
    session.mount("http://", pinned)
    # A token endpoint has no business redirecting: a 307/308 would resend the body, client_secret included, to wherever it points.
    session.max_redirects = 0
    session.register_compliance_hook("access_token_response", _raise_when_busy)
    session.register_compliance_hook("refresh_token_response", _raise_when_busy)
    return session


def _token_call(
    call: Callable[[], Mapping[str, Any]], *, is_final: Callable[[AuthlibBaseError], bool], token_url: str, integration_id: Any, sleep: Callable[[float], None]
) -> dict[str, Any]:
    """Call the token endpoint, waiting out 429/5xx (Retry-After when given) and transient errors within TOKEN_WAIT_BUDGET.

    Final OAuth errors (is_final) are raised as they are, and so is UnsafeBaseUrl (the name resolved to a refused address:
    nothing was sent); when the attempts or the budget run out, an ApiRateLimited (429) or ApiHostError carrying the
    vendor's `retry_after` is raised, so the caller can try again later.
    """
    waited = 0.0
    attempts = TOKEN_ATTEMPTS
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        hint: float | None = None
        try:
            return dict(call())
        except TokenEndpointBusy as exc:
            last, hint = exc, exc.retry_after
        except AuthlibBaseError as exc:
            if is_final(exc):
                raise
            last = exc
        except (requests.RequestException, ValueError) as exc:
            last = exc
        wait = hint if hint is not None else REFRESH_RETRY_WAITS[min(attempt, attempts - 1) - 1]
        gives_up = attempt == attempts or waited + wait > TOKEN_WAIT_BUDGET
        logger.warning(
            "oauth.token_endpoint_transient",
            extra={"integration": str(integration_id), "attempt": attempt, "error": type(last).__name__, "wait": round(wait, 2), "gives_up": gives_up},
        )
        if gives_up:
            break
        sleep(wait)
        waited += wait
    raise _token_endpoint_error(last, token_url)


def _token_endpoint_error(last: Exception | None, token_url: str) -> ApiError:
    path = urlsplit(token_url).path
    if isinstance(last, TokenEndpointBusy):
        wait = f"; it asked to wait {last.retry_after:g} s" if last.retry_after is not None else ""
        if last.status == 429:
            return ApiRateLimited(f"The token endpoint is rate limiting Bastion{wait}.", retry_after=last.retry_after or 1.0, status=429, path=path)
        error = ApiHostError(f"The token endpoint is unavailable (HTTP {last.status}){wait}.", status=last.status, path=path)
        error.retry_after = last.retry_after  # type: ignore[attr-defined]  # as integrations.http does for a 5xx with Retry-After
        return error
    if isinstance(last, requests.ConnectionError) and name_resolution_failure(last) is not None:
        failure = connection_failure(last, token_url, path)  # names the host and the resolver's answer
        failure.message = f"The token endpoint is unreachable: {failure.message}"
        return failure
    detail = f"{last.error}" if isinstance(last, AuthlibBaseError) else type(last).__name__
    return ApiHostError(f"The token endpoint is failing ({detail}).", path=path)


def scopes_with_purposes(spec: OAuthSpec) -> list[dict[str, str]]:
    """The scopes Bastion will ask for, each with why (shown before consent)."""
    return [{"scope": scope, "purpose": spec.scope_purposes.get(scope, "")} for scope in spec.scopes]


def oauth_begin(*, request: HttpRequest, integration: Integration, spec: OAuthSpec, default_base_url: str, next_url: str) -> str:
    """Start the authorization redirect: a fresh state and PKCE verifier kept in this user's session only."""
    redirect_uri = request.build_absolute_uri("/integrations/oauth/callback")
    endpoints = oauth_endpoints(integration, spec, default_base_url)
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    session = _session(integration.connector_key, spec, redirect_uri=redirect_uri)
    url, _ = session.create_authorization_url(
        endpoints.authorize_url, state=state, code_verifier=verifier if spec.use_pkce else None, **dict(spec.extra_authorize_params)
    )
    pending = {k: v for k, v in request.session.get(SESSION_KEY, {}).items() if v.get("created", 0) > time.time() - STATE_MAX_AGE}
    pending[state] = {
        "integration_id": str(integration.pk),
        "organization_id": str(integration.organization_id),
        "user_id": str(request.user.pk),
        "verifier": verifier,
        "redirect_uri": redirect_uri,
        "next": next_url,
        "created": time.time(),
    }
    request.session[SESSION_KEY] = pending
    request.session.modified = True
    return url


def oauth_take_state(*, request: HttpRequest, state: str) -> dict[str, Any]:
    """Consume the pending authorization for `state`; refuse a state this session did not start (CSRF, replay, other user)."""
    pending = dict(request.session.get(SESSION_KEY, {}))
    entry = pending.pop(state, None) if state else None
    request.session[SESSION_KEY] = pending
    request.session.modified = True
    if entry is None or entry.get("created", 0) < time.time() - STATE_MAX_AGE:
        raise OAuthFlowError(
            "This authorization response does not match a connection you started in this browser session (or it expired). Start again.",
            code="oauth_state_mismatch",
        )
    if entry.get("user_id") != str(request.user.pk):
        raise OAuthFlowError("This authorization was started by another user.", code="oauth_state_mismatch")
    return entry


def oauth_exchange_code(
    *,
    integration: Integration,
    spec: OAuthSpec,
    default_base_url: str,
    code: str,
    entry: Mapping[str, Any],
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Exchange the authorization code (with the PKCE verifier) for tokens; the caller runs oauth_post_authorize and stores them."""
    endpoints = oauth_endpoints(integration, spec, default_base_url)
    session = _session(integration.connector_key, spec, redirect_uri=entry["redirect_uri"])

    def exchange() -> Mapping[str, Any]:
        return session.fetch_token(
            endpoints.token_url,
            grant_type="authorization_code",
            code=code,
            code_verifier=entry["verifier"] if spec.use_pkce else None,
            redirect_uri=entry["redirect_uri"],
        )

    def is_final(exc: AuthlibBaseError) -> bool:
        return not (isinstance(exc.error, str) and exc.error in TRANSIENT_ERRORS)

    try:
        token = _token_call(exchange, is_final=is_final, token_url=endpoints.token_url, integration_id=integration.pk, sleep=sleep)
    except AuthlibBaseError as exc:
        raise OAuthFlowError(f"The vendor refused the authorization code: {exc.error} {exc.description or ''}".strip(), code="oauth_exchange_failed")
    except ApiRateLimited as exc:
        raise OAuthFlowError(f"{exc.message} Start the connection again in a minute.", code="oauth_rate_limited", status_code=503)
    except ApiError as exc:
        if not exc.retryable:  # e.g. the token URL resolves to a refused address: trying again would not help
            raise OAuthFlowError(f"Could not get tokens from the vendor: {exc.message}", code="oauth_exchange_failed", status_code=400)
        raise OAuthFlowError(f"Could not get tokens from the vendor: {exc.message} Try again.", code="oauth_exchange_failed", status_code=502)
    if not token.get("access_token"):
        raise OAuthFlowError("The vendor's token response has no access token. Try again.", code="oauth_exchange_failed", status_code=502)
    return token


def oauth_post_authorize(
    *,
    integration: Integration,
    connector_class: type[BaseConnector],
    token: Mapping[str, Any],
    default_base_url: str,
    recorder: Callable[[CallRecord], None] | None = None,
) -> dict[str, Any]:
    """Run the connector's post_authorize hook with the new token; returns the config it implies (e.g. Jira's cloudId) to save."""
    from integrations.ssrf import url_guard

    base_url = integration.base_url or default_base_url
    client = None
    if base_url.startswith("http"):
        client = HttpClient(
            base_url,
            auth=BearerAuth(str(token["access_token"])),
            timeout=TOKEN_TIMEOUT,
            max_retries=2,
            recorder=recorder,
            url_guard=url_guard,
            connector_key=integration.connector_key,
            classify=connector_class.classify_response,
        )
    connector = connector_class(client=client, config=integration.config, credentials=token)
    try:
        return connector.post_authorize(token)
    except ApiError as exc:
        logger.warning("oauth.post_authorize_failed", extra={"integration": str(integration.pk), "error": str(exc)})
        message = f"Signed in to {connector_class.manifest.name}, but {exc.message}"
        raise OAuthFlowError(message, code="oauth_account_unusable", status_code=502 if exc.retryable else 400)


def token_to_credential(token: Mapping[str, Any], *, previous: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], datetime | None, list[str]]:
    """Normalise a token response into the stored credential: tokens, expiry, scopes and vendor extras (e.g. instance_url)."""
    data: dict[str, Any] = {k: v for k, v in (previous or {}).items() if k not in TOKEN_FIELDS}
    data.update({k: v for k, v in token.items() if k not in ("expires_in", "expires_at")})
    if not data.get("refresh_token") and previous and previous.get("refresh_token"):
        data["refresh_token"] = previous["refresh_token"]  # vendors that do not rotate keep the old one valid
    expires_at = None
    if token.get("expires_at"):
        expires_at = datetime.fromtimestamp(float(token["expires_at"]), tz=UTC)
    elif token.get("expires_in"):
        expires_at = timezone.now() + timedelta(seconds=int(token["expires_in"]))
    data["expires_at"] = expires_at.isoformat() if expires_at else None
    scope = token.get("scope") or (previous or {}).get("scope") or ""
    if scope:
        data["scope"] = scope  # a refresh answer may omit the scope: the grant keeps what was consented
    scopes = [s for s in str(scope).replace(",", " ").split() if s]
    return data, expires_at, scopes


# Single-flight refresh ---------------------------------------------------------------------------------------


def _redis():
    from integrations.ratelimit import redis_client

    return redis_client(settings.REDIS_URL)


def refresh_lock_key(integration_id: Any) -> str:
    return f"bastion:oauth-refresh:{integration_id}"


class _LockRenewal(threading.Thread):
    """Resets the refresh lock's TTL every third of it while the holder works, so it cannot expire under a live refresh."""

    def __init__(self, lock: redis.lock.Lock, integration_id: Any):
        super().__init__(name=f"oauth-refresh-lock-{integration_id}", daemon=True)
        self.lock = lock
        self.integration_id = integration_id
        self._done = threading.Event()

    @property
    def interval(self) -> float:
        return float(self.lock.timeout or REFRESH_LOCK_TIMEOUT) / 3

    def run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self.lock.reacquire()
            except redis.exceptions.LockError:
                # Expired or taken (Redis was unreachable for a whole TTL): nothing left to keep; the release will say so too.
                logger.warning("oauth.refresh_lock_lost", extra={"integration": str(self.integration_id)})
                return
            except redis.RedisError as exc:
                logger.warning("oauth.refresh_lock_renew_failed", extra={"integration": str(self.integration_id), "error": str(exc)})

    def stop(self) -> None:
        self._done.set()
        # Bounded: a renewal stuck on an unresponsive Redis must not hold up the refresh that already finished.
        self.join(self.interval)


@contextmanager
def refresh_lock(integration_id: Any):
    """One refresher per integration across every process: a Redis lock, or a row lock when Redis is not configured.

    The Redis lock's TTL covers the slowest refresh and is renewed while the holder runs; waiters give up after
    REFRESH_LOCK_WAIT with a retryable ApiHostError.
    """
    if settings.REDIS_URL:
        # thread_local=False: the renewal thread must present the holder's token.
        lock = _redis().lock(refresh_lock_key(integration_id), timeout=REFRESH_LOCK_TIMEOUT, blocking_timeout=REFRESH_LOCK_WAIT, thread_local=False)
        if not lock.acquire():
            raise ApiHostError("Timed out waiting for another worker to refresh the token; the call will be retried.")
        renewal = _LockRenewal(lock, integration_id)
        renewal.start()
        try:
            yield
        finally:
            renewal.stop()
            try:
                lock.release()
            except redis.RedisError:  # expired, taken, or Redis unreachable: the refresh itself already committed
                logger.warning("oauth.refresh_lock_expired", extra={"integration": str(integration_id)})
    else:
        with transaction.atomic():
            IntegrationCredential.objects.select_for_update().filter(integration_id=integration_id, credential_type=CredentialType.OAUTH).first()
            yield


def needs_refresh(credential: IntegrationCredential, *, now: datetime) -> bool:
    return credential.expires_at is not None and credential.expires_at - REFRESH_EARLY <= now


def oauth_token_refresh(
    *, connector_key: str, spec: OAuthSpec, token_url: str, refresh_token: str, integration_id: Any, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """Spend a refresh token at the token endpoint: AuthRefreshFailed when the vendor refuses it, another ApiError when it is busy.

    Nothing is stored or marked here: integrations.services.tokens.oauth_refresh does that under the refresh lock.
    """
    session = _session(connector_key, spec)
    session.scope = None  # a refresh keeps the granted scopes; asking again can fail at some vendors

    def is_final(exc: AuthlibBaseError) -> bool:
        # Only a refused grant is final; anything else (temporarily_unavailable, an unknown error) is retried later.
        return isinstance(exc.error, str) and exc.error in TERMINAL_ERRORS

    try:
        return _token_call(
            lambda: session.refresh_token(token_url, refresh_token=refresh_token),
            is_final=is_final,
            token_url=token_url,
            integration_id=integration_id,
            sleep=sleep,
        )
    except AuthlibBaseError as exc:
        raise AuthRefreshFailed(
            f"The vendor refused the refresh token ({exc.error}): reconnect the integration.", vendor_code=str(exc.error), path=urlsplit(token_url).path
        ) from exc
    except ApiError as exc:
        # Not now, not never: the caller counts the failure and keeps the integration's status (no auth_failed, no alert).
        if exc.retryable:
            exc.message = f"{exc.message} The refresh will be retried."
        raise
