"""Fixtures for the hardening suites: every connector connected to its stand-in with recognisable secrets, log capture, signers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from integrations.models import CredentialType, Integration, IntegrationStatus
from integrations.registry import connector_classes, get_connector_class
from integrations.services import credential_store, integration_connect

JIRA_ADMIN = "jira.admin@acme.example"
PAGERDUTY_ACTOR = "amara.nwosu@acme.example"
GOOGLE_USER = "ava.chen@acme.example"
STATUSPAGE_PAGE = "acmest4tus01"
HUBSPOT_SCOPES = ["crm.objects.deals.read", "crm.objects.deals.write", "crm.objects.contacts.read", "crm.objects.companies.read", "crm.objects.owners.read"]
DEMO_SCOPES = ["people:read", "people:write", "projects:read"]
SMTP_USER = "bastion-mailer"


MS_TENANT = "a1b2c3d4-0000-4000-8000-000000000001"  # the Microsoft 365 stand-in's tenant


def sekret(vendor: str, kind: str = "token") -> str:
    """A recognisable secret value: if it shows up anywhere it must not, the search names the vendor."""
    return f"SEKRET-{vendor}-{kind}-{secrets.token_hex(10)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sandbox_token(sandbox: str, vendor: str, token: str, **grant: Any) -> str:
    """Register `token` in the sandbox so the vendor stand-in accepts it (a real, working credential)."""
    response = requests.post(f"{sandbox}/_control/tokens", json={"vendor": vendor, "token": token, **grant}, timeout=5)
    response.raise_for_status()
    assert response.json()["token"] == token
    return token


def set_faults(sandbox: str, vendor: str, **knobs: Any) -> None:
    requests.put(f"{sandbox}/_control/faults/{vendor}", json=knobs, timeout=5).raise_for_status()


# Log capture --------------------------------------------------------------------------------------------------------------


class EverythingHandler(logging.Handler):
    """Keeps every record at every level, rendered with its message, arguments, `extra` attributes and traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not hide the raw parts
            message = f"{record.msg!r} % {record.args!r}"
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_RECORD_KEYS}
        trace = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        self.texts.append(f"{record.name} {record.levelname} {message} {extras!r} {trace} {record.stack_info or ''}")


_STANDARD_RECORD_KEYS = set(logging.LogRecord("x", logging.INFO, "x", 1, "x", None, None).__dict__) | {"message", "asctime"}


@pytest.fixture
def log_capture(caplog) -> Iterator[EverythingHandler]:
    """DEBUG for every logger: caplog plus our own handler on the root and on every logger that does not propagate."""
    handler = EverythingHandler()
    caplog.set_level(logging.DEBUG)
    root = logging.getLogger()
    previous_levels: dict[logging.Logger, int] = {}
    attached: list[logging.Logger] = [root]
    root.addHandler(handler)
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            previous_levels[logger] = logger.level
            logger.setLevel(logging.DEBUG)
            logger.disabled = False
            if not logger.propagate:
                logger.addHandler(handler)
                attached.append(logger)
    yield handler
    for logger in attached:
        logger.removeHandler(handler)
    for logger, level in previous_levels.items():
        logger.setLevel(level)


# Local servers for the two connectors that speak protocols with real servers -------------------------------------------------


@dataclass
class SmtpServer:
    host: str
    port: int
    password: str
    messages: list[bytes] = field(default_factory=list)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real aiosmtpd server with AUTH, accepting one account whose password is a recognisable secret."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    server = SmtpServer("127.0.0.1", free_port(), sekret("email", "password"))

    class Capture:
        async def handle_DATA(self, smtp, session, envelope):  # noqa: N802 - aiosmtpd hook name
            server.messages.append(envelope.original_content)
            return "250 Message accepted for delivery"

    def authenticate(smtp, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode() and auth_data.password == server.password.encode()
        return AuthResult(success=ok, handled=False)

    controller = Controller(Capture(), hostname=server.host, port=server.port, authenticator=authenticate, auth_require_tls=False, auth_required=True)
    controller.start()
    yield server
    controller.stop()


@dataclass
class LdapDirectory:
    server: Any
    bind_dn: str
    password: str


@pytest.fixture(scope="session")
def ldap_directory() -> Iterator[LdapDirectory]:
    """A real slapd with the shared sample people and a service account whose password is a recognisable secret."""
    from tests.ldap_server import SUFFIX, SlapdServer

    server = SlapdServer.start_new()
    try:
        server.load_sample()
        password = sekret("ldap", "bind")
        bind_dn = f"cn=hardening-svc,ou=service,{SUFFIX}"
        server.add_entries([(bind_dn, {"objectClass": ["organizationalRole", "simpleSecurityObject"], "cn": "hardening-svc", "userPassword": password})])
        yield LdapDirectory(server, bind_dn, password)
    finally:
        server.stop()


# Connecting every connector ----------------------------------------------------------------------------------------------


@dataclass
class Recipe:
    """How integration_connect is called for one connector, and which secret values it carries."""

    credentials: dict[str, Any]
    secrets: list[str]
    credential_type: str = CredentialType.API_KEY
    base_url: str = ""
    config: dict[str, Any] = field(default_factory=dict)


def _recipes(sandbox: str, smtp: SmtpServer | None, ldap: LdapDirectory | None) -> dict[str, Callable[[], Recipe]]:
    def bearer(vendor: str, field_name: str, base: str, *, config: dict | None = None, **grant: Any) -> Callable[[], Recipe]:
        def make() -> Recipe:
            token = sandbox_token(sandbox, vendor, sekret(vendor), **grant)
            return Recipe({field_name: token}, [token], base_url=f"{sandbox}/{base}", config=config or {})

        return make

    def jira() -> Recipe:
        token = sandbox_token(sandbox, "jira", sekret("jira"), subject=JIRA_ADMIN)
        return Recipe({"email": JIRA_ADMIN, "api_token": token}, [token], base_url=f"{sandbox}/jira")

    def salesforce() -> Recipe:
        token = sandbox_token(sandbox, "salesforce", sekret("salesforce"))
        credentials = {"access_token": token, "instance_url": f"{sandbox}/salesforce", "token_type": "Bearer"}
        return Recipe(credentials, [token], credential_type=CredentialType.OAUTH)

    def entra() -> Recipe:
        client_secret = sekret("entra", "client-secret")
        return Recipe(
            {"client_id": "bastion-demo", "client_secret": client_secret},
            [client_secret],
            credential_type=CredentialType.SERVICE_ACCOUNT,
            base_url=f"{sandbox}/entra/v1.0",
            config={"tenant_id": "acme-tenant", "login_base_url": f"{sandbox}/entra"},
        )

    def google_calendar() -> Recipe:
        key_file = requests.post(f"{sandbox}/google_calendar/_sandbox/service_accounts", json={}, timeout=10).json()
        # The private key is the secret: look for its whole PEM and for single base64 lines of it (JSON escapes newlines).
        body_lines = [line for line in key_file["private_key"].splitlines() if line and not line.startswith("-----")]
        return Recipe(
            {"service_account_key": json.dumps(key_file)},
            [key_file["private_key"], body_lines[1], body_lines[len(body_lines) // 2]],
            credential_type=CredentialType.SERVICE_ACCOUNT,
            base_url=f"{sandbox}/google_calendar/calendar/v3/",
            config={"subject": GOOGLE_USER},
        )

    def twilio() -> Recipe:
        # The stand-in's account auth token is fixed (Twilio issues it; nobody chooses it): it is the secret to look for.
        account = requests.get(f"{sandbox}/twilio/_sandbox/account", timeout=5).json()
        return Recipe(
            {"account_sid": account["account_sid"], "auth_token": account["auth_token"]},
            [account["auth_token"]],
            base_url=f"{sandbox}/twilio",
            config={"from_number": account["from_numbers"][0]},
        )

    def email() -> Recipe:
        return Recipe(
            {"username": SMTP_USER, "password": smtp.password},
            [smtp.password],
            config={"host": smtp.host, "port": smtp.port, "from_email": "crisis@acme.example", "timeout": 5},
        )

    def ldap_recipe() -> Recipe:
        from tests.ldap_server import SUFFIX

        return Recipe(
            {"bind_dn": ldap.bind_dn, "bind_password": ldap.password},
            [ldap.password],
            credential_type=CredentialType.SERVICE_ACCOUNT,
            config={
                "server_url": ldap.server.ldap_url,
                "base_dn": f"ou=people,{SUFFIX}",
                "group_base_dn": f"ou=groups,{SUFFIX}",
                "flavor": "openldap",
                "start_tls": True,
                "ca_cert": ldap.server.cert_path.read_text(),
            },
        )

    def amplitude() -> Recipe:
        # HTTP Basic api_key:secret_key: the stand-in knows the pair as one credential; the secret key is the secret.
        api_key, secret_key = "hardening-amplitude-project", sekret("amplitude", "secret-key")
        sandbox_token(sandbox, "amplitude", f"{api_key}:{secret_key}")
        return Recipe({"api_key": api_key, "secret_key": secret_key}, [secret_key], base_url=f"{sandbox}/amplitude", config={"charts": "k2f7a9x"})

    def microsoft365() -> Recipe:
        client_secret = sekret("microsoft365", "client-secret")
        return Recipe(
            {"tenant_id": MS_TENANT, "client_id": "bastion-app", "client_secret": client_secret},
            [client_secret],
            credential_type=CredentialType.SERVICE_ACCOUNT,
            base_url=f"{sandbox}/microsoft365",
            config={"tenant_id": MS_TENANT, "organizer": "amara.nwosu@acme.example"},
        )

    def google_sheets() -> Recipe:
        scopes = ["https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/drive.readonly"]
        token = sandbox_token(sandbox, "google_sheets", sekret("google_sheets"), scopes=scopes, subject="amara.nwosu@acme.example")
        return Recipe({"access_token": token, "token_type": "Bearer"}, [token], credential_type=CredentialType.OAUTH, base_url=f"{sandbox}/google_sheets")

    def docusign() -> Recipe:
        # A JWT service integration registered at the stand-in (consented): the RSA private key is the secret to look for.
        app = requests.post(f"{sandbox}/docusign/_sandbox/jwt-apps", json={"consented": True}, timeout=30).json()
        body_lines = [line for line in app["private_key"].splitlines() if line and not line.startswith("-----")]
        return Recipe(
            {"integration_key": app["integration_key"], "user_id": app["user_id"], "private_key": app["private_key"]},
            [app["private_key"], body_lines[1], body_lines[len(body_lines) // 2]],
            credential_type=CredentialType.SERVICE_ACCOUNT,
            base_url=f"{sandbox}/docusign",
        )

    def intercom() -> Recipe:
        # The app's client secret signs Intercom's notifications (the webhook key field): a secret like the token.
        token, client_secret = sandbox_token(sandbox, "intercom", sekret("intercom")), sekret("intercom", "client-secret")
        return Recipe({"token": token, "client_secret": client_secret}, [token, client_secret], base_url=f"{sandbox}/intercom")

    def servicenow() -> Recipe:
        # Basic auth; the stand-in takes a password registered as a token for it, so the secret is a recognisable one.
        password = sandbox_token(sandbox, "servicenow", sekret("servicenow", "password"), subject="a0000000000000000000000000000001")
        return Recipe({"username": "bastion.integration", "password": password}, [password], base_url=f"{sandbox}/servicenow")

    return {
        "aha": bearer("aha", "api_key", "aha/api/v1", config={"product": "6100000000000000001"}),
        "amplitude": amplitude,
        "asana": bearer("asana", "token", "asana/api/1.0", config={"workspace": "1100000000000001", "project": "1300000000000001"}),
        "brandfolder": bearer("brandfolder", "api_key", "brandfolder/api/v4", config={"brandfolder": "bfbrand-nimbus-00001"}),
        "servicenow": servicenow,
        "microsoft365": microsoft365,
        "demo": bearer("demo", "api_key", "demo", scopes=DEMO_SCOPES),
        "docusign": docusign,
        "email": email,
        "entra": entra,
        "google_calendar": google_calendar,
        "google_sheets": google_sheets,
        "hubspot": bearer("hubspot", "access_token", "hubspot", scopes=HUBSPOT_SCOPES),
        "jira": jira,
        "jira_dc": bearer("jira_dc", "personal_access_token", "jira_dc", subject="jira.admin"),
        "ldap": ldap_recipe,
        "okta": bearer("okta", "api_token", "okta"),
        "pagerduty": bearer("pagerduty", "api_key", "pagerduty", config={"from_email": PAGERDUTY_ACTOR}, subject=PAGERDUTY_ACTOR),
        "salesforce": salesforce,
        "sandbox_actions": bearer("sandbox_actions", "api_key", "sandbox_actions", scopes=["objects:write"]),
        "sandbox_directory": bearer("sandbox_directory", "token", "sandbox_directory", config={"page_size": 7}, subject="directory-admin"),
        "scim": bearer("scim", "token", "scim/v2"),
        "slack": bearer("slack", "access_token", "slack/api", scopes=_slack_scopes()),
        "statuspage": bearer("statuspage", "api_key", "statuspage/v1", config={"page_id": STATUSPAGE_PAGE}),
        "twilio": twilio,
        "intercom": intercom,
        "productboard": bearer("productboard", "token", "productboard/v2"),
    }


def _slack_scopes() -> list[str]:
    from integrations.connectors import slack

    return list(slack.SCOPE_PURPOSES) + list(getattr(slack, "OPTIONAL_SCOPE_PURPOSES", {}))


@dataclass
class Connected:
    key: str
    integration: Integration
    secrets: list[str]
    webhook_secret: str = ""


@pytest.fixture
def connect_all(sandbox, smtp_server, ldap_directory) -> Callable[..., dict[str, Connected]]:
    """Connect EVERY installed connector (integration_connect + test) with recognisable secrets; webhook secrets too."""

    def connect(organization, *, actor: Any = None) -> dict[str, Connected]:
        recipes = _recipes(sandbox, smtp_server, ldap_directory)
        missing = sorted(set(connector_classes()) - set(recipes))
        assert not missing, f"No hardening connection recipe for {missing}: add one to tests/hardening/conftest.py so secrets are checked for it."
        connected: dict[str, Connected] = {}
        for key, connector in sorted(connector_classes().items()):
            recipe = recipes[key]()
            integration = integration_connect(
                organization=organization,
                connector_key=key,
                credentials=recipe.credentials,
                credential_type=recipe.credential_type,
                base_url=recipe.base_url,
                config=recipe.config,
                display_name=f"Hardening {key}",
                actor=actor,
            )
            integration.refresh_from_db()
            assert integration.status == IntegrationStatus.CONNECTED, f"{key} did not connect: {integration.last_error}"
            item = Connected(key, integration, list(recipe.secrets))
            if connector.manifest.webhook and connector.manifest.webhook.key_field:
                item.webhook_secret = recipe.credentials[connector.manifest.webhook.key_field]  # the vendor signs with the credential
            elif connector.manifest.supports_webhooks:
                item.webhook_secret = sekret(key, "whsec")
                credential_store(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": item.webhook_secret}, actor=actor)
                item.secrets.append(item.webhook_secret)
            connected[key] = item
        return connected

    return connect


@pytest.fixture
def connect_one(sandbox) -> Callable[..., Connected]:
    """Connect one sandbox-backed connector (not email/ldap) with recognisable secrets and a webhook secret."""

    def connect(organization, key: str) -> Connected:
        recipe = _recipes(sandbox, None, None)[key]()
        integration = integration_connect(
            organization=organization,
            connector_key=key,
            credentials=recipe.credentials,
            credential_type=recipe.credential_type,
            base_url=recipe.base_url,
            config=recipe.config,
            display_name=f"Hardening {key}",
        )
        integration.refresh_from_db()
        assert integration.status == IntegrationStatus.CONNECTED, f"{key} did not connect: {integration.last_error}"
        webhook = get_connector_class(key).manifest.webhook
        key_field = webhook.key_field if webhook else ""
        if key_field:  # the vendor signs with the credential (Twilio's auth token): no secret of Bastion's to store
            return Connected(key, integration, list(recipe.secrets), webhook_secret=recipe.credentials[key_field])
        item = Connected(key, integration, list(recipe.secrets), webhook_secret=sekret(key, "whsec"))
        credential_store(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": item.webhook_secret})
        return item

    return connect


# Webhook signing, per vendor scheme (what each vendor really sends) -------------------------------------------------------------


@dataclass
class SignedWebhook:
    body: bytes
    headers: dict[str, str]  # Django test-client META keys (HTTP_…)
    content_type: str = "application/json"


def _meta(headers: dict[str, str]) -> dict[str, str]:
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_for(
    key: str, *, secret: str, url: str, external_id: str = "hx1", delivery_id: str = "dlv-1", age_seconds: int = 0, body: bytes | None = None
) -> SignedWebhook:
    """A correctly signed delivery for vendor `key` that changes one thing (`external_id`).

    `age_seconds` makes it stale (Google: an expired channel); `body` replaces the payload (still correctly signed) for malformed cases.
    """
    now = int(time.time()) - age_seconds
    payload = _payload(key, external_id, delivery_id, now)
    raw = payload if body is None else body
    if key == "sandbox_directory":
        from integrations.connectors.sandbox_directory import webhook_signature

        stamp, signature = webhook_signature(secret, raw, now)
        return SignedWebhook(raw, _meta({"X-Directory-Signature": signature, "X-Directory-Timestamp": stamp, "X-Directory-Delivery": delivery_id}))
    if key == "demo":
        signature = "sha256=" + _hmac_hex(secret, str(now).encode() + b"." + raw)
        return SignedWebhook(raw, _meta({"X-Demo-Signature": signature, "X-Demo-Timestamp": str(now)}))
    if key == "sandbox_actions":
        signature = "v1=" + _hmac_hex(secret, f"{now}.".encode() + raw)
        return SignedWebhook(raw, _meta({"X-Sandbox-Timestamp": str(now), "X-Sandbox-Signature": signature}))
    if key == "slack":
        signature = "v0=" + _hmac_hex(secret, b"v0:" + str(now).encode() + b":" + raw)
        return SignedWebhook(raw, _meta({"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(now)}))
    if key == "jira":
        return SignedWebhook(raw, _meta({"X-Hub-Signature": "sha256=" + _hmac_hex(secret, raw), "X-Atlassian-Webhook-Identifier": delivery_id}))
    if key == "jira_dc":
        # Data Center 10 signs like Cloud's admin webhooks (no identifier header: the inbox keys deliveries by body hash).
        return SignedWebhook(raw, _meta({"X-Hub-Signature": "sha256=" + _hmac_hex(secret, raw)}))
    if key == "pagerduty":
        return SignedWebhook(raw, _meta({"X-PagerDuty-Signature": "v1=" + _hmac_hex(secret, raw)}))
    if key == "hubspot":
        from integrations.connectors.hubspot import sign_v3

        stamp = str(now * 1000)
        return SignedWebhook(raw, _meta({"X-HubSpot-Signature-v3": sign_v3(secret, "POST", url, raw, stamp), "X-HubSpot-Request-Timestamp": stamp}))
    if key == "okta":
        return SignedWebhook(raw, _meta({"Authorization": secret}))
    if key == "google_calendar":
        # Google sends no body: the channel token is the secret, an expired channel is the stale case, the state header the content.
        expires = format_datetime(datetime.now(tz=UTC) + (timedelta(days=1) if age_seconds == 0 else -timedelta(seconds=age_seconds)), usegmt=True)
        headers = {
            "X-Goog-Channel-ID": "hardening-channel",
            "X-Goog-Channel-Token": secret,
            "X-Goog-Resource-State": "exists" if body is None else "not-a-state",
            "X-Goog-Resource-ID": external_id,
            "X-Goog-Message-Number": delivery_id,
            "X-Goog-Channel-Expiration": expires,
        }
        return SignedWebhook(b"", _meta(headers))
    if key == "google_sheets":
        # Drive's changes channel: no body, the channel token is the secret, an expired channel the stale case.
        expires = format_datetime(datetime.now(tz=UTC) + (timedelta(days=1) if age_seconds == 0 else -timedelta(seconds=age_seconds)), usegmt=True)
        headers = {
            "X-Goog-Channel-ID": "hardening-changes-channel",
            "X-Goog-Channel-Token": secret,
            "X-Goog-Resource-State": "change" if body is None else "not-a-state",
            "X-Goog-Resource-ID": external_id,
            "X-Goog-Message-Number": delivery_id,
            "X-Goog-Channel-Expiration": expires,
        }
        return SignedWebhook(b"" if body is None else body, _meta(headers))  # a body given rides along (size and malformed cases)
    if key == "twilio":
        from urllib.parse import parse_qsl

        from integrations.connectors.twilio import twilio_signature

        params = dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
        headers = {"X-Twilio-Signature": twilio_signature(secret, url, params), "I-Twilio-Idempotency-Token": delivery_id}
        return SignedWebhook(raw, _meta(headers), content_type="application/x-www-form-urlencoded")
    if key == "asana":
        return SignedWebhook(raw, _meta({"X-Hook-Signature": _hmac_hex(secret, raw)}))
    if key == "docusign":
        # Connect: base64 HMAC-SHA256 of the raw body per active key; a rotation sends -1 (retired key) and -2 (current).
        retired = base64.b64encode(hmac.new(b"retired-connect-key", raw, hashlib.sha256).digest()).decode()
        current = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
        return SignedWebhook(raw, _meta({"X-DocuSign-Signature-1": retired, "X-DocuSign-Signature-2": current}))
    if key == "servicenow":
        # Bastion's Business Rule convention: base64 HMAC-SHA256 of "<timestamp>.<raw body>" (GlideCertificateEncryption.generateMac).
        signature = base64.b64encode(hmac.new(secret.encode(), str(now).encode() + b"." + raw, hashlib.sha256).digest()).decode()
        return SignedWebhook(raw, _meta({"X-Bastion-Signature": signature, "X-Bastion-Timestamp": str(now)}))
    if key == "microsoft365":
        # Graph signs nothing: each notification carries the subscription's clientState, derived from the webhook secret.
        from integrations.connectors.microsoft365.subscriptions import client_state

        if body is None:
            notification = json.loads(raw)
            notification["value"][0]["clientState"] = client_state(secret)
            raw = json.dumps(notification).encode()
        return SignedWebhook(raw, _meta({}))
    if key == "intercom":
        return SignedWebhook(raw, _meta({"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()}))
    if key == "productboard":
        # Productboard signs nothing: each notification carries the Authorization value registered with the subscription.
        return SignedWebhook(raw, _meta({"Authorization": f"Bearer {secret}"}))
    raise AssertionError(f"No webhook signer for {key}: add one to tests/hardening/conftest.py.")


def _payload(key: str, external_id: str, delivery_id: str, now: int) -> bytes:
    """What each vendor really sends for one change of `external_id`."""
    if key == "sandbox_directory":
        record = {"id": external_id, "email": f"{external_id}@acme.example", "name": "Hook Person", "title": "Analyst", "active": True}
        return json.dumps({"delivery_id": delivery_id, "type": "person.updated", "occurred_at": "2030-01-01T00:00:00+00:00", "data": record}).encode()
    if key == "demo":
        return json.dumps(
            {"id": delivery_id, "type": "person.updated", "created": now, "data": {"id": external_id, "email": f"{external_id}@acme.example"}}
        ).encode()
    if key == "sandbox_actions":
        obj = {"kind": "ticket", "id": external_id, "status": "done", "key": "OPS-1"}
        return json.dumps({"event_id": delivery_id, "type": "object.status_changed", "occurred_at": now, "object": obj}).encode()
    if key == "slack":
        user = {"id": external_id, "name": "hook", "real_name": "Hook Person", "profile": {"email": f"{external_id}@acme.example"}, "updated": now}
        return json.dumps({"type": "event_callback", "event_id": delivery_id, "event_time": now, "event": {"type": "user_change", "user": user}}).encode()
    if key in ("jira", "jira_dc"):
        issue = {"id": external_id, "key": f"OPS-{external_id}", "fields": {"summary": "Hook", "status": {"name": "Done", "statusCategory": {"key": "done"}}}}
        return json.dumps({"timestamp": now * 1000, "webhookEvent": "jira:issue_created", "issue": issue}).encode()
    if key == "pagerduty":
        occurred = datetime.fromtimestamp(now, tz=UTC).isoformat().replace("+00:00", "Z")
        data = {"id": external_id, "status": "acknowledged", "title": "Hook", "urgency": "high", "html_url": "https://pd.example/i"}
        event = {"id": delivery_id, "event_type": "incident.acknowledged", "resource_type": "incident", "occurred_at": occurred, "data": data}
        return json.dumps({"event": event}).encode()
    if key == "hubspot":
        return json.dumps([{"eventId": delivery_id, "subscriptionType": "deal.deletion", "objectId": external_id, "occurredAt": now * 1000}]).encode()
    if key == "okta":
        target = [{"type": "User", "id": external_id}]
        event = {"eventType": "user.lifecycle.delete.initiated", "uuid": delivery_id, "published": "2030-01-01T00:00:00Z", "target": target}
        return json.dumps({"eventId": delivery_id, "data": {"events": [event]}}).encode()
    if key == "asana":
        created = datetime.fromtimestamp(now, tz=UTC).isoformat().replace("+00:00", "Z")
        event = {"user": {"gid": "1200000000000001", "resource_type": "user"}, "created_at": created, "action": "deleted"}
        return json.dumps({"events": [{**event, "resource": {"gid": external_id, "resource_type": "task"}}], "delivery": delivery_id}).encode()
    if key == "docusign":
        generated = datetime.fromtimestamp(now, tz=UTC).isoformat().replace("+00:00", "Z")
        summary = {"envelopeId": external_id, "status": "voided", "emailSubject": "Hook", "statusChangedDateTime": generated, "voidedReason": "Hook"}
        data = {"accountId": "8f2a6c1e-4b7d-4e0a-9c3f-2d1e5a7b9c01", "envelopeId": external_id, "envelopeSummary": summary}
        return json.dumps({"event": "envelope-voided", "apiVersion": "v2.1", "generatedDateTime": generated, "data": data}).encode()
    if key == "servicenow":
        updated = datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        record = {
            "sys_id": external_id,
            "number": "INC0019999",
            "short_description": "Hook",
            "state": "6",
            "correlation_id": delivery_id,
            "sys_updated_on": updated,
        }
        return json.dumps({"table": "incident", "operation": "update", "sys_id": external_id, "record": record}).encode()
    if key == "microsoft365":
        data = {"@odata.type": "#Microsoft.Graph.Event", "id": external_id}
        item = {"subscriptionId": delivery_id, "changeType": "deleted", "resource": f"users/amara/events/{external_id}", "resourceData": data}
        return json.dumps({"value": [{**item, "tenantId": MS_TENANT, "clientState": ""}]}).encode()
    if key == "twilio":
        return urlencode({"MessageSid": external_id, "MessageStatus": "delivered", "To": "+15005550006", "AccountSid": "AC1"}).encode()
    if key == "intercom":
        item = {"type": "contact", "id": external_id, "role": "user", "email": f"{external_id}@acme.example", "name": "Hook Person", "updated_at": now}
        return json.dumps(
            {"type": "notification_event", "id": delivery_id, "topic": "contact.user.updated", "created_at": now, "data": {"item": item}}
        ).encode()
    if key == "productboard":
        links = {"target": f"https://api.productboard.com/v2/entities/{external_id}"}
        return json.dumps({"data": {"id": external_id, "eventType": "feature.deleted", "links": links}}).encode()
    return b""


# Event handler recorder (settings.BASTION_EVENT_HANDLERS points here in the webhook suite) --------------------------------------

EVENT_CALLS: list[tuple[str, list[dict]]] = []


def record_events(integration_id: str, events: list[dict]) -> None:
    EVENT_CALLS.append((integration_id, events))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# Integrations restricted to admins (allowed_roles) ------------------------------------------------------------------------


@dataclass
class RestrictedIntegrations:
    """One admin-only integration per connector the shipped scenario fields read from, with a record per entity and a playbook."""

    integrations: dict[str, Integration]
    playbook: Any
    fields: list[tuple[str, str, str]]  # (scenario type, field key, connector key) for every field with a source


@pytest.fixture
def restricted_integrations(organization) -> RestrictedIntegrations:
    from django.utils import timezone

    from integrations.services import data_sources_ensure
    from people.models import Person, PersonIdentity
    from playbooks.models import PlaybookTemplate
    from playbooks.services import playbook_create
    from scenarios.models import Scenario, ScenarioDataModel
    from scenarios.spec import source_connectors
    from sync.models import SyncRecord

    fields: list[tuple[str, str, str]] = []
    entities: dict[str, set[str]] = {}
    for data_model in ScenarioDataModel.objects.order_by("scenario_type", "-version").distinct("scenario_type"):
        for field_def in data_model.field_definitions:
            source = field_def.get("source") or {}
            for connector_key in source_connectors(source):
                fields.append((data_model.scenario_type, field_def["key"], connector_key))
            pairs = [source] + [a for a in source.get("alternatives") or [] if isinstance(a, dict)]
            for pair in pairs:
                if pair.get("connector"):
                    entities.setdefault(pair["connector"], set()).add(pair.get("entity") or "")
    integrations = {}
    for connector_key, entity_types in sorted(entities.items()):
        integration = Integration.objects.create(
            organization=organization,
            connector_key=connector_key,
            display_name=f"Restricted {connector_key}",
            status=IntegrationStatus.CONNECTED,
            allowed_roles=["admin"],
        )
        data_sources_ensure(integration=integration)
        for entity_type in sorted(entity_types):
            data = {
                "external_id": f"{connector_key}-1",
                "name": f"Secret {connector_key} {entity_type}",
                "title": f"Secret {connector_key} {entity_type}",
                "email": f"secret.{connector_key}@acme.example",
            }
            SyncRecord.objects.create(
                organization=organization,
                integration=integration,
                entity_type=entity_type,
                external_id=data["external_id"],
                raw=data,
                data=data,
                content_hash="x",
                last_seen_at=timezone.now(),
            )
        person = Person.objects.create(organization=organization, display_name=f"Secret {connector_key}", email=f"secret.{connector_key}@acme.example")
        PersonIdentity.objects.create(
            organization=organization, person=person, integration=integration, source=connector_key, external_id=f"{connector_key}-p1"
        )
        integrations[connector_key] = integration
    template = PlaybookTemplate.objects.filter(scenario_type="crisis_management", is_active=True).order_by("name").first()
    data_model = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    scenario = Scenario.objects.create(
        organization=organization, scenario_type="crisis_management", data_model=data_model, title="Restricted", values={"title": "Restricted"}
    )
    bindings = {key: str(integration.pk) for key, integration in integrations.items()}
    playbook = playbook_create(organization=organization, scenario=scenario, template=template, integration_bindings=bindings)
    return RestrictedIntegrations(integrations, playbook, fields)
