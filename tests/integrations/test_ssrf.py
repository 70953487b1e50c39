"""The SSRF guard: private targets refused unless allowed; metadata refused always."""

from __future__ import annotations

import pytest

from integrations.errors import UnsafeBaseUrl
from integrations.ssrf import check_url


def public(_host, _port):
    return ["93.184.216.34"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765/demo",
        "http://localhost/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://172.16.5.4/",
        "http://[::1]/",
        "http://169.254.10.10/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_private_targets_refused_when_not_allowed(url):
    with pytest.raises(UnsafeBaseUrl):
        check_url(url, allow_private=False)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765/demo", "http://10.1.2.3/", "http://localhost/"])
def test_private_targets_allowed_when_the_operator_allows_them(url):
    check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://metadata.google.internal/", "http://[fd00:ec2::254]/"])
def test_metadata_refused_even_when_private_is_allowed(url):
    with pytest.raises(UnsafeBaseUrl):
        check_url(url, allow_private=True)


def test_hostnames_are_checked_by_what_they_resolve_to():
    check_url("https://api.vendor.example/", allow_private=False, resolver=public)
    with pytest.raises(UnsafeBaseUrl, match="private"):
        check_url("https://internal.vendor.example/", allow_private=False, resolver=lambda h, p: ["93.184.216.34", "10.0.0.5"])


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "gopher://x/", "https://user:pw@example.com/"])
def test_odd_schemes_and_embedded_credentials_refused(url):
    with pytest.raises(UnsafeBaseUrl):
        check_url(url, allow_private=True, resolver=public)


def test_setting_drives_the_default(settings):
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    with pytest.raises(UnsafeBaseUrl):
        check_url("http://127.0.0.1/")
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    check_url("http://127.0.0.1/")


def test_build_connector_guards_every_call(settings, sandbox, organization, demo_token):
    """With private targets forbidden, the sandbox (loopback) is refused before any request is sent."""
    from integrations.models import Integration, IntegrationStatus
    from integrations.services import build_connector, credential_store

    integration = Integration.objects.create(
        organization=organization, connector_key="demo", display_name="Demo", base_url=f"{sandbox}/demo", status=IntegrationStatus.CONNECTED
    )
    credential_store(integration=integration, credential_type="api_key", data={"api_key": demo_token})
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    with pytest.raises(UnsafeBaseUrl):
        build_connector(integration).test_connection()
    assert integration.calls.count() == 0
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    assert build_connector(integration).test_connection().ok


def test_connect_refuses_a_private_base_url_with_a_field_error(settings, organization):
    from common.errors import ApplicationError
    from integrations.models import Integration
    from integrations.services import integration_connect

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    with pytest.raises(ApplicationError) as raised:
        integration_connect(organization=organization, connector_key="demo", credentials={"api_key": "x"}, base_url="http://127.0.0.1:9/demo")
    assert raised.value.code == "unsafe_base_url" and "base_url" in raised.value.fields
    assert not Integration.objects.exists()


# --- The client connects only to what was vetted: real sockets, a scripted resolver at the DNS boundary only.

import socket  # noqa: E402

import requests  # noqa: E402

from integrations.errors import ApiHostError  # noqa: E402
from integrations.http import HttpClient, PinnedAdapter  # noqa: E402
from integrations.ssrf import check_url_target, connect_vetted, url_guard  # noqa: E402
from tests.integrations.dns_outage import OutageDns  # noqa: E402
from tests.integrations.dns_stub import make_cert, start_server  # noqa: E402


@pytest.fixture
def dns(monkeypatch) -> OutageDns:
    fake = OutageDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def http_server():
    server = start_server()
    yield server
    server.stop()


def guarded_client(base_url: str, **kwargs) -> HttpClient:
    return HttpClient(base_url, url_guard=url_guard, timeout=(2.0, 5.0), max_retries=0, sleep=lambda _s: None, **kwargs)


def test_a_second_dns_answer_is_never_used(settings, dns, http_server):
    """The name is resolved once per connection; a rebinding answer (here: the metadata service) never reaches connect."""
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True  # the real server is on loopback
    dns.answer("api.vendor.test", ["127.0.0.1"], ["169.254.169.254"])
    client = guarded_client(http_server.url("api.vendor.test"))
    assert client.get("/people").json()["ok"] is True
    assert client.get("/people").json()["ok"] is True  # kept-alive connection: no new lookup
    assert dns.count("api.vendor.test") == 1
    assert [(s.path, s.host) for s in http_server.seen] == [("/people", f"api.vendor.test:{http_server.port}")] * 2

    # A new connection resolves again, gets the rebinding answer, and is refused before any socket opens.
    with pytest.raises(UnsafeBaseUrl, match="metadata"):
        guarded_client(http_server.url("api.vendor.test")).get("/people")
    assert dns.count("api.vendor.test") == 2
    assert len(http_server.seen) == 2


def test_a_public_name_that_resolves_to_loopback_is_refused_at_connect(settings, dns, http_server):
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    dns.answer("api.vendor.test", ["93.184.216.34", "127.0.0.1"])  # one bad answer spoils the lot
    client = guarded_client(http_server.url("api.vendor.test"))
    with pytest.raises(UnsafeBaseUrl, match="private"):
        client.get("/people")
    assert dns.count("api.vendor.test") == 1  # the guard's lookup is the connection's lookup
    assert http_server.seen == []


def test_redirect_hops_are_resolved_and_vetted_when_they_connect(settings, dns, http_server):
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    dns.answer("api.vendor.test", ["127.0.0.1"])
    dns.answer("cdn.vendor.test", ["127.0.0.1"], ["169.254.169.254"])
    dns.answer("evil.vendor.test", ["169.254.169.254"])
    client = guarded_client(http_server.url("api.vendor.test"), default_headers={"Authorization": "Bearer secret"})

    to_cdn = http_server.url("cdn.vendor.test", "/files/1")
    assert client.get("/redirect", params={"to": to_cdn}).json()["path"] == "/files/1"
    assert [(s.host.split(":")[0], s.authorization) for s in http_server.seen] == [("api.vendor.test", True), ("cdn.vendor.test", False)]

    for target in (http_server.url("evil.vendor.test", "/x"), "http://metadata.google.internal/computeMetadata/v1/"):
        with pytest.raises(UnsafeBaseUrl):
            client.get("/redirect", params={"to": target})
    assert len(http_server.seen) == 4  # two more /redirect answers; neither target was reached
    assert dns.count("evil.vendor.test") == 1 and "metadata.google.internal" not in dns.lookups  # refused by name, no lookup


def test_tls_is_verified_for_the_hostname_while_connecting_to_the_vetted_address(settings, dns, tmp_path):
    """SNI, Host and the certificate check all use the URL's hostname; the socket goes to the pinned IP."""
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    cert = make_cert(tmp_path, "api.vendor.test")  # no IP address in the certificate
    server = start_server(cert=cert)
    try:
        dns.answer("api.vendor.test", ["127.0.0.1"])
        dns.answer("other.vendor.test", ["127.0.0.1"])
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override session.verify
        session.verify = str(cert[0])
        client = guarded_client(server.url("api.vendor.test"), session=session)
        assert client.get("/people").json()["ok"] is True
        assert [(s.host, s.sni) for s in server.seen] == [(f"api.vendor.test:{server.port}", "api.vendor.test")]

        wrong_name = guarded_client(server.url("other.vendor.test"), session=session)
        with pytest.raises(ApiHostError) as raised:
            wrong_name.get("/people")
        assert isinstance(raised.value.__cause__, requests.exceptions.SSLError)
        assert len(server.seen) == 1
    finally:
        server.stop()


def test_an_adapter_mounted_over_the_pinned_one_fails_closed(settings, dns, http_server):
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    dns.answer("api.vendor.test", ["127.0.0.1"])
    client = guarded_client(http_server.url("api.vendor.test"))
    client.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
    with pytest.raises(UnsafeBaseUrl, match="does not pin"):
        client.get("/people")
    assert http_server.seen == []
    client.set_pool_size(32)  # the supported way to widen the pool keeps the pinning
    assert isinstance(client.session.get_adapter(http_server.url("api.vendor.test")), PinnedAdapter)
    assert client.get("/people").status_code == 200


def test_target_checks_need_no_dns(dns, settings):
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    assert check_url_target("https://api.vendor.test/x") == ("api.vendor.test", 443)
    for url in ("http://169.254.169.254/", "http://10.0.0.1/", "ftp://api.vendor.test/", "http://metadata/", "https://u:p@api.vendor.test/"):
        with pytest.raises(UnsafeBaseUrl):
            check_url_target(url)
    assert dns.lookups == []


def test_connect_vetted_opens_a_real_socket_only_to_vetted_addresses(dns, http_server):
    dns.answer("api.vendor.test", ["127.0.0.1"])
    sock = connect_vetted(("api.vendor.test", http_server.port), 2.0, allow_private=True)
    assert sock.getpeername() == ("127.0.0.1", http_server.port)
    sock.close()
    with pytest.raises(UnsafeBaseUrl):
        connect_vetted(("api.vendor.test", http_server.port), 2.0, allow_private=False)


# --- A name that does not resolve is a host error (retried), not an unsafe URL.


@pytest.mark.parametrize(("code", "reason"), [(socket.EAI_AGAIN, "Temporary failure in name resolution"), (socket.EAI_NONAME, "Name or service not known")])
def test_a_name_that_does_not_resolve_is_a_retryable_host_error(settings, dns, http_server, code, reason):
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    dns.fail("api.vendor.test", code)
    calls, waits = [], []
    client = HttpClient(http_server.url("api.vendor.test"), url_guard=url_guard, timeout=(2.0, 5.0), max_retries=2, recorder=calls.append, sleep=waits.append)
    with pytest.raises(ApiHostError) as raised:
        client.get("/people")
    error = raised.value
    assert not isinstance(error, UnsafeBaseUrl) and error.retryable and error.category == "transient"
    assert f"Cannot resolve the host name api.vendor.test ({reason})" in error.message and "Bastion will retry" in error.message
    assert error.vendor_code == "dns_resolution_failed" and error.path == "/people"
    assert dns.count("api.vendor.test") == 3 and len(waits) == 2  # retried inline with backoff, like any connection failure
    assert [(c.error, c.vendor_code, c.status) for c in calls] == [("ApiHostError", "dns_resolution_failed", None)] * 3
    assert http_server.seen == []
    # The resolver is back: the same client connects (to the vetted answer).
    dns.answer("api.vendor.test", ["127.0.0.1"])
    assert client.get("/people").json()["ok"] is True
    assert [s.path for s in http_server.seen] == ["/people"]


def test_a_refused_answer_stays_unsafe_and_is_not_retried(settings, dns, http_server):
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    dns.answer("api.vendor.test", ["127.0.0.1"])
    calls: list = []
    client = HttpClient(http_server.url("api.vendor.test"), url_guard=url_guard, timeout=(2.0, 5.0), max_retries=2, recorder=calls.append, sleep=calls.append)
    with pytest.raises(UnsafeBaseUrl, match="private"):
        client.get("/people")
    assert dns.count("api.vendor.test") == 1 and calls == [] and http_server.seen == []


def test_configuration_checks_tell_an_unresolvable_name_from_a_refused_one(settings, dns):
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    dns.fail("api.vendor.test", socket.EAI_AGAIN)
    with pytest.raises(ApiHostError, match="Cannot resolve the host name api.vendor.test") as raised:
        check_url("https://api.vendor.test/")
    assert not isinstance(raised.value, UnsafeBaseUrl)
    dns.answer("api.vendor.test", ["10.0.0.5"])
    with pytest.raises(UnsafeBaseUrl, match="private"):
        check_url("https://api.vendor.test/")
    with pytest.raises(socket.gaierror):  # the socket-level call keeps socket.create_connection's contract
        dns.fail("api.vendor.test", socket.EAI_NONAME)
        connect_vetted(("api.vendor.test", 443), 2.0)


def test_a_base_url_that_does_not_resolve_now_is_saved_and_the_connection_test_says_why(settings, dns, organization):
    """A resolver outage while an admin saves settings must not be reported as an unsafe URL; the connection test names it."""
    from integrations.models import Integration, IntegrationStatus
    from integrations.services import integration_connect

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    dns.fail("demo.vendor.test", socket.EAI_AGAIN)
    integration = integration_connect(organization=organization, connector_key="demo", credentials={"api_key": "x"}, base_url="https://demo.vendor.test/demo")
    integration.refresh_from_db()
    assert integration.base_url == "https://demo.vendor.test/demo" and integration.status != IntegrationStatus.AUTH_FAILED
    assert "Cannot resolve the host name demo.vendor.test (Temporary failure in name resolution)" in integration.last_error
    assert set(integration.calls.values_list("error", "vendor_code", "status")) == {("ApiHostError", "dns_resolution_failed", None)}
    # A name that resolves to a refused address is still refused when saving, and nothing is written.
    dns.answer("internal.vendor.test", ["10.0.0.5"])
    from common.errors import ApplicationError

    with pytest.raises(ApplicationError) as refused:
        integration_connect(organization=organization, connector_key="demo", credentials={"api_key": "x"}, base_url="https://internal.vendor.test/demo")
    assert refused.value.code == "unsafe_base_url"
    assert Integration.objects.count() == 1
