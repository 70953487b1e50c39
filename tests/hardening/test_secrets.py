"""Secrets under scrutiny: connect every connector with recognisable secrets, use them in every way, then look everywhere.

Every installed connector is connected to its stand-in (or to a real SMTP / slapd server) with credentials whose values
are recognisable (`SEKRET-<vendor>-…`, or the vendor-issued key material where a vendor chooses it). The test then runs
connection tests, a sync per integration, failing calls (5xx, revoked tokens), webhooks with bad signatures and a playbook
activation, and searches the logs, the audit trail, API responses, pages, admin pages, job logs, webhook deliveries,
outgoing mail and every column of every table for those values. It must find none.
"""

from __future__ import annotations

import json
import re

import pytest
from django.apps import apps
from django.contrib.admin import site as admin_site
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from common.fields import EncryptedJSONField
from integrations.models import DataSource, IntegrationCredential
from integrations.registry import connector_classes
from integrations.services import integration_test, webhook_secret_reveal
from sync import services as sync_services
from sync.models import DataSyncJob, JobStatus, SyncJobLog, WebhookDelivery
from tests.hardening.conftest import Connected, set_faults
from tests.hardening.tenant_objects import PROJECT_APPS, routes

pytestmark = pytest.mark.django_db

# Every model of these apps is walked column by column (django_celery_beat: schedules carry task arguments).
SCANNED_APPS = (*PROJECT_APPS, "common", "django_celery_beat")
SKIPPED_ROUTE_PREFIXES = ("admin/", "accounts/", "static/", "api/webhooks/", "api/schema/", "api/docs/")
# Vendors whose stand-in lives in the sandbox (fault knobs apply); email and ldap talk to real local servers.
NOT_IN_SANDBOX = {"email", "ldap"}
# The sandbox runs in this process: its HTTP server's access log is the vendor's side of the wire, not Bastion's.
VENDOR_SIDE_LOGGERS = ("werkzeug", "sandbox")
# Admin change pages opened for every row (the others: a few rows each, to stay fast).
ADMIN_EVERY_ROW = {"integrations.Integration", "integrations.IntegrationCredential", "integrations.DataSource", "sync.DataSyncJob"}


def leaks(secrets: dict[str, str], haystack: str, where: str) -> list[str]:
    """Every (secret owner, location) pair where a secret value occurs in `haystack`."""
    return [f"{owner}'s secret {value[:24]}… found in {where}" for value, owner in secrets.items() if value in haystack]


def _ids_for(route, model_rows: dict[type, list]) -> list[str]:
    cls = getattr(route.callback, "cls", None)
    model = getattr(getattr(cls, "queryset", None), "model", None)
    by_param = {"playbook_id": "playbooks.Playbook", "run_id": "playbooks.PlaybookRun", "person_id": "people.Person"}
    for param in route.params:
        if param in by_param:
            model = apps.get_model(by_param[param])
    if model is None and route.pattern.startswith("integrations/status/jobs/"):
        model = DataSyncJob
    elif model is None and route.pattern.startswith("integrations/status/refresh/"):
        model = DataSource
    elif model is None and route.pattern.startswith("integrations/"):
        model = apps.get_model("integrations.Integration")
    elif model is None and route.pattern.startswith("people/"):
        model = apps.get_model("people.Person")
    elif model is None and route.pattern.startswith("scenarios/"):
        model = apps.get_model("scenarios.Scenario")
    rows = model_rows.get(model) if model is not None else None
    if rows is None:
        rows = [r for rs in model_rows.values() for r in rs[:1]]
    return [str(r.pk) for r in rows]


def _fill(pattern: str, value: str) -> str:
    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name in ("scenario_type",):
            return "crisis_management"
        if name == "field_key":
            return "stakeholders"
        if name == "connector_key":
            return "slack"
        return value

    return "/" + re.sub(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>", replace, pattern)


def fetch_everything_as_owner(api, pages: Client, model_rows: dict[type, list]) -> dict[str, str]:
    """GET every API route and page of the project (ids filled with this organization's rows); path → body."""
    bodies: dict[str, str] = {}
    for route in routes():
        if route.pattern.startswith(SKIPPED_ROUTE_PREFIXES) or "<format>" in route.pattern or "drf_format_suffix" in route.pattern:
            continue
        client = api if route.pattern.startswith("api/") else pages
        values = _ids_for(route, model_rows) if route.params else [""]
        for value in values:
            path = _fill(route.pattern, value)
            response = client.get(path)
            assert response.status_code < 500, f"GET {path} answered {response.status_code}"
            body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
            bodies[f"GET {path} ({response.status_code})"] = body.decode(errors="replace")
    return bodies


def fetch_admin(admin_client) -> dict[str, str]:
    """Every project model's admin changelist and change pages (every row of the credential-bearing models, a few of the rest)."""
    bodies: dict[str, str] = {}
    for model in admin_site._registry:
        if model._meta.app_label not in SCANNED_APPS:
            continue
        info = (model._meta.app_label, model._meta.model_name)
        changelist = reverse("admin:{}_{}_changelist".format(*info))
        response = admin_client.get(changelist)
        assert response.status_code == 200, f"{changelist} answered {response.status_code}"
        bodies[f"admin {changelist}"] = response.content.decode(errors="replace")
        named = model._meta.label in ADMIN_EVERY_ROW
        for row in model._default_manager.all()[: None if named else 3]:
            page = reverse("admin:{}_{}_change".format(*info), args=[row.pk])
            response = admin_client.get(page)
            assert response.status_code == 200, f"{page} answered {response.status_code}"
            bodies[f"admin {page}"] = response.content.decode(errors="replace")
    return bodies


def database_columns() -> tuple[dict[str, str], list[str]]:
    """Every plaintext column of every project model (text, JSON, anything) → one string per table; and encrypted-column problems."""
    texts: dict[str, str] = {}
    problems: list[str] = []
    for model in apps.get_models():
        if model._meta.app_label not in SCANNED_APPS or model._meta.proxy:
            continue
        fields = model._meta.concrete_fields
        plain = [f.attname for f in fields if not isinstance(f, EncryptedJSONField)]
        texts[model._meta.db_table] = "\n".join(json.dumps(row, default=str) for row in model._default_manager.values_list(*plain))
        for encrypted in (f for f in fields if isinstance(f, EncryptedJSONField)):
            for pk, token in model._default_manager.values_list("pk", encrypted.attname):
                if token is not None and not str(token).startswith("v1:"):
                    problems.append(f"{model._meta.label}.{encrypted.name} of {pk} is not ciphertext: {str(token)[:40]}")
    return texts, problems


def whole_database_rows() -> str:
    """Every row of every table in the database as PostgreSQL renders it (covers tables no model knows)."""
    if connection.vendor != "postgresql":
        return ""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT t::text FROM "{table}" AS t')  # noqa: S608 - table names come from the introspection
            chunks.extend(f"{table}: {row[0]}" for row in cursor.fetchall())
    return "\n".join(chunks)


def sandbox_issued_tokens() -> dict[str, str]:
    """Tokens the vendor stand-ins minted during the test (OAuth access tokens from client credentials and JWT grants)."""
    from sandbox.state import STORE

    with STORE.lock:
        return {token: f"{info['vendor']} (sandbox-issued)" for token, info in STORE.tokens.items() if len(token) >= 16}


def first_data_source(item: Connected) -> DataSource | None:
    """The data source of the connector's first declared entity (its main stream)."""
    entities = connector_classes()[item.key].manifest.entities
    return DataSource.objects.filter(integration=item.integration, entity_type=entities[0].key).first() if entities else None


def _run(capture, function, *args, **kwargs):
    with capture(execute=True):
        return function(*args, **kwargs)


def test_no_secret_is_logged_audited_shown_or_stored_in_plaintext(
    connect_all, organization, owner, api, admin_client, sandbox, log_capture, settings, django_capture_on_commit_callbacks, capfd
):
    settings.BASTION_SYNC_HTTP_RETRIES = 0
    settings.BASTION_SYNC_RETRY_BASE_SECONDS = 0
    settings.BASTION_SYNC_MAX_ATTEMPTS = 1
    capture = django_capture_on_commit_callbacks
    connected: dict[str, Connected] = _run(capture, connect_all, organization, actor=owner)
    assert set(connected) == set(connector_classes())
    seeded_sandbox_tokens = set(sandbox_issued_tokens())

    # Use every credential: connection tests, a sync of one data source per integration, live API reads.
    outcomes: dict[str, str] = {}
    for key, item in connected.items():
        assert integration_test(integration=item.integration, actor=owner).ok, f"{key}: connection test failed"
        source = first_data_source(item)
        if source is None:
            continue
        job = _run(capture, sync_services.sync_start, data_source=source, actor=owner)
        job.refresh_from_db()
        outcomes[key] = job.status
        response = api.post(f"/api/data-sources/{source.pk}/query", {"limit": 2}, format="json")
        assert response.status_code < 500, f"{key}: live query answered {response.status_code}"
    assert outcomes and all(status == JobStatus.SUCCEEDED for status in outcomes.values()), outcomes

    # A playbook activation acting through the sandbox action target with its secret token.
    run = _activate_crisis_playbook(organization, owner, connected["sandbox_actions"], capture)
    assert run.step_runs.filter(status="succeeded").exists(), "the playbook acted through the connected integration"

    # Failing calls: the vendor answering 503 (outage knob) (job fails, error logged), then a revoked credential (auth failure, admins mailed).
    failing = [key for key in outcomes if key not in NOT_IN_SANDBOX]
    for key in failing:
        source = first_data_source(connected[key])
        set_faults(sandbox, key, down=True)
        job = _run(capture, sync_services.sync_start, data_source=source, actor=owner, full_refresh=True)
        set_faults(sandbox, key, down=False)
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED and job.error_log, f"{key}: the injected 5xx did not fail the job ({job.status})"
    for key, item in connected.items():
        if key in NOT_IN_SANDBOX:
            continue
        set_faults(sandbox, key, revoked=True)
        result = api.post(f"/api/integrations/{item.integration.pk}/test", {}, format="json")
        assert result.status_code < 500
        set_faults(sandbox, key, error_next=0, revoked=False)
    assert mail.outbox, "auth failures alert the organization's admins by mail"

    # Webhooks with bad signatures (every vendor's signature headers, wrong values): rejected, nothing stored.
    for key, item in connected.items():
        if not item.webhook_secret:
            continue
        response = api.post(
            f"/api/webhooks/{item.integration.pk}",
            data=json.dumps({"id": "evt-1", "type": "person.updated", "data": {"id": "x"}, "timestamp": 1}),
            content_type="application/json",
            HTTP_X_DIRECTORY_SIGNATURE="v1=" + "0" * 64,
            HTTP_X_DIRECTORY_TIMESTAMP="1",
            HTTP_X_DEMO_SIGNATURE="sha256=" + "0" * 64,
            HTTP_X_DEMO_TIMESTAMP="1",
            HTTP_X_SANDBOX_SIGNATURE="v1=" + "0" * 64,
            HTTP_X_SANDBOX_TIMESTAMP="1",
            HTTP_X_SLACK_SIGNATURE="v0=" + "0" * 64,
            HTTP_X_SLACK_REQUEST_TIMESTAMP="1",
            HTTP_X_HUB_SIGNATURE="sha256=" + "0" * 64,
            HTTP_X_PAGERDUTY_SIGNATURE="v1=" + "0" * 64,
            HTTP_X_HUBSPOT_SIGNATURE_V3="AAAA",
            HTTP_X_HUBSPOT_REQUEST_TIMESTAMP="1",
            HTTP_AUTHORIZATION="not-the-secret",
            HTTP_X_GOOG_CHANNEL_ID="c",
            HTTP_X_GOOG_CHANNEL_TOKEN="not-the-secret",
            HTTP_X_GOOG_RESOURCE_STATE="exists",
            HTTP_X_TWILIO_SIGNATURE="AAAA",
        )
        assert response.status_code in (400, 401), f"{key}: bad signature answered {response.status_code}"
    assert not WebhookDelivery.objects.exists()

    # The webhook secret is shown once (to paste into the vendor); a person has seen it, so from now on it must never show.
    # A vendor that signs with the integration's own credential (Twilio's auth token) has no separate secret: nothing is
    # ever revealed for it, not even once.
    for key, item in connected.items():
        if item.webhook_secret and connector_classes()[key].manifest.webhook and connector_classes()[key].manifest.webhook.key_field:
            assert webhook_secret_reveal(integration=item.integration, actor=owner) is None
        elif item.webhook_secret:
            assert webhook_secret_reveal(integration=item.integration, actor=owner) == item.webhook_secret
            assert webhook_secret_reveal(integration=item.integration, actor=owner) is None

    # Now look everywhere.
    secrets: dict[str, str] = {}
    for key, item in connected.items():
        secrets.update({value: key for value in item.secrets})
    secrets.update({t: owner for t, owner in sandbox_issued_tokens().items() if t not in seeded_sandbox_tokens})
    assert len(secrets) >= len(connected)

    found: list[str] = []
    for record, text in zip(log_capture.records, log_capture.texts, strict=True):
        if not record.name.startswith(VENDOR_SIDE_LOGGERS):
            found += leaks(secrets, text, f"log record: {text[:300]}")
    out, err = capfd.readouterr()
    printed = "\n".join(line for line in (out + err).splitlines() if not any(f" {name}" in line for name in VENDOR_SIDE_LOGGERS))
    found += leaks(secrets, printed, "stdout/stderr")
    for event in AuditEvent.objects.all():
        found += leaks(secrets, f"{event.action} {event.actor_label} {event.target_type} {json.dumps(event.changes, default=str)}", f"audit {event.action}")
    for message in mail.outbox:
        found += leaks(secrets, f"{message.subject}\n{message.body}", f"mail '{message.subject}'")
    for job in DataSyncJob.objects.all():
        found += leaks(secrets, json.dumps([job.error_log, job.metadata, job.last_error], default=str), f"job {job.pk} error_log/metadata")
    for line in SyncJobLog.objects.all():
        found += leaks(secrets, f"{line.message} {json.dumps(line.data, default=str)}", f"job log line {line.event}")
    for delivery in WebhookDelivery.objects.all():
        found += leaks(secrets, json.dumps([delivery.events, delivery.result, delivery.last_error], default=str), "webhook delivery")

    model_rows = _model_rows(organization)
    pages = Client()
    pages.force_login(owner)
    bodies = fetch_everything_as_owner(api, pages, model_rows)
    assert any("/api/integrations" in path for path in bodies) and any("/api/sync-jobs/" in path and "/log/" in path for path in bodies)
    for where, body in bodies.items():
        found += leaks(secrets, body, where)
    admin_bodies = fetch_admin(admin_client)
    assert any("integrationcredential" in where for where in admin_bodies)
    for where, body in admin_bodies.items():
        found += leaks(secrets, body, where)

    columns, not_ciphertext = database_columns()
    for table, text in columns.items():
        found += leaks(secrets, text, f"table {table}")
    found += leaks(secrets, whole_database_rows(), "a database row")

    assert not not_ciphertext, not_ciphertext
    credentials = IntegrationCredential.objects.filter(organization=organization)
    assert credentials.count() >= len(connected)
    for credential in credentials:
        token = IntegrationCredential._meta.get_field("data").ciphertext(credential)
        assert token.startswith("v1:") and not any(value in token for value in secrets)
    assert not found, "Secrets leaked:\n" + "\n".join(sorted(set(found)))


def _model_rows(organization) -> dict[type, list]:
    """This organization's rows of every tenant model (capped), keyed by model."""
    rows: dict[type, list] = {}
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        field_names = {f.name for f in model._meta.concrete_fields}
        if "organization" in field_names:
            queryset = model._default_manager.filter(organization=organization)
        elif model._meta.label == "accounts.Organization":
            queryset = model._default_manager.filter(pk=organization.pk)
        else:
            continue
        limit = 40 if model._meta.label in ("integrations.Integration", "integrations.DataSource", "sync.DataSyncJob") else 5
        rows[model] = list(queryset[:limit])
    return rows


def _activate_crisis_playbook(organization, owner, actions: Connected, capture):
    from playbooks.models import PlaybookTemplate
    from playbooks.services import playbook_activate, playbook_create
    from scenarios.models import Scenario, ScenarioDataModel
    from tests.playbooks.conftest import CRISIS_CONNECTORS, crisis_values

    values = crisis_values()
    scenario = Scenario.objects.create(
        organization=organization,
        data_model=ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first(),
        scenario_type="crisis_management",
        title=values["title"],
        values=values,
    )
    playbook = playbook_create(
        organization=organization,
        scenario=scenario,
        template=PlaybookTemplate.objects.get(scenario_type="crisis_management", name="Crisis response"),
        integration_bindings={key: str(actions.integration.pk) for key in CRISIS_CONNECTORS},
        actor=owner,
    )
    run, created = _run(capture, playbook_activate, playbook=playbook, actor=owner)
    assert created
    run.refresh_from_db()
    return run
