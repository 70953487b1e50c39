"""Stored XSS through URLs as a class: every URL Bastion stores or renders from config or a vendor is http(s), server side.

One rule (common.url_safety) is used at every border: settings are refused when saved (API, wizard, admin), links a
vendor returns (created objects, records) are dropped unless http(s), and templates render hrefs through `safe_url`.
"""

from __future__ import annotations

import pytest
from django.template import engines

from accounts.models import Role
from common.url_safety import link_fields_sanitized, safe_http_url, url_problem
from integrations.connectors.base import ActionResult
from integrations.models import Integration

HOSTILE_URLS = [
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "\x01\x02javascript:alert(1)",
    "\tjavascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "java\rscript:alert(1)",
    "jav&#x09;ascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "https:evil.example",
    "http://",
    "file:///etc/passwd",
    "https://ok.example/a\x00b",
    "http://[::1",
]
GOOD_URLS = ["https://acme.atlassian.net/browse/OPS-1", "HTTP://Example.com/a?b=c#d", "http://10.0.0.5:8080/x"]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_only_http_urls_survive(url):
    assert safe_http_url(url) == ""
    assert url_problem(url)


@pytest.mark.parametrize("url", GOOD_URLS)
def test_http_urls_are_kept(url):
    assert safe_http_url(url) == url
    assert url_problem(url) == ""


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_templates_render_hostile_links_as_nothing(url):
    template = engines["django"].from_string('{% load bastion_format %}<a href="{{ url|safe_url }}">x</a>|<a href="{{ url|http_url }}">y</a>')
    html = template.render({"url": url}).lower()
    assert html == '<a href="">x</a>|<a href="">y</a>'


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_links_a_vendor_returns_are_dropped(url):
    """What a connector reports it created (stored as StepRun.external_url and Task.url) and records' link fields."""
    assert ActionResult(external_id="OPS-1", url=url).url == ""
    assert ActionResult(external_id="OPS-1", url=GOOD_URLS[0]).url == GOOD_URLS[0]
    record = {"key": "OPS-1", "url": url, "html_url": url, "links": [{"href": url, "self_link": url}], "summary": url}
    clean = link_fields_sanitized(record)
    assert clean == {"key": "OPS-1", "url": "", "html_url": "", "links": [{"href": "", "self_link": ""}], "summary": url}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["javascript:fetch('/api/organizations/')", "java\tscript:alert(1)", "data:text/html,x", " JAVASCRIPT:x"])
def test_url_settings_are_refused_when_saved(api_for, users_by_role, organization, url):
    """The probe's Jira site_url, through the connect API, the settings API and the wizard's config step: a clear 400."""
    from integrations.services import integration_create

    api = api_for(users_by_role[Role.ADMIN])
    connect = api.post(
        "/api/integrations/connect",
        {
            "connector_key": "jira",
            "credential_type": "api_key",
            "credentials": {"email": "a@acme.example", "api_token": "t"},
            "config": {"site_url": url},
            "test": False,
        },
        format="json",
    )
    assert connect.status_code == 400, connect.content
    assert "site_url" in connect.json()["error"]["fields"]
    assert not Integration.objects.filter(connector_key="jira").exists()

    jira = integration_create(organization=organization, connector_key="jira", config={"site_url": "https://acme.atlassian.net"})
    patch = api.patch(f"/api/integrations/{jira.pk}", {"config": {"site_url": url}}, format="json")
    assert patch.status_code == 400 and patch.json()["error"]["fields"]["site_url"][0].startswith("site_url ")
    wizard = api.put(f"/api/integrations/{jira.pk}/config", {"config": {"site_url": url}}, format="json")
    assert wizard.status_code == 400 and "site_url" in wizard.json()["error"]["fields"]
    base = api.patch(f"/api/integrations/{jira.pk}", {"base_url": url}, format="json")
    assert base.status_code == 400
    jira.refresh_from_db()
    assert jira.config["site_url"] == "https://acme.atlassian.net" and jira.base_url == ""


@pytest.mark.django_db
def test_the_admin_refuses_url_settings_that_are_not_http(organization):
    from integrations.admin import IntegrationAdminForm
    from integrations.services import integration_create

    jira = integration_create(organization=organization, connector_key="jira", config={"site_url": "https://acme.atlassian.net"})
    data = {
        "organization": organization.pk,
        "connector_key": "jira",
        "display_name": "Jira",
        "status": "connected",
        "config": '{"site_url": "javascript:alert(1)"}',
        "base_url": "",
        "allowed_roles": "[]",
    }
    form = IntegrationAdminForm(data=data, instance=jira)
    assert not form.is_valid()
    assert "site_url" in str(form.errors["config"])


@pytest.mark.django_db
def test_a_stored_hostile_link_never_becomes_an_href_in_the_war_room(api_for, users_by_role, organization):
    """Rows written before the check (or by hand) still render as text: the war room builds links through the same rule."""
    from playbooks.war_room import _http

    for url in HOSTILE_URLS:
        assert _http(url) == ""
    assert _http(GOOD_URLS[0]) == GOOD_URLS[0]
