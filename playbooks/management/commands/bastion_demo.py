"""Create (or refresh) the demo: organization, admin user, sandbox integrations with synced data; print how to sign in."""

import os
import secrets
import time

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.models import Organization, Role
from accounts.services import membership_set, organization_create
from integrations.models import CredentialType, Integration
from integrations.services import integration_connect
from sync.models import ACTIVE_JOB_STATUSES, DataSyncJob
from sync.services import data_sources_ensure, sync_start

# Pre-connected so the directory, channels and incident history are there on first sign-in, and the launch form has its
# timeline (Asana), features (Productboard, Aha!), customer conversations (Intercom) and brand assets (Brandfolder).
# Jira is left for the person to connect through the marketplace's OAuth redirect.
DEMO_CONNECTIONS = ("okta", "slack", "pagerduty", "google_calendar", "email", "hubspot", "asana", "productboard", "aha", "intercom", "brandfolder")
# The sandbox stand-ins' own demo credentials and the workspace each one seeds (sandbox/declared/<vendor>.yaml).
TOKEN_CONNECTIONS = {
    "asana": ({"token": "sandbox-asana-pat"}, {"workspace": "1100000000000001", "project": "1300000000000001"}, "asana/api/1.0", "Asana"),
    "productboard": ({"token": "sandbox-productboard-token"}, {}, "productboard/v2", "Productboard"),
    "aha": ({"api_key": "sandbox-aha-api-key"}, {"product": "6100000000000000001"}, "aha/api/v1", "Aha!"),
    "intercom": ({"token": "sandbox-intercom-token", "client_secret": "sandbox-intercom-client-secret"}, {"region": "us"}, "intercom", "Intercom"),
    "brandfolder": ({"api_key": "sandbox-brandfolder-api-key"}, {"brandfolder": "bfbrand-nimbus-00001"}, "brandfolder/api/v4", "Brandfolder"),
}


class Command(BaseCommand):
    help = "Create the demo organization, admin user and sandbox integrations for the one-command demo."

    def add_arguments(self, parser):
        parser.add_argument("--no-integrations", action="store_true", help="Only create the organization and the admin user.")

    def handle(self, *args, **options):
        User = get_user_model()
        password = os.environ.get("BASTION_DEMO_PASSWORD") or secrets.token_urlsafe(9)
        admin, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@demo.bastion.local", "is_staff": True, "is_superuser": True})
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        organization = Organization.objects.filter(slug="demo").first() or organization_create(name="Demo Corp", slug="demo", owner=admin)
        membership_set(organization=organization, user=admin, role=Role.OWNER)
        if not options["no_integrations"]:
            self._connect_sandbox(organization, admin)
        self.stdout.write(self.style.SUCCESS("Bastion demo is ready."))
        self.stdout.write(f"  Sign in at {settings.BASTION_PUBLIC_URL}/accounts/login/")
        self.stdout.write(f"  username: admin   password: {password}")

    def _connect_sandbox(self, organization, admin) -> None:
        sandbox = settings.BASTION_SANDBOX_URL.rstrip("/")
        if not self._wait_for_sandbox(sandbox):
            self.stdout.write(self.style.WARNING(f"The vendor sandbox at {sandbox} did not answer; integrations were not pre-connected."))
            return
        existing = set(Integration.objects.filter(organization=organization).values_list("connector_key", flat=True))
        jobs: list[DataSyncJob] = []
        for key in DEMO_CONNECTIONS:
            if key in existing:
                continue
            spec = self._connection_spec(key, sandbox)
            integration = integration_connect(organization=organization, actor=admin, **spec)
            integration.refresh_from_db()
            self.stdout.write(f"  {integration.display_name}: {integration.get_status_display()}")
            if integration.status != "connected":
                continue
            for data_source in data_sources_ensure(integration=integration):
                jobs.append(sync_start(data_source=data_source, actor=admin))
        self._wait_for_jobs(jobs)

    def _wait_for_jobs(self, jobs: list[DataSyncJob], timeout: float = 120.0) -> None:
        """The worker runs the first syncs; say how each ended (or that it is still going) before the pages open."""
        deadline = time.monotonic() + timeout
        pending = {job.pk for job in jobs}
        while pending and time.monotonic() < deadline:
            pending = set(DataSyncJob.objects.filter(pk__in=pending, status__in=ACTIVE_JOB_STATUSES).values_list("pk", flat=True))
            if pending:
                time.sleep(0.3)
        for job in DataSyncJob.objects.filter(pk__in=[j.pk for j in jobs]).select_related("data_source__integration"):
            source = job.data_source
            self.stdout.write(
                f"    {source.integration.display_name} · {source.entity_type}: {job.records_processed} records ({job.get_status_display().lower()})"
            )

    @staticmethod
    def _wait_for_sandbox(sandbox: str, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{sandbox}/_control/health", timeout=2).ok:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.3)
        return False

    @staticmethod
    def _token(sandbox: str, vendor: str, **extra) -> str:
        response = requests.post(f"{sandbox}/_control/tokens", json={"vendor": vendor, **extra}, timeout=5)
        response.raise_for_status()
        return response.json()["token"]

    @staticmethod
    def _first_pagerduty_service(sandbox: str) -> str:
        """The service the crisis playbook pages (the sandbox's first, "Payments API")."""
        response = requests.get(
            f"{sandbox}/pagerduty/services",
            headers={"Authorization": "Token token=sandbox-pagerduty-token", "Accept": "application/vnd.pagerduty+json;version=2"},
            timeout=5,
        )
        response.raise_for_status()
        return response.json()["services"][0]["id"]

    def _connection_spec(self, key: str, sandbox: str) -> dict:
        if key in TOKEN_CONNECTIONS:
            credentials, config, path, name = TOKEN_CONNECTIONS[key]
            return {"connector_key": key, "display_name": f"{name} (sandbox)", "credentials": credentials, "config": config, "base_url": f"{sandbox}/{path}"}
        if key == "okta":
            return {
                "connector_key": "okta",
                "display_name": "Okta (sandbox)",
                "credentials": {"api_token": self._token(sandbox, "okta")},
                "base_url": f"{sandbox}/okta",
            }
        if key == "slack":
            from integrations.connectors import slack as slack_module

            scopes = list(slack_module.SCOPE_PURPOSES) + list(getattr(slack_module, "OPTIONAL_SCOPE_PURPOSES", {}))
            return {
                "connector_key": "slack",
                "display_name": "Slack (sandbox)",
                "credentials": {"access_token": self._token(sandbox, "slack", scopes=scopes)},
                "credential_type": CredentialType.OAUTH,
                "base_url": f"{sandbox}/slack/api",
            }
        if key == "pagerduty":
            return {
                "connector_key": "pagerduty",
                "display_name": "PagerDuty (sandbox)",
                "credentials": {"api_key": "sandbox-pagerduty-token"},
                # PagerDuty writes need the email of a PagerDuty user in the From header.
                "config": {"from_email": "amara.nwosu@acme.example", "service_id": self._first_pagerduty_service(sandbox)},
                "base_url": f"{sandbox}/pagerduty",
            }
        if key == "google_calendar":
            return {
                "connector_key": "google_calendar",
                "display_name": "Google Calendar (sandbox)",
                "credentials": {"access_token": "sandbox-google-calendar-token", "scope": "https://www.googleapis.com/auth/calendar"},
                "credential_type": CredentialType.OAUTH,
                "base_url": f"{sandbox}/google_calendar/calendar/v3/",
            }
        if key == "hubspot":
            return {
                "connector_key": "hubspot",
                "display_name": "HubSpot (sandbox)",
                "credentials": {"access_token": self._token(sandbox, "hubspot")},
                "base_url": f"{sandbox}/hubspot",
            }
        if key == "email":
            return {
                "connector_key": "email",
                "display_name": "Email (sandbox SMTP sink)",
                "credentials": {},
                "config": {"host": "127.0.0.1", "port": int(os.environ.get("SANDBOX_SMTP_PORT", "2525")), "from_email": "bastion@demo.bastion.local"},
            }
        raise ValueError(key)
