"""SSRF as a class: every outbound transport (HTTP, LDAP, SMTP, anything added later) goes through one guard, at save and at connect.

The connectors are enumerated from the registry, and the code base is scanned for calls that open sockets, so a new
connector or transport that skips `integrations.ssrf.vet_outbound` fails here. A listener on loopback stands in for an
internal service: it answers with a recognisable banner, which must never reach a person.
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts.models import Role
from common.errors import ApplicationError
from integrations.connectors.base import BaseConnector
from integrations.models import CredentialType, Integration, IntegrationStatus
from integrations.registry import connector_classes
from integrations.services import AUTH_METHOD_CREDENTIAL_TYPES, build_connector, credential_store, integration_create, integration_update

ROOT = Path(__file__).resolve().parents[2]
HTTP_METHODS = (b"GET ", b"POST", b"PUT ", b"HEAD", b"PATC", b"DELE", b"OPTI")


class BannerServer:
    """An internal service on loopback: an SSH-style banner to protocols that wait for the server, HTTP 401 with the banner to HTTP."""

    def __init__(self) -> None:
        self.banner = f"INTERNAL-BANNER-{secrets.token_hex(6)}"
        self.accepted = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(32)
        self.port = self._sock.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        banner = self.banner.encode()
        with conn:
            conn.settimeout(0.3)
            try:
                first = conn.recv(4096)
            except OSError:
                first = b""  # SMTP waits for the server to speak first
            try:
                conn.settimeout(5)
                if first[:4] in HTTP_METHODS:
                    body = b"service: " + banner
                    head = f"HTTP/1.1 401 {self.banner}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                    conn.sendall(head.encode() + body)
                else:
                    conn.sendall(b"SSH-2.0-OpenSSH_9.6 " + banner + b"\r\n")
                    conn.recv(4096)
            except OSError:
                pass

    def close(self) -> None:
        self._closed.set()
        self._sock.close()


@pytest.fixture
def banner_server() -> Iterator[BannerServer]:
    server = BannerServer()
    yield server
    server.close()


def _pointed_at(connector_class: type[BaseConnector], port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Config and credentials whose every host-, port- and URL-shaped field points at the listener."""

    def value(name: str, default: Any) -> Any:
        if name == "host":
            return "127.0.0.1"
        if name == "port":
            return port
        if name.lower().endswith("url"):
            scheme = connector_class.url_config_schemes.get(name, ("http",))[0]
            return f"{scheme}://127.0.0.1:{port}"
        return default

    manifest = connector_class.manifest
    config = {f.name: value(f.name, None) for f in manifest.config_fields}
    config = {k: v for k, v in config.items() if v is not None} | {"start_tls": False, "allow_plain": True, "timeout": 5}
    credentials = {f.name: value(f.name, f"x-{f.name}") for f in manifest.credential_fields}
    return config, credentials


def _integration_behind_the_guard(organization, key: str, connector_class: type[BaseConnector], port: int) -> Integration:
    """A row as an older release or a dev server (private targets allowed) could have saved it: written without the save checks."""
    config, credentials = _pointed_at(connector_class, port)
    integration = Integration.objects.create(
        organization=organization,
        connector_key=key,
        display_name=f"Internal {key}",
        base_url=f"http://127.0.0.1:{port}",
        config=config,
        status=IntegrationStatus.CONNECTED,
    )
    credential_type = next((AUTH_METHOD_CREDENTIAL_TYPES[m] for m in connector_class.manifest.auth_methods if m in AUTH_METHOD_CREDENTIAL_TYPES), None)
    if credential_type and credential_type != CredentialType.OAUTH:
        credential_store(integration=integration, credential_type=credential_type, data=credentials)
    elif credential_type:
        credential_store(integration=integration, credential_type=credential_type, data={**credentials, "access_token": "x-token", "token_type": "Bearer"})
    return integration


def _try_connection(integration: Integration) -> tuple[bool, str]:
    try:
        result = build_connector(integration).test_connection()
    except Exception as error:  # noqa: BLE001 - any failure is fine here: what counts is what reached the listener
        return False, f"{type(error).__name__}: {error}"
    return bool(result.ok), repr(result)


@pytest.mark.django_db
def test_every_connector_is_refused_private_targets_at_connect(settings, organization, banner_server):
    """Production refuses private targets: no connector's connection test reaches the internal listener."""
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    outcomes = {}
    for key, connector_class in sorted(connector_classes().items()):
        integration = _integration_behind_the_guard(organization, key, connector_class, banner_server.port)
        before = banner_server.accepted
        ok, detail = _try_connection(integration)
        outcomes[key] = detail
        assert not ok, f"{key} reported a working connection to an internal address: {detail}"
        assert banner_server.accepted == before, f"{key} opened a connection to an internal address: {detail}"
        assert banner_server.banner not in detail
    assert {"email", "ldap", "demo", "jira", "slack"} <= set(outcomes)


@pytest.mark.django_db
def test_the_listener_is_reached_when_private_targets_are_allowed(settings, organization, banner_server):
    """The other side of the test above (so it cannot pass by accident): with private targets allowed (the demo default),
    SMTP, LDAP and HTTP all reach the listener, and its banner still never shows in what a person reads."""
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    classes = connector_classes()
    for key in ("email", "ldap", "demo", "slack"):
        integration = _integration_behind_the_guard(organization, key, classes[key], banner_server.port)
        before = banner_server.accepted
        ok, detail = _try_connection(integration)
        assert not ok
        assert banner_server.accepted > before, f"{key} did not reach the listener: {detail}"
        assert banner_server.banner not in detail, f"{key} echoed the foreign banner: {detail}"


@pytest.mark.django_db
def test_connection_test_answers_never_carry_a_foreign_banner(settings, organization, users_by_role, api_for, banner_server):
    """Through the API (POST /api/integrations/<id>/test) and the audit trail: fixed messages; the banner is only logged."""
    from accounts.models import AuditEvent

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    api = api_for(users_by_role[Role.ADMIN])
    classes = connector_classes()
    for key in ("email", "ldap", "demo"):
        integration = _integration_behind_the_guard(organization, key, classes[key], banner_server.port)
        response = api.post(f"/api/integrations/{integration.pk}/test", {}, format="json")
        assert response.status_code < 500
        assert banner_server.banner not in response.content.decode(), f"{key}: {response.content[:300]!r}"
        integration.refresh_from_db()
        assert banner_server.banner not in (integration.last_error or "")
    assert not [event for event in AuditEvent.objects.all() if banner_server.banner in str(event.changes)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("connector_key", "config", "field"),
    [
        ("email", {"host": "127.0.0.1", "port": 25, "from_email": "a@acme.example"}, "host"),
        ("email", {"host": "10.1.2.3", "port": 22, "from_email": "a@acme.example"}, "host"),
        ("email", {"host": "[::1]", "port": 587, "from_email": "a@acme.example"}, "host"),
        ("email", {"host": "localhost", "port": 25, "use_ssl": True, "from_email": "a@acme.example"}, "host"),
        ("ldap", {"server_url": "ldap://127.0.0.1:389", "base_dn": "dc=acme"}, "server_url"),
        ("ldap", {"server_url": "ldaps://192.168.1.10", "base_dn": "dc=acme"}, "server_url"),
        ("entra", {"tenant_id": "t", "login_base_url": "http://127.0.0.1:9000"}, "login_base_url"),
    ],
)
def test_private_hosts_in_settings_are_refused_when_saved(settings, organization, connector_key, config, field):
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    with pytest.raises(ApplicationError) as caught:
        integration_create(organization=organization, connector_key=connector_key, config=config)
    assert caught.value.status_code == 400 and field in caught.value.fields, caught.value.fields
    assert not Integration.objects.filter(organization=organization).exists()
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True  # the demo default: an internal relay is allowed on purpose
    integration = integration_create(organization=organization, connector_key=connector_key, config=config)
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    with pytest.raises(ApplicationError):
        integration_update(integration=integration, config={**config, "from_email": "b@acme.example"})


@pytest.mark.django_db
def test_metadata_hosts_are_refused_even_in_the_demo(settings, organization):
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    for config in ({"host": "169.254.169.254", "port": 80}, {"host": "metadata.google.internal", "port": 25}):
        with pytest.raises(ApplicationError) as caught:
            integration_create(organization=organization, connector_key="email", config=config)
        assert "metadata" in caught.value.message


@pytest.mark.django_db
def test_settings_api_and_admin_refuse_an_internal_smtp_relay(settings, organization, users_by_role, api_for, client):
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    integration = integration_create(organization=organization, connector_key="email", config={"host": "smtp.acme.example", "port": 587})
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    api = api_for(users_by_role[Role.ADMIN])
    response = api.patch(f"/api/integrations/{integration.pk}", {"config": {"host": "127.0.0.1", "port": 22}}, format="json")
    assert response.status_code == 400, response.content
    assert "host" in response.json()["error"]["fields"]
    integration.refresh_from_db()
    assert integration.config["host"] == "smtp.acme.example"

    from integrations.admin import IntegrationAdminForm

    data = {"organization": organization.pk, "connector_key": "email", "display_name": "Mail", "status": "connected", "config": '{"host": "127.0.0.1"}'}
    form = IntegrationAdminForm(data=data, instance=integration)
    assert not form.is_valid()
    assert "config" in form.errors


def test_vet_outbound_is_the_one_guard_of_every_transport(settings):
    from integrations.errors import UnsafeBaseUrl
    from integrations.ssrf import TRANSPORT_PORTS, vet_outbound

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    assert set(TRANSPORT_PORTS) == {"http", "https", "ldap", "ldaps", "smtp", "smtps"}
    for scheme in TRANSPORT_PORTS:
        with pytest.raises(UnsafeBaseUrl):
            vet_outbound("127.0.0.1", TRANSPORT_PORTS[scheme], scheme)
    for bad in (("127.0.0.1", 25, "gopher"), ("example.com", 0, "smtp"), ("example.com", 70000, "smtp")):
        with pytest.raises(UnsafeBaseUrl):
            vet_outbound(*bad)


# Calls that open a network connection. Each place that makes one is listed with why it is safe; a new one fails this test
# until it goes through integrations.ssrf (vet_outbound / connect_vetted / the pinned HTTP adapter) and is listed here.
SOCKET_CALLS = {
    "socket": re.compile(r"\bsocket\.(?:socket|create_connection|create_server)\("),
    "smtplib": re.compile(r"\bsmtplib\.(?:SMTP|SMTP_SSL|LMTP)\b"),
    "ldap3": re.compile(r"\bldap3\.(?:Server|Connection)\("),
    "requests": re.compile(r"\brequests\.(?:get|post|put|patch|delete|head|options|request|Session)\("),
    "urllib3": re.compile(r"\b(?:PoolManager|HTTPConnectionPool|HTTPSConnectionPool|connection_from_url)\b"),
    "stdlib http": re.compile(r"\b(?:urllib\.request|urlopen|http\.client\.HTTPS?Connection|ftplib|telnetlib|imaplib|poplib|asyncio\.open_connection)\b"),
    "other clients": re.compile(r"^\s*(?:import|from)\s+(?:httpx|aiohttp|pycurl|paramiko|websocket)\b", re.M),
    "django mail": re.compile(r"\bget_connection\("),
}
ALLOWED_SOCKET_CALLS = {
    ("integrations/ssrf.py", "socket"): "connect_vetted: the guard's own socket, to an address vet_outbound returned",
    ("integrations/http.py", "requests"): "HttpClient's session: every connection through the pinned adapter (connect_vetted)",
    ("integrations/http.py", "urllib3"): "name-resolution errors read from urllib3's exceptions (no connection opened here)",
    ("integrations/pinning.py", "requests"): "the pinned transport adapter HttpClient mounts (connections only to vetted addresses)",
    ("integrations/pinning.py", "urllib3"): "the pinned pool manager behind that adapter",
    ("integrations/connectors/email/smtp.py", "smtplib"): "_VettedSMTP / _VettedSMTPSSL: sockets from connect_vetted",
    ("integrations/connectors/ldap/connection.py", "ldap3"): "ldap3.Connection over _PinnedServer, whose addresses vet_outbound returned",
    ("integrations/connectors/entra/client.py", "requests"): "token calls reuse the HttpClient's pinned session (a fresh session only outside Bastion)",
    ("playbooks/management/commands/bastion_demo.py", "requests"): "the demo command talks to the local sandbox it started",
    ("bastion_site/embedded.py", "socket"): "probes a free local port for the embedded PostgreSQL/Redis",
}
PROJECT_PACKAGES = ("accounts", "common", "integrations", "people", "sync", "scenarios", "forms_engine", "playbooks", "data_rights", "bastion_site")


def test_every_socket_opening_call_goes_through_the_guard():
    found: dict[tuple[str, str], int] = {}
    for package in PROJECT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            for name, pattern in SOCKET_CALLS.items():
                hits = len(pattern.findall(text))
                if hits:
                    found[(str(path.relative_to(ROOT)), name)] = hits
    unlisted = sorted(set(found) - set(ALLOWED_SOCKET_CALLS))
    assert not unlisted, "Outbound connections that do not go through integrations.ssrf.vet_outbound:\n" + "\n".join(f"{p}: {n}" for p, n in unlisted)
    assert ("integrations/connectors/email/smtp.py", "smtplib") in found and ("integrations/connectors/ldap/connection.py", "ldap3") in found
