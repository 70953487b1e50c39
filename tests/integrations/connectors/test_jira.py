"""Jira connector against the Jira stand-in over real HTTP: reads, incremental JQL, exactly-once actions, bulk, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from integrations.connectors.base import Role, TrackedKind, WebhookRequest
from integrations.connectors.jira import JiraConnector, adf_text, idempotency_label
from integrations.errors import ApiBadRequest, ApiNotFound, ApiUnauthorized, WebhookRejected
from integrations.http import BearerAuth, HttpClient
from tests.conftest import wait_for

FIXTURES = Path(__file__).parent / "fixtures" / "jira"
ADMIN = "jira.admin@acme.example"
SECRET = "jira-webhook-secret-1234"


def issue_token(sandbox: str, subject: str = ADMIN) -> str:
    return requests.post(f"{sandbox}/_control/tokens", json={"vendor": "jira", "subject": subject}, timeout=5).json()["token"]


def make_connector(sandbox: str, **config) -> JiraConnector:
    client = HttpClient(f"{sandbox}/jira", backoff_base=0.01)
    return JiraConnector(client=client, credentials={"email": ADMIN, "api_token": issue_token(sandbox)}, config={"page_size": 5, **config})


@pytest.fixture
def jira(sandbox) -> JiraConnector:
    return make_connector(sandbox)


def sandbox_issues(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/jira/_sandbox/issues", timeout=5).json()


def with_label(sandbox: str, label: str) -> list[dict]:
    return [i for i in sandbox_issues(sandbox) if label in i["fields"]["labels"]]


def calls(sandbox: str, path: str, method: str | None = None) -> list[dict]:
    log = requests.get(f"{sandbox}/_control/requests", params={"vendor": "jira"}, timeout=5).json()
    return [r for r in log if r["path"] == f"/jira{path}" and (method is None or r["method"] == method)]


def fail_after_write(sandbox: str, count: int = 1, status: int = 500) -> None:
    requests.put(f"{sandbox}/jira/_sandbox/knobs", json={"fail_after_write": count, "fail_status": status}, timeout=5).raise_for_status()


# ---- connection --------------------------------------------------------------------------------------------


def test_connection_with_api_token_reports_identity_permissions_and_site(jira, sandbox):
    result = jira.test_connection()
    assert result.ok is True
    assert result.identity == f"Acme Jira Admin <{ADMIN}>"
    assert result.account_id == f"{sandbox}/jira"  # no cloudId without OAuth: the site URL routes webhooks
    assert "CREATE_ISSUES" in result.scopes and "TRANSITION_ISSUES" in result.scopes
    assert result.detail["deployment_type"] == "Cloud" and result.detail["time_zone"] == "America/New_York"


def test_connection_with_oauth_bearer_goes_through_the_gateway_at_the_configured_cloud_id(sandbox):
    token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "jira", "scopes": ["read:jira-work"]}, timeout=5).json()["token"]
    cloud_id = requests.get(f"{sandbox}/jira/oauth/token/accessible-resources", headers={"Authorization": f"Bearer {token}"}, timeout=5).json()[0]["id"]
    # The real 3LO base URL is https://api.atlassian.com/ex/jira/<cloudId>; the connector takes the id from it (or from config).
    connector = JiraConnector(
        client=HttpClient(f"{sandbox}/jira", auth=BearerAuth(token)), config={"cloud_id": cloud_id}, credentials={"scope": "read:jira-work offline_access"}
    )
    assert connector.client.base_url == f"{sandbox}/jira/ex/jira/{cloud_id}/"
    result = connector.test_connection()
    assert result.account_id == cloud_id and result.detail["cloud_id"] == cloud_id
    assert result.scopes == ["read:jira-work", "offline_access"]
    assert calls(sandbox, "/rest/api/3/myself") == []  # not on the site URL
    # The cloudId may also come in the base URL itself (https://api.atlassian.com/ex/jira/<cloudId>).
    direct = JiraConnector(client=HttpClient(f"{sandbox}/jira/ex/jira/{cloud_id}", auth=BearerAuth(token)))
    assert direct.cloud_id == cloud_id and direct.test_connection().account_id == cloud_id


def test_wrong_api_token_is_unauthorized(sandbox):
    connector = JiraConnector(client=HttpClient(f"{sandbox}/jira"), credentials={"email": ADMIN, "api_token": "nope"})
    with pytest.raises(ApiUnauthorized):
        connector.test_connection()
    stolen = JiraConnector(client=HttpClient(f"{sandbox}/jira"), credentials={"email": "ava.chen@acme.example", "api_token": issue_token(sandbox)})
    with pytest.raises(ApiUnauthorized):  # a token works only with its owner's email
        stolen.test_connection()


# ---- reads -----------------------------------------------------------------------------------------------------


def read_all(connector: JiraConnector, entity: str, cursor=None) -> tuple[list[dict], list]:
    records, pages, page = [], [], None
    while True:
        result = connector.read(entity, cursor=cursor, page=page)
        records.extend(result.records)
        pages.append(result)
        if not result.next_page:
            return records, pages
        page = result.next_page


def test_projects_read_pages_and_transform(sandbox):
    connector = make_connector(sandbox, page_size=2)
    records, pages = read_all(connector, "projects")
    assert len(pages) == 2
    projects = {p["key"]: p for p in (connector.to_bastion("projects", r) for r in records)}
    assert set(projects) == {"OPS", "LAUNCH", "MNA"}
    assert projects["OPS"]["title"] == "Operations" and projects["OPS"]["lead_email"] == "marcus.okafor@acme.example"
    assert projects["OPS"]["due_date"] == "2026-09-30" and projects["OPS"]["status"] == "active"
    assert projects["MNA"]["due_date"] == ""


def test_issues_full_scan_then_incremental_by_updated(jira, sandbox):
    records, pages = read_all(jira, "issues")
    assert len(records) == 15 and len({r["id"] for r in records}) == 15
    assert len(pages) == 3 and all(p.is_full_scan for p in pages)
    assert all(r["fields"]["summary"] for r in records)  # fields were asked for: the default is the id only
    cursor = pages[-1].cursor
    assert cursor["updated"] == max(r["fields"]["updated"] for r in records)

    new = jira.perform("create_issue", {"project_key": "OPS", "summary": "Fresh"}, idempotency_key="fresh")
    requests.post(f"{sandbox}/jira/_sandbox/transition", json={"issue_key": "LAUNCH-1", "status": "In Progress"}, timeout=5).raise_for_status()
    changed, inc_pages = read_all(jira, "issues", cursor=cursor)
    # The caller's zone is America/New_York: a cursor written in UTC would miss both changes. The cursor's own
    # minute is read again (JQL has minute precision), which is harmless for upserts.
    boundary = {r["key"] for r in records if r["fields"]["updated"][:16] == cursor["updated"][:16]}
    assert boundary == {"OPS-12"}
    assert {r["key"] for r in changed} == {new.data["key"], "LAUNCH-1"} | boundary
    assert not inc_pages[0].is_full_scan
    assert inc_pages[-1].cursor["updated"] > cursor["updated"]


def test_unbounded_jql_is_refused_like_jira(jira):
    with pytest.raises(ApiBadRequest) as error:
        jira.search("ORDER BY updated", fields=["summary"])
    assert "Unbounded JQL" in str(error.value)


def test_users_pages_exclude_app_accounts(jira):
    records, pages = read_all(jira, "users")
    people = [jira.to_bastion("users", r) for r in records]
    assert len(people) == 21 and len(pages) == 5  # 20 people + the admin; 22 accounts in pages of 5
    ava = next(p for p in people if p["email"] == "ava.chen@acme.example")
    assert ava["given_name"] == "Ava" and ava["family_name"] == "Chen" and ava["is_active"] is True


def test_fields_and_create_metadata_discovery(jira, sandbox):
    fields = {f.name: f for f in jira.discover_fields("issues")}
    assert fields["customfield_10010"].is_custom is True and fields["customfield_10010"].label == "Severity"
    assert fields["summary"].is_custom is False and fields["duedate"].type == "date"
    create = {f.name: f for f in jira.create_fields("OPS", "Task")}
    assert create["summary"].is_required and not create["duedate"].is_required
    assert create["customfield_10030"].is_custom
    metadata, _ = read_all(make_connector(sandbox, project_keys="OPS"), "create_metadata")
    assert {m["issue_type"]["name"] for m in metadata} == {"Task", "Bug", "Epic", "Subtask"}
    severity = next(f for f in metadata[0]["fields"] if f["fieldId"] == "customfield_10010")
    assert [v["value"] for v in severity["allowedValues"]] == ["Sev1", "Sev2", "Sev3", "Sev4"]


# ---- transformers ------------------------------------------------------------------------------------------------


def test_transformers_both_ways():
    connector = JiraConnector(config={"site_url": "https://acme.atlassian.net"})
    project = connector.to_bastion("projects", json.loads((FIXTURES / "project_search_value.json").read_text()))
    assert project == {
        "external_id": "10000",
        "key": "OPS",
        "title": "Operations",
        "description": "Incident and crisis operations work.",
        "status": "active",
        "lead_email": "marcus.okafor@acme.example",
        "due_date": "2026-09-30",  # the next unreleased version
    }
    issue = json.loads((FIXTURES / "webhook_issue_updated.json").read_text())["issue"]
    assert connector.to_bastion("issues", issue) == {
        "external_id": "25201",
        "key": "OPS-154",
        "summary": "Notify regulators within 72 hours",
        "status": "Done",
        "status_category": "done",
        "assignee_email": "zara.ahmed@acme.example",
        "due_date": "2026-03-02",
        "url": "https://acme.atlassian.net/browse/OPS-154",
    }
    out = connector.from_bastion(
        "issues",
        {
            "project_key": "ops",
            "summary": "Brief the board",
            "description": "Line one\nline two\n\nSecond",
            "assignee_account_id": "acc-1",
            "due_date": "2026-03-01",
            "labels": ["war room"],
            "fields": {"customfield_10010": {"value": "Sev1"}},
        },
    )
    assert out["fields"]["project"] == {"key": "OPS"} and out["fields"]["issuetype"] == {"name": "Task"}
    assert out["fields"]["assignee"] == {"accountId": "acc-1"} and out["fields"]["duedate"] == "2026-03-01"
    assert out["fields"]["labels"] == ["war-room"] and out["fields"]["customfield_10010"] == {"value": "Sev1"}
    assert out["fields"]["description"] == {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Line one"}, {"type": "hardBreak"}, {"type": "text", "text": "line two"}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "Second"}]},
        ],
    }
    assert adf_text(out["fields"]["description"]) == "Line one\nline two\n\nSecond"


# ---- actions, exactly once ----------------------------------------------------------------------------------------


def test_create_issue_once_with_assignee_due_date_and_adf(jira, sandbox):
    payload = {
        "project_key": "OPS",
        "summary": "Contain the breach",
        "description": "Isolate hosts",
        "assignee_email": "Emma.Rossi@acme.example",
        "due_date": "2026-03-01",
    }
    first = jira.perform("create_issue", payload, idempotency_key="run-7:step-1")
    second = jira.perform("create_issue", payload, idempotency_key="run-7:step-1")
    assert first.created is True and second.created is False and first.external_id == second.external_id
    [issue] = with_label(sandbox, idempotency_label("run-7:step-1"))
    assert issue["fields"]["assignee"]["emailAddress"] == "emma.rossi@acme.example"
    assert issue["fields"]["duedate"] == "2026-03-01" and issue["fields"]["issuetype"]["name"] == "Task"
    assert adf_text(issue["fields"]["description"]) == "Isolate hosts"
    assert first.url == f"{sandbox}/jira/browse/{issue['key']}" and requests.get(first.url, timeout=5).status_code == 200
    assert len(calls(sandbox, "/rest/api/3/issue", "POST")) == 1


def test_create_issue_after_a_5xx_that_hid_success_is_not_duplicated(jira, sandbox):
    fail_after_write(sandbox)  # Jira creates the issue, then answers 500
    result = jira.perform("create_issue", {"project_key": "OPS", "summary": "Lost answer"}, idempotency_key="lost")
    assert result.created is True
    assert len(with_label(sandbox, idempotency_label("lost"))) == 1
    assert [c["status"] for c in calls(sandbox, "/rest/api/3/issue", "POST")] == [500]  # found by its label, never resent


def test_unknown_assignee_and_invalid_fields_are_clear_errors(jira, sandbox):
    with pytest.raises(ApiNotFound):
        jira.perform("create_issue", {"project_key": "OPS", "summary": "x", "assignee_email": "ghost@acme.example"}, idempotency_key="g")
    with pytest.raises(ApiBadRequest) as error:
        jira.perform("create_issue", {"project_key": "OPS", "summary": "x", "fields": {"customfield_10010": {"value": "Sev9"}}}, idempotency_key="s")
    assert "customfield_10010" in str(error.value)  # Jira's ErrorCollection, field by field
    assert calls(sandbox, "/rest/api/3/issue", "POST")[0]["status"] == 400
    assert len(sandbox_issues(sandbox)) == 15


def test_bulk_create_17_in_one_call_and_again_without_duplicates(jira, sandbox):
    payloads = [{"project_key": "OPS", "summary": f"Crisis task {n}", "assignee_email": "amara.nwosu@acme.example"} for n in range(17)]
    keys = [f"run-9:task-{n}" for n in range(17)]
    results = jira.perform_bulk("create_issue", payloads, idempotency_keys=keys)
    assert all(r.created for r in results) and len({r.external_id for r in results}) == 17
    assert len(calls(sandbox, "/rest/api/3/issue/bulk")) == 1
    assert len(calls(sandbox, "/rest/api/3/search/jql")) == 1  # one marker search for the whole chunk
    again = jira.perform_bulk("create_issue", payloads, idempotency_keys=keys)
    assert [r.external_id for r in again] == [r.external_id for r in results] and not any(r.created for r in again)
    assert len(calls(sandbox, "/rest/api/3/issue/bulk")) == 1
    assert len(sandbox_issues(sandbox)) == 15 + 17


def test_bulk_create_60_takes_two_calls(jira, sandbox):
    results = jira.perform_bulk(
        "create_issue", [{"project_key": "LAUNCH", "summary": f"Launch {n}"} for n in range(60)], idempotency_keys=[f"l{n}" for n in range(60)]
    )
    assert len(results) == 60 and all(r.created for r in results)
    assert len(calls(sandbox, "/rest/api/3/issue/bulk")) == 2
    assert len(sandbox_issues(sandbox)) == 75


def test_bulk_partial_success_reports_each_failure(jira, sandbox):
    payloads = [{"project_key": "OPS", "summary": "ok 1"}, {"project_key": "NOPE", "summary": "bad"}, {"project_key": "OPS", "summary": "ok 2"}]
    results = jira.perform_bulk("create_issue", payloads, idempotency_keys=["p1", "p2", "p3"])
    assert results[0].created and results[2].created
    assert isinstance(results[1], ApiBadRequest) and "project" in str(results[1])
    assert [i["fields"]["summary"] for i in sandbox_issues(sandbox)[15:]] == ["ok 1", "ok 2"]


def test_bulk_after_a_5xx_resends_only_what_did_not_land(jira, sandbox):
    fail_after_write(sandbox)
    results = jira.perform_bulk("create_issue", [{"project_key": "OPS", "summary": f"B{n}"} for n in range(5)], idempotency_keys=[f"b{n}" for n in range(5)])
    assert all(r.created for r in results)
    assert len(sandbox_issues(sandbox)) == 20
    assert [c["status"] for c in calls(sandbox, "/rest/api/3/issue/bulk")] == [500]


def test_assign_transition_and_comment(jira, sandbox):
    key = jira.perform("create_issue", {"project_key": "OPS", "summary": "Work"}, idempotency_key="w").data["key"]
    assert jira.perform("assign_issue", {"issue_key": key, "assignee_email": "yuki.tanaka@acme.example"}, idempotency_key="a").created is True
    assert jira.perform("assign_issue", {"issue_key": key, "assignee_email": "yuki.tanaka@acme.example"}, idempotency_key="a").created is False
    moved = jira.perform("transition_issue", {"issue_key": key, "status": "in progress"}, idempotency_key="t1")
    assert moved.created is True and moved.data["status"] == "In Progress"
    assert jira.perform("transition_issue", {"issue_key": key, "status": "In Progress"}, idempotency_key="t1").created is False
    assert jira.perform("transition_issue", {"issue_key": key, "status": "Resolve"}, idempotency_key="t2").data["status"] == "Done"  # by transition name
    with pytest.raises(ApiBadRequest) as error:
        jira.perform("transition_issue", {"issue_key": key, "status": "In Progress"}, idempotency_key="t3")
    assert "available: To Do" in str(error.value)
    assert [c["status"] for c in calls(sandbox, f"/rest/api/3/issue/{key}/transitions", "POST")] == [204, 204]
    first = jira.perform("add_comment", {"issue_key": key, "body": "Status: contained\n\nNext update 14:00"}, idempotency_key="c")
    again = jira.perform("add_comment", {"issue_key": key, "body": "Status: contained\n\nNext update 14:00"}, idempotency_key="c")
    assert first.created and not again.created and first.external_id == again.external_id
    comments = requests.get(f"{sandbox}/jira/rest/api/3/issue/{key}/comment", auth=(ADMIN, issue_token(sandbox)), timeout=5).json()["comments"]
    assert len(comments) == 1 and adf_text(comments[0]["body"]) == "Status: contained\n\nNext update 14:00"
    issue = next(i for i in sandbox_issues(sandbox) if i["key"] == key)
    assert issue["fields"]["status"]["name"] == "Done" and issue["fields"]["assignee"]["emailAddress"] == "yuki.tanaka@acme.example"


def test_rate_limit_429_with_jira_headers_is_waited_out(jira, sandbox):
    requests.put(f"{sandbox}/_control/faults/jira", json={"rate_limit_next": 1, "retry_after": 1}, timeout=5).raise_for_status()
    raw = requests.get(f"{sandbox}/jira/rest/api/3/field", auth=(ADMIN, issue_token(sandbox)), timeout=5)
    assert raw.status_code == 429 and raw.headers["RateLimit-Reason"] == "jira-burst-based" and raw.headers["Retry-After"] == "1"
    assert raw.json() == {"errorMessages": ["Rate limit exceeded."], "errors": {}}
    requests.put(f"{sandbox}/_control/faults/jira", json={"rate_limit_next": 1}, timeout=5).raise_for_status()
    started = time.monotonic()
    assert len(jira.read("fields").records) == 16
    assert time.monotonic() - started >= 1.0
    assert [c["status"] for c in calls(sandbox, "/rest/api/3/field")] == [429, 429, 200]


# ---- webhooks --------------------------------------------------------------------------------------------------------


def jira_request(body: bytes, *, secret: str = SECRET, headers: dict | None = None, received_at: datetime | None = None) -> WebhookRequest:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    base = {"X-Hub-Signature": signature, "X-Atlassian-Webhook-Identifier": "d-123", "Content-Type": "application/json"}
    return WebhookRequest("POST", "https://bastion.example/webhooks/jira", headers if headers is not None else base, body, received_at or datetime.now(tz=UTC))


def fresh_fixture() -> bytes:
    payload = json.loads((FIXTURES / "webhook_issue_updated.json").read_text())
    payload["timestamp"] = int(time.time() * 1000)
    return json.dumps(payload).encode()


def test_webhook_signature_accepted_rejected_stale_and_missing():
    body = fresh_fixture()
    JiraConnector.verify_webhook(jira_request(body), secret=SECRET)
    with pytest.raises(WebhookRejected) as wrong:
        JiraConnector.verify_webhook(jira_request(body, secret="other"), secret=SECRET)
    assert wrong.value.status == 401
    stale = (FIXTURES / "webhook_issue_updated.json").read_bytes()  # recorded in 2018
    with pytest.raises(WebhookRejected) as replayed:
        JiraConnector.verify_webhook(jira_request(stale), secret=SECRET)
    assert replayed.value.status == 409
    with pytest.raises(WebhookRejected) as missing:
        JiraConnector.verify_webhook(jira_request(body, headers={"Content-Type": "application/json"}), secret=SECRET)
    assert missing.value.status == 400


def test_issue_updated_becomes_upsert_and_status_events():
    events = JiraConnector.parse_webhook(jira_request(fresh_fixture()))
    assert [(e.delivery_id, e.entity, e.external_id, e.action) for e in events] == [
        ("d-123", "issues", "25201", "upsert"),
        ("d-123:status", "issues", "25201", "status"),
    ]
    assert events[1].record == {"status": "Done", "status_category": "done", "key": "OPS-154"}
    deleted = json.loads(fresh_fixture())
    deleted["webhookEvent"] = "jira:issue_deleted"
    [gone] = JiraConnector.parse_webhook(jira_request(json.dumps(deleted).encode()))
    assert (gone.action, gone.external_id) == ("delete", "25201")


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        return


@pytest.fixture
def receiver():
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/jira", _Receiver.received
    server.shutdown()


def test_status_change_in_jira_arrives_as_a_signed_webhook(jira, sandbox, receiver):
    url, received = receiver
    auth = (ADMIN, issue_token(sandbox))
    hook = requests.post(
        f"{sandbox}/jira/rest/webhooks/1.0/webhook",
        json={"name": "Bastion", "url": url, "events": ["jira:issue_updated"], "secret": SECRET},
        auth=auth,
        timeout=5,
    )
    assert hook.status_code == 201 and "secret" not in hook.json()
    key = jira.perform("create_issue", {"project_key": "OPS", "summary": "Track me"}, idempotency_key="track").data["key"]
    assert requests.post(f"{sandbox}/jira/_sandbox/transition", json={"issue_key": key, "status": "Done"}, timeout=5).json()["webhooks"] == 1
    wait_for(lambda: received, timeout=10, message="the Jira webhook delivery")
    headers, body = received[0]
    request = WebhookRequest("POST", url, headers, body, datetime.now(tz=UTC))
    JiraConnector.verify_webhook(request, secret=SECRET)
    events = JiraConnector.parse_webhook(request)
    assert events[0].delivery_id == headers["X-Atlassian-Webhook-Identifier"]
    status = next(e for e in events if e.action == "status")
    assert status.record["status"] == "Done" and status.record["status_category"] == "done" and status.record["key"] == key


# ---- through the Django layer ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_integration_connect_with_api_token_marks_connected(sandbox, organization, settings):
    from integrations.models import CredentialType, IntegrationStatus
    from integrations.services import integration_connect

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True  # the sandbox listens on loopback
    integration = integration_connect(
        organization=organization,
        connector_key="jira",
        credentials={"email": ADMIN, "api_token": issue_token(sandbox)},
        credential_type=CredentialType.API_KEY,
        base_url=f"{sandbox}/jira",
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED
    assert integration.external_account_id == f"{sandbox}/jira"


def test_never_tried_keys_skip_the_marker_search_and_a_lost_answer_is_still_found(jira, sandbox):
    payloads = [{"project_key": "OPS", "summary": f"Fresh task {n}", "assignee_email": "amara.nwosu@acme.example"} for n in range(6)]
    keys = [f"run-10:task-{n}" for n in range(6)]
    results = jira.perform_bulk("create_issue", payloads, idempotency_keys=keys, known_new=True)
    assert all(r.created for r in results) and len({r.external_id for r in results}) == 6
    assert calls(sandbox, "/rest/api/3/search/jql") == []  # no marker search before the first attempt
    assert len(calls(sandbox, "/rest/api/3/user/search")) == 1  # one lookup for the six issues of the same owner

    fail_after_write(sandbox)  # created, then the answer is lost: the recovery search still runs
    single = jira.perform("create_issue", {"project_key": "OPS", "summary": "Fresh single"}, idempotency_key="fresh-single", known_new=True)
    assert single.created is True and len(with_label(sandbox, idempotency_label("fresh-single"))) == 1
    assert len(calls(sandbox, "/rest/api/3/search/jql")) == 1
    assert len(sandbox_issues(sandbox)) == 15 + 7


def test_tasks_role_payload_becomes_an_issue_once_single_and_in_bulk(sandbox):
    """The tasks role's create_task (title, notes, assignee e-mail, due date) is a Jira issue in the first synced project."""
    jira = make_connector(sandbox, project_keys="OPS,LAUNCH")
    assert Role.TASKS in jira.manifest.roles and jira.manifest.action("create_task").tracks == TrackedKind.TASK
    task = {"title": "Publish docs", "notes": "Release notes", "assignee": "Emma.Rossi@acme.example", "due_on": "2026-03-01"}
    first = jira.perform("create_task", task, idempotency_key="run-8:docs")
    again = jira.perform("create_task", task, idempotency_key="run-8:docs")
    assert first.created and not again.created and first.external_id == again.external_id
    [issue] = with_label(sandbox, idempotency_label("run-8:docs"))
    assert issue["key"].startswith("OPS-") and issue["fields"]["summary"] == "Publish docs"
    assert issue["fields"]["assignee"]["emailAddress"] == "emma.rossi@acme.example" and issue["fields"]["duedate"] == "2026-03-01"
    assert first.tracked is not None and first.tracked.title == "Publish docs" and first.tracked.owner == "Emma.Rossi@acme.example"
    bulk = jira.perform_bulk("create_task", [{"title": f"Launch {n}", "project_key": "LAUNCH"} for n in range(3)], idempotency_keys=["t0", "t1", "t2"])
    assert all(r.created for r in bulk) and len(calls(sandbox, "/rest/api/3/issue/bulk")) == 1
    assert {i["key"].split("-")[0] for i in sandbox_issues(sandbox)[-3:]} == {"LAUNCH"}


def test_a_task_without_any_project_is_a_clear_error(jira):
    with pytest.raises(ApiBadRequest, match="project key"):
        jira.perform("create_task", {"title": "Orphan"}, idempotency_key="o1")
