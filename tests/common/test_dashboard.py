from django.test import Client

from integrations.models import Integration, IntegrationStatus
from people.models import Person


def test_dashboard_shows_the_organizations_figures_only(owner, organization, other_organization):
    Integration.objects.create(organization=organization, connector_key="slack", display_name="Slack", status=IntegrationStatus.CONNECTED)
    Integration.objects.create(organization=organization, connector_key="jira", display_name="Jira", status=IntegrationStatus.AUTH_FAILED)
    Integration.objects.create(organization=other_organization, connector_key="okta", display_name="Okta", status=IntegrationStatus.CONNECTED)
    Person.objects.create(organization=organization, email="a@acme.example", display_name="Ava")
    Person.objects.create(organization=other_organization, email="b@globex.example", display_name="Bo")
    client = Client()
    client.force_login(owner)
    html = client.get("/").content.decode()
    figures = html[html.index('id="dashboard-figures"') :]
    assert "<strong>1</strong> integrations connected" in figures
    assert "1 need attention" in figures
    assert "<strong>1</strong> people in the directory" in figures
    assert "Jira needs reconnecting" in html  # the banner for the broken integration
    assert 'aria-current="page">Dashboard' in html
