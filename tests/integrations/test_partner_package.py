"""A partner connector installed with `pip install` (bastion.connectors entry point) is complete: catalog, error mapping,
field limits, tracked tasks, undo and webhooks, through Bastion's real engine over real HTTP, with nothing of it in Bastion."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import itertools
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from accounts.models import Role
from integrations import registry
from integrations.errors import ApiBadRequest, ApiQuotaExhausted, ApiRateLimited
from integrations.models import CredentialType, IntegrationStatus
from integrations.services import credential_store, integration_connect, shared_connector
from playbooks.models import PlaybookStepTemplate, PlaybookTemplate, RunStatus, StepStatus, Task
from playbooks.services import playbook_activate, playbook_create, playbook_run_cancel
from scenarios.models import Scenario, ScenarioDataModel
from tests.playbooks.conftest import crisis_values

PACKAGE = Path(__file__).parent / "partner_pkg"
API_KEY = "w-123"
WEBHOOK_SECRET = "whsec-widgets-test"
LONG_TITLE = "DB outage\nin eu-west: the primary cluster is down, replicas lagging"


@pytest.fixture(scope="module")
def pip_installed(tmp_path_factory) -> Path:
    """`pip install` the package source into a throw-away target (no network, no build isolation): a real wheel install."""
    target = tmp_path_factory.mktemp("partner-site-packages")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(PACKAGE)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return target


@pytest.fixture
def installed_partner_package(pip_installed):
    sys.path.insert(0, str(pip_installed))
    importlib.invalidate_caches()
    registry.reload_catalog()
    yield pip_installed
    sys.path.remove(str(pip_installed))
    for name in [n for n in sys.modules if n == "bastion_partner_widgets" or n.startswith("bastion_partner_widgets.")]:
        del sys.modules[name]
    registry.reload_catalog()


class WidgetsApi:
    """Widgets Inc.'s API, as small as the connector needs, on a loopback port (real HTTP)."""

    def __init__(self) -> None:
        self.tickets: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.faults: list[tuple[int, dict[str, Any], dict[str, str]]] = []  # answers for the next calls, in order
        self._ids = itertools.count(1)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                url = urlsplit(self.path)
                api.requests.append({"method": self.command, "path": url.path, "headers": dict(self.headers), "json": body})
                if self.headers.get("Authorization") != f"Widgets {API_KEY}":
                    return self._answer(401, {"fault": {"kind": "auth", "reason": "unknown API key"}})
                if api.faults and self.command == "POST":
                    status, fault, headers = api.faults.pop(0)
                    return self._answer(status, {"fault": fault}, headers)
                self._answer(*api.route(self.command, url.path, parse_qs(url.query), body, self.headers))

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any, headers: Any) -> tuple[int, Any]:
        if (method, path) == ("GET", "/v1/me"):
            return 200, {"account": "acme-widgets"}
        if (method, path) == ("POST", "/v1/tickets"):
            key = headers.get("Widgets-Idempotency-Key") or ""
            if key in self.by_key:
                return 200, {"ticket": self.tickets[self.by_key[key]]}
            ticket_id = f"T-{next(self._ids)}"
            owner = body.get("owner") or ""
            self.tickets[ticket_id] = {"id": ticket_id, "title": body["title"], "owner": owner, "state": "open", "link": f"{self.url}/t/{ticket_id}"}
            self.by_key[key] = ticket_id
            return 201, {"ticket": self.tickets[ticket_id]}
        if method == "GET" and path == "/v1/tickets":
            ids = (query.get("ids") or [""])[0].split(",")
            return 200, {"tickets": [self.tickets[i] for i in ids if i in self.tickets]}
        if method == "POST" and path.startswith("/v1/tickets/") and path.endswith("/withdraw"):
            ticket = self.tickets.get(path.split("/")[3])
            if ticket is None:
                return 404, {"fault": {"kind": "missing", "reason": "no such ticket"}}
            ticket["state"] = "withdrawn"
            return 200, {"ticket": ticket}
        return 404, {"fault": {"kind": "missing", "reason": f"no route {method} {path}"}}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def widgets_api():
    api = WidgetsApi()
    yield api
    api.stop()


@pytest.fixture
def widgets_integration(installed_partner_package, organization, widgets_api):
    integration = integration_connect(organization=organization, connector_key="partner_widgets", credentials={"api_key": API_KEY}, base_url=widgets_api.url)
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    credential_store(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": WEBHOOK_SECRET})
    return integration


@pytest.fixture
def widgets_playbook(organization, owner, widgets_integration):
    """A playbook whose only step files a Widgets ticket: the template names the partner's connector and action, nothing else."""
    template = PlaybookTemplate.objects.create(scenario_type="crisis_management", name="Widgets escalation")
    PlaybookStepTemplate.objects.create(
        template=template,
        key="file_ticket",
        name="File a Widgets ticket",
        connector_key="partner_widgets",
        action="file_ticket",
        payload_template={"title": "{{ scenario.title }}", "owner": "{{ scenario.incident_commander.email }}", "body": "{{ scenario.summary }}"},
    )
    data_model = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    values = crisis_values(title=LONG_TITLE)
    scenario = Scenario.objects.create(organization=organization, data_model=data_model, scenario_type="crisis_management", title="Widgets", values=values)
    return playbook_create(
        organization=organization, scenario=scenario, template=template, integration_bindings={"partner_widgets": str(widgets_integration.pk)}, actor=owner
    )


def signed_delivery(client, integration, payload: dict[str, Any], *, secret: str = WEBHOOK_SECRET):
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return client.post(
        f"/api/webhooks/{integration.pk}",
        data=body,
        content_type="application/json",
        HTTP_WIDGETS_TIMESTAMP=stamp,
        HTTP_WIDGETS_SIGNATURE=signature,
    )


def test_the_package_is_installed_by_pip_with_its_entry_point(installed_partner_package):
    dist_info = installed_partner_package / "bastion_partner_widgets-1.0.0.dist-info"
    assert (dist_info / "INSTALLER").read_text().strip() == "pip" and (dist_info / "RECORD").exists()
    assert "partner_widgets = bastion_partner_widgets:WidgetsConnector" in (dist_info / "entry_points.txt").read_text()
    connector = registry.get_connector_class("partner_widgets")
    assert connector.__module__ == "bastion_partner_widgets.connector"
    assert Path(sys.modules[connector.__module__].__file__).is_relative_to(installed_partner_package)


def test_partner_connector_appears_in_the_catalog_and_can_be_connected(installed_partner_package, widgets_api, api_for, users_by_role):
    viewer = api_for(users_by_role[Role.VIEWER])
    catalog = {c["key"]: c for c in viewer.get("/api/connectors").json()}
    assert catalog["partner_widgets"]["name"] == "Widgets Inc." and catalog["partner_widgets"]["source"] == "entry_point"
    assert catalog["partner_widgets"]["connection_status"] == "not_connected"
    admin = api_for(users_by_role[Role.ADMIN])
    response = admin.post(
        "/api/integrations/connect",
        {"connector_key": "partner_widgets", "credentials": {"api_key": API_KEY}, "base_url": widgets_api.url},
        format="json",
    )
    assert response.status_code == 201 and response.json()["test"]["ok"] is True
    assert {c["key"]: c for c in viewer.get("/api/connectors").json()}["partner_widgets"]["connection_status"] == "connected"


def test_a_playbook_step_runs_end_to_end_through_the_partner_connector(
    widgets_playbook, widgets_integration, widgets_api, owner, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run, is_new = playbook_activate(playbook=widgets_playbook, actor=owner)
    run.refresh_from_db()
    assert is_new and run.status == RunStatus.SUCCEEDED, run.error_summary

    # Field limits from ActionSpec.fields: the rendered title is one line of at most 40 characters when it is sent.
    step = run.step_runs.get(step_key="file_ticket")
    sent = [r for r in widgets_api.requests if (r["method"], r["path"]) == ("POST", "/v1/tickets")]
    assert len(sent) == 1 and sent[0]["headers"]["Widgets-Idempotency-Key"] == step.idempotency_key
    title = sent[0]["json"]["title"]
    assert "\n" not in title and len(title) <= 40 and title.startswith("DB outage")
    assert step.status == StepStatus.SUCCEEDED and step.external_id == "T-1"

    # Tracked object from ActionSpec.tracks + ActionResult.tracked: the war room has the ticket as a task, in the vendor's terms.
    task = Task.objects.get(run=run)
    assert (task.external_id, task.title, task.status, task.is_done) == ("T-1", title, "open", False)
    assert task.owner == crisis_values()["incident_commander"]["email"] and task.url == f"{widgets_api.url}/t/T-1"

    # fetch_objects reads it back through Bastion's own client for the integration.
    widgets_api.tickets["T-1"]["state"] = "in_progress"
    connector = shared_connector(widgets_integration, purpose="poll")
    states = connector.fetch_objects("task", ["T-1", "T-404"])
    assert (states["T-1"].status, states["T-1"].is_done) == ("in_progress", False) and states["T-404"].status == "deleted"

    # A verified webhook of a declared event type moves the task (tracked_state); an unsigned or undeclared one is refused.
    widgets_api.tickets["T-1"]["state"] = "closed"
    delivery = {"delivery": "d-1", "type": "ticket.updated", "at": "2099-01-01T00:00:00+00:00", "ticket": widgets_api.tickets["T-1"]}
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_delivery(client, widgets_integration, delivery)
    assert response.status_code in (200, 202), response.content
    task.refresh_from_db()
    assert (task.status, task.is_done) == ("closed", True)
    assert signed_delivery(client, widgets_integration, {**delivery, "delivery": "d-2"}, secret="wrong").status_code == 401
    assert signed_delivery(client, widgets_integration, {**delivery, "delivery": "d-3", "type": "order.shipped"}).status_code == 400

    # Undo: the connector withdraws what the run created, as ActionSpec.undo says.
    widgets_api.tickets["T-1"]["state"] = "open"
    with django_capture_on_commit_callbacks(execute=True):
        playbook_run_cancel(run=run, undo=True, actor=owner)
    assert widgets_api.tickets["T-1"]["state"] == "withdrawn"
    assert [r["path"] for r in widgets_api.requests if r["path"].endswith("/withdraw")] == ["/v1/tickets/T-1/withdraw"]


def test_the_partners_error_envelope_and_rate_signal_reach_the_shared_error_tree(widgets_integration, widgets_api):
    connector = shared_connector(widgets_integration, purpose="playbooks")
    connector.client.max_retries = 0
    widgets_api.faults = [
        (429, {"kind": "throttled", "reason": "slow down"}, {"Widgets-Retry-In": "7"}),
        (429, {"kind": "quota", "reason": "monthly ticket allowance used"}, {}),
        (422, {"kind": "invalid", "reason": "title is required"}, {}),
    ]
    with pytest.raises(ApiRateLimited) as throttled:
        connector.perform("file_ticket", {"title": "x"}, idempotency_key="k-1")
    assert throttled.value.retry_after == 7 and throttled.value.message == "Widgets Inc.: slow down" and throttled.value.vendor_code == "throttled"
    with pytest.raises(ApiQuotaExhausted) as quota:
        connector.perform("file_ticket", {"title": "x"}, idempotency_key="k-1")
    assert quota.value.message == "Widgets Inc.: monthly ticket allowance used"
    with pytest.raises(ApiBadRequest) as invalid:
        connector.perform("file_ticket", {"title": ""}, idempotency_key="k-1")
    assert str(invalid.value) == "Widgets Inc.: title is required [invalid] (422 /v1/tickets)"


def test_without_the_package_it_is_not_in_the_catalog(api):
    assert "partner_widgets" not in {c["key"] for c in api.get("/api/connectors").json()}


def test_a_broken_entry_point_does_not_take_the_catalog_down(tmp_path, api):
    site = tmp_path / "broken"
    dist_info = site / "broken_pkg-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-pkg\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[bastion.connectors]\nbroken = no_such_module:Connector\n")
    sys.path.insert(0, str(site))
    registry.reload_catalog()
    try:
        keys = {c["key"] for c in api.get("/api/connectors").json()}
        assert "demo" in keys and "broken" not in keys
    finally:
        sys.path.remove(str(site))
        registry.reload_catalog()
