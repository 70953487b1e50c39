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
