"""Jira Data Center connector against the v2 stand-in over real HTTP: PAT auth, startAt paging, zone-correct incremental JQL,
exactly-once creates (single and bulk), users by name, transitions, webhooks (signed on 10+, URL token before), fetch and undo."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests

from integrations.connectors.base import WebhookRequest
from integrations.connectors.jira import idempotency_label, parse_jira_time
from integrations.connectors.jira_dc import JiraDataCenterConnector
from integrations.errors import ApiBadRequest, ApiNotFound, ApiUnauthorized, WebhookRejected
from integrations.http import HttpClient
from tests.conftest import wait_for

SECRET = "jira-dc-webhook-secret-5678"
ISSUE_PATH = "/rest/api/2/issue"


def issue_pat(sandbox: str, subject: str = "jira.admin") -> str:
    return requests.post(f"{sandbox}/_control/tokens", json={"vendor": "jira_dc", "subject": subject}, timeout=5).json()["token"]


def make_connector(sandbox: str, **config) -> JiraDataCenterConnector:
    client = HttpClient(f"{sandbox}/jira_dc", backoff_base=0.01)
    return JiraDataCenterConnector(client=client, credentials={"personal_access_token": issue_pat(sandbox)}, config={"page_size": 5, **config})


@pytest.fixture
def jira(sandbox) -> JiraDataCenterConnector:
    return make_connector(sandbox)


def sandbox_issues(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/jira_dc/_sandbox/issues", timeout=5).json()


def with_label(sandbox: str, label: str) -> list[dict]:
    return [i for i in sandbox_issues(sandbox) if label in i["fields"]["labels"]]


def calls(sandbox: str, path: str, method: str | None = None) -> list[dict]:
    log = requests.get(f"{sandbox}/_control/requests", params={"vendor": "jira_dc"}, timeout=5).json()
    return [r for r in log if r["path"] == f"/jira_dc{path}" and (method is None or r["method"] == method)]


def knobs(sandbox: str, **values) -> None:
    requests.put(f"{sandbox}/jira_dc/_sandbox/knobs", json=values, timeout=5).raise_for_status()


def read_all(connector: JiraDataCenterConnector, entity: str, cursor=None) -> tuple[list[dict], list]:
    records, pages, page = [], [], None
    while True:
        result = connector.read(entity, cursor=cursor, page=page)
        records.extend(result.records)
        pages.append(result)
        if not result.next_page:
            return records, pages
        page = result.next_page


# ---- connection ------------------------------------------------------------------------------------------------------


def test_connection_with_a_personal_access_token(jira, sandbox):
    result = jira.test_connection()
    assert result.ok and result.identity == "Acme Jira Admin <jira.admin@acme.example>"
    assert result.account_id == f"{sandbox}/jira_dc"  # the server's base URL routes webhooks
    assert result.detail["username"] == "jira.admin" and result.detail["user_key"] == "JIRAUSER10000"
    assert result.detail["deployment_type"] == "Server" and result.detail["version"] == "10.3.1" and result.detail["signs_webhooks"] is True
    assert result.detail["time_zone"] == "America/Chicago" and result.detail["missing_permissions"] == []
    assert [c["status"] for c in calls(sandbox, "/rest/api/2/myself")] == [200]


def test_wrong_token_basic_auth_and_missing_or_cloud_base_urls_are_refused(sandbox):
    with pytest.raises(ApiUnauthorized):
        JiraDataCenterConnector(client=HttpClient(f"{sandbox}/jira_dc"), credentials={"personal_access_token": "nope"}).test_connection()
    # A PAT is a bearer token: Server refuses it as a Basic password.
    raw = requests.get(f"{sandbox}/jira_dc/rest/api/2/myself", auth=("jira.admin", issue_pat(sandbox)), timeout=5)
    assert raw.status_code == 401 and raw.json() == {"errorMessages": [raw.json()["errorMessages"][0]], "errors": {}}
    with pytest.raises(ApiBadRequest) as missing:
        JiraDataCenterConnector(credentials={"personal_access_token": "x"}).test_connection()
    assert missing.value.vendor_code == "jira_base_url_required"
    cloud = JiraDataCenterConnector(client=HttpClient("https://acme.atlassian.net"), credentials={"personal_access_token": "x"})
    with pytest.raises(ApiBadRequest) as wrong_product:
        cloud.test_connection()
    assert wrong_product.value.vendor_code == "jira_cloud_site"


# ---- reads -----------------------------------------------------------------------------------------------------------


def test_issues_page_by_start_at_then_read_incrementally_in_the_callers_time_zone(jira, sandbox):
    records, pages = read_all(jira, "issues")
    assert len(records) == 15 and len({r["id"] for r in records}) == 15 and len(pages) == 3
    assert [p.next_page["token"] if p.next_page else None for p in pages] == ["5", "10", None]  # startAt of the next page
    assert all(p.is_full_scan for p in pages) and len(calls(sandbox, "/rest/api/2/search", "POST")) == 3
    assert isinstance(records[0]["fields"]["description"], (str, type(None)))
    cursor = pages[-1].cursor
    assert cursor["updated"] == max(r["fields"]["updated"] for r in records)

    # The JQL literal is the cursor in the caller's zone (America/Chicago), not UTC: Server reads JQL dates in that zone.
    since = parse_jira_time(cursor["updated"])
    assert f'updated >= "{since.astimezone(ZoneInfo("America/Chicago")).strftime("%Y-%m-%d %H:%M")}"' in jira._issue_jql(cursor)

    new = jira.perform("create_issue", {"project_key": "OPS", "summary": "Fresh"}, idempotency_key="fresh")
    requests.post(f"{sandbox}/jira_dc/_sandbox/transition", json={"issue_key": "LAUNCH-1", "status": "In Progress"}, timeout=5).raise_for_status()
    changed, inc_pages = read_all(jira, "issues", cursor=cursor)
    boundary = {r["key"] for r in records if r["fields"]["updated"][:16] == cursor["updated"][:16]}
    assert boundary == {"OPS-12"}
    # A UTC literal read as Chicago time lies six hours ahead and would find neither change.
    assert {r["key"] for r in changed} == {new.data["key"], "LAUNCH-1"} | boundary
    assert not inc_pages[0].is_full_scan and inc_pages[-1].cursor["updated"] > cursor["updated"]


def test_projects_users_and_create_metadata(sandbox):
    connector = make_connector(sandbox, page_size=2)
    records, pages = read_all(connector, "projects")
    assert len(pages) == 2 and [r["key"] for r in records] == ["LAUNCH", "MNA", "OPS"]
    projects = {p["key"]: p for p in (connector.to_bastion("projects", r) for r in records)}
    assert projects["OPS"]["lead_email"] == "marcus.okafor@acme.example" and projects["OPS"]["due_date"] == "2026-09-30"

    jira = make_connector(sandbox)
    users, user_pages = read_all(jira, "users")
    assert len(users) == 22 and len(user_pages) == 5  # 20 people, the admin and one deactivated account, pages of 5
    people = {p["username"]: p for p in (jira.to_bastion("users", u) for u in users)}
    ava = people["ava.chen"]
    assert ava["external_id"] == jira.external_id("users", next(u for u in users if u["name"] == "ava.chen")) == "JIRAUSER10100"
    assert ava["email"] == "ava.chen@acme.example" and ava["given_name"] == "Ava" and ava["is_active"] is True
    assert people["old.contractor"]["is_active"] is False

    metadata, _ = read_all(make_connector(sandbox, project_keys="OPS"), "create_metadata")
    assert {m["issue_type"]["name"] for m in metadata} == {"Task", "Bug", "Epic", "Subtask"}
    assert {f.name for f in jira.create_fields("OPS", "Task") if f.is_required} == {"summary", "issuetype", "project"}


# ---- actions, exactly once -----------------------------------------------------------------------------------------------


def test_create_issue_with_plain_text_description_and_assignee_by_email_once(jira, sandbox):
    payload = {"project_key": "OPS", "summary": "Contain", "description": "Isolate *hosts*\n\nThen report", "assignee_email": "Emma.Rossi@acme.example"}
    first = jira.perform("create_issue", payload, idempotency_key="run-1:step-1")
    again = jira.perform("create_issue", payload, idempotency_key="run-1:step-1")
    assert first.created and not again.created and first.external_id == again.external_id
    [issue] = with_label(sandbox, idempotency_label("run-1:step-1"))
    assert issue["fields"]["description"] == "Isolate *hosts*\n\nThen report"  # a string (wiki markup), never ADF
    assert issue["fields"]["assignee"]["name"] == "emma.rossi" and "accountId" not in issue["fields"]["assignee"]
    assert first.url == f"{sandbox}/jira_dc/browse/{issue['key']}" and requests.get(first.url, timeout=5).status_code == 200
    assert len(calls(sandbox, ISSUE_PATH, "POST")) == 1
    by_name = jira.perform("create_issue", {"project_key": "OPS", "summary": "By name", "assignee_name": "yuki.tanaka"}, idempotency_key="n")
    assert next(i for i in sandbox_issues(sandbox) if i["id"] == by_name.external_id)["fields"]["assignee"]["name"] == "yuki.tanaka"


def test_a_5xx_after_the_write_is_found_by_marker_and_never_resent(jira, sandbox):
    knobs(sandbox, fail_after_write=1, fail_status=500)
    result = jira.perform("create_issue", {"project_key": "OPS", "summary": "Lost answer"}, idempotency_key="lost")
    assert result.created is True and len(with_label(sandbox, idempotency_label("lost"))) == 1
    assert [c["status"] for c in calls(sandbox, ISSUE_PATH, "POST")] == [500]


def test_bulk_create_with_partial_failure_and_a_retry_without_duplicates(jira, sandbox):
    payloads = [
        {"project_key": "OPS", "summary": "ok 1", "assignee_email": "amara.nwosu@acme.example"},
        {"project_key": "NOPE", "summary": "bad project"},
        {"project_key": "OPS", "summary": "bad person", "assignee_email": "ghost@acme.example"},
        {"project_key": "OPS", "summary": "ok 2", "assignee_name": "jonas.berg"},
    ]
    keys = ["b1", "b2", "b3", "b4"]
    results = jira.perform_bulk("create_issue", payloads, idempotency_keys=keys)
    assert results[0].created and results[3].created
    assert isinstance(results[1], ApiBadRequest) and "project" in str(results[1])
    assert isinstance(results[2], ApiNotFound) and "ghost@acme.example" in str(results[2])
    assert len(calls(sandbox, f"{ISSUE_PATH}/bulk")) == 1
    assert [i["fields"]["summary"] for i in sandbox_issues(sandbox)[15:]] == ["ok 1", "ok 2"]
    again = jira.perform_bulk("create_issue", [payloads[0], payloads[3]], idempotency_keys=["b1", "b4"])
    assert [r.external_id for r in again] == [results[0].external_id, results[3].external_id] and not any(r.created for r in again)
    assert len(calls(sandbox, f"{ISSUE_PATH}/bulk")) == 1 and len(sandbox_issues(sandbox)) == 17


def test_bulk_of_60_takes_two_calls_and_a_lost_answer_resends_only_what_did_not_land(jira, sandbox):
    results = jira.perform_bulk(
        "create_issue", [{"project_key": "LAUNCH", "summary": f"L{n}"} for n in range(60)], idempotency_keys=[f"l{n}" for n in range(60)]
    )
    assert len(results) == 60 and all(r.created for r in results) and len(calls(sandbox, f"{ISSUE_PATH}/bulk")) == 2
    knobs(sandbox, fail_after_write=1, fail_status=502)
    more = jira.perform_bulk("create_issue", [{"project_key": "OPS", "summary": f"B{n}"} for n in range(5)], idempotency_keys=[f"b{n}" for n in range(5)])
    assert all(r.created for r in more) and len(sandbox_issues(sandbox)) == 15 + 60 + 5
    assert [c["status"] for c in calls(sandbox, f"{ISSUE_PATH}/bulk")] == [201, 201, 502]


def test_assign_by_name_or_email_transition_by_status_name_and_comment_once(jira, sandbox):
    key = jira.perform("create_issue", {"project_key": "OPS", "summary": "Work"}, idempotency_key="w").data["key"]
    assert jira.perform("assign_issue", {"issue_key": key, "assignee_name": "yuki.tanaka"}, idempotency_key="a").created is True
    assert jira.perform("assign_issue", {"issue_key": key, "assignee_email": "YUKI.TANAKA@acme.example"}, idempotency_key="a").created is False
    assert [c["status"] for c in calls(sandbox, f"{ISSUE_PATH}/{key}/assignee", "PUT")] == [204]
    with pytest.raises(ApiNotFound):
        jira.perform("assign_issue", {"issue_key": key, "assignee_email": "nobody@acme.example"}, idempotency_key="x")
    moved = jira.perform("transition_issue", {"issue_key": key, "status": "in progress"}, idempotency_key="t1")
    assert moved.created and moved.data["status"] == "In Progress"
    assert jira.perform("transition_issue", {"issue_key": key, "status": "In Progress"}, idempotency_key="t1").created is False
    with pytest.raises(ApiBadRequest) as error:
        jira.perform("transition_issue", {"issue_key": key, "status": "Reopened"}, idempotency_key="t2")
    assert "available: Done, To Do" in str(error.value)
    assert [c["status"] for c in calls(sandbox, f"{ISSUE_PATH}/{key}/transitions", "POST")] == [204]
    first = jira.perform("add_comment", {"issue_key": key, "body": "Contained.\n\nNext update 14:00"}, idempotency_key="c")
    again = jira.perform("add_comment", {"issue_key": key, "body": "Contained.\n\nNext update 14:00"}, idempotency_key="c")
    assert first.created and not again.created and first.external_id == again.external_id
    headers = {"Authorization": f"Bearer {issue_pat(sandbox)}"}
    comments = requests.get(f"{sandbox}/jira_dc/rest/api/2/issue/{key}/comment", headers=headers, timeout=5).json()["comments"]
    assert [c["body"] for c in comments] == ["Contained.\n\nNext update 14:00"]
    issue = next(i for i in sandbox_issues(sandbox) if i["key"] == key)
    assert issue["fields"]["status"]["name"] == "In Progress" and issue["fields"]["assignee"]["name"] == "yuki.tanaka"


# ---- tracked objects: status polling and undo --------------------------------------------------------------------------------


def test_fetch_objects_and_undo_close_the_issue_with_a_comment_once(jira, sandbox):
    key = jira.perform("create_issue", {"project_key": "OPS", "summary": "Undo me", "assignee_name": "zara.ahmed"}, idempotency_key="u").data["key"]
    one = jira.fetch_objects("jira_issue", [key])[key]
    assert (one.key, one.status, one.details["status_category"], one.owner, one.is_done) == (key, "To Do", "new", "zara.ahmed@acme.example", False)
    assert one.details["updated"] and one.url == f"{sandbox}/jira_dc/browse/{key}"
    many = jira.fetch_objects("jira_issue", [key, "OPS-1", "OPS-999"])  # a key Jira no longer has fails the JQL: read alone, as deleted
    assert many[key].status == "To Do" and many["OPS-1"].key == "OPS-1" and (many["OPS-999"].status, many["OPS-999"].is_done) == ("deleted", True)

    closed = jira.undo("create_issue", external_id="", key=key, reason="Run cancelled by the incident commander.", idempotency_key="undo-1")
    assert closed.created is True and closed.data == {"key": key, "status": "Done", "status_category": "done"}
    again = jira.undo("create_issue", external_id="", key=key, reason="Run cancelled by the incident commander.", idempotency_key="undo-1")
    assert again.created is False
    done = jira.fetch_objects("task", [key])[key]
    assert (done.details["status_category"], done.is_done) == ("done", True)
    headers = {"Authorization": f"Bearer {issue_pat(sandbox)}"}
    comments = requests.get(f"{sandbox}/jira_dc/rest/api/2/issue/{key}/comment", headers=headers, timeout=5).json()["comments"]
    assert [c["body"] for c in comments] == ["Run cancelled by the incident commander."]


# ---- webhooks ----------------------------------------------------------------------------------------------------------------


def dc_payload(*, timestamp_ms: int | None = None, event: str = "jira:issue_updated") -> bytes:
    issue = {"id": "10500", "key": "OPS-5", "fields": {"summary": "Hook", "status": {"name": "Done", "statusCategory": {"key": "done"}}}}
    body = {"timestamp": timestamp_ms or int(time.time() * 1000), "webhookEvent": event, "issue": issue}
    body["changelog"] = {"items": [{"field": "status", "fromString": "To Do", "toString": "Done"}]}
    return json.dumps(body).encode()


def dc_request(body: bytes, *, url: str = "https://bastion.example/api/webhooks/abc", signature_secret: str | None = None) -> WebhookRequest:
    headers = {"Content-Type": "application/json"}
    if signature_secret is not None:
        headers["X-Hub-Signature"] = "sha256=" + hmac.new(signature_secret.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest("POST", url, headers, body, datetime.now(tz=UTC))


def test_webhook_signed_or_url_token_verification():
    body = dc_payload()
    JiraDataCenterConnector.verify_webhook(dc_request(body, signature_secret=SECRET), secret=SECRET)
    for forged in (dc_request(body, signature_secret="other"), dc_request(body, url=f"https://bastion.example/api/webhooks/abc?token={SECRET}x")):
        with pytest.raises(WebhookRejected) as rejected:
            JiraDataCenterConnector.verify_webhook(forged, secret=SECRET)
        assert rejected.value.status == 401
    # Jira 8–9 cannot sign: the secret in the registered URL's query authenticates instead.
    JiraDataCenterConnector.verify_webhook(dc_request(body, url=f"https://bastion.example/api/webhooks/abc?token={SECRET}"), secret=SECRET)
    with pytest.raises(WebhookRejected) as unsigned:
        JiraDataCenterConnector.verify_webhook(dc_request(body), secret=SECRET)
    assert unsigned.value.status == 400
    with pytest.raises(WebhookRejected) as strict:  # an integration can insist on signatures (Jira 10+)
        JiraDataCenterConnector.verify_webhook(
            dc_request(body, url=f"https://x/api/webhooks/abc?token={SECRET}"), secret=SECRET, config={"webhook_signing": "signed"}
        )
    assert strict.value.status == 400 and strict.value.code == "missing_signature"
    for stale in (
        dc_request(dc_payload(timestamp_ms=1_500_000_000_000), signature_secret=SECRET),
        dc_request(dc_payload(timestamp_ms=1), url=f"https://x/h?token={SECRET}"),
    ):
        with pytest.raises(WebhookRejected) as replayed:
            JiraDataCenterConnector.verify_webhook(stale, secret=SECRET)
        assert replayed.value.status == 409


def test_webhook_parses_to_upsert_and_status_events_keyed_by_the_body_without_an_identifier_header():
    body = dc_payload()
    events = JiraDataCenterConnector.parse_webhook(dc_request(body, signature_secret=SECRET))
    delivery = hashlib.sha256(body).hexdigest()  # a redelivery of the same event has the same body, so the inbox dedupes it
    assert [(e.delivery_id, e.entity, e.external_id, e.action) for e in events] == [
        (delivery, "issues", "10500", "upsert"),
        (f"{delivery}:status", "issues", "10500", "status"),
    ]
    assert events[1].record == {"status": "Done", "status_category": "done", "key": "OPS-5"}


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict, bytes]] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append((self.path, dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        return


@pytest.fixture
def receiver():
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", _Receiver.received
    server.shutdown()


@pytest.mark.parametrize("version", [[10, 3, 1], [9, 12, 4]])
def test_registered_webhook_delivers_a_status_change_that_verifies(jira, sandbox, receiver, version):
    root, received = receiver
    knobs(sandbox, version=version)
    url = f"{root}/api/webhooks/abc"
    jira.register_webhook(url=url, secret="first-secret")
    registered = jira.register_webhook(url=url, secret=SECRET)  # again, with a new secret: replaces the hook
    hooks = requests.get(f"{sandbox}/jira_dc/_sandbox/hooks", timeout=5).json()
    assert len(hooks) == 1 and registered["signed"] is (version[0] >= 10)
    if version[0] >= 10:
        assert hooks[0]["url"] == url and hooks[0]["secret_sha256"] == hashlib.sha256(SECRET.encode()).hexdigest()
    else:
        assert hooks[0]["url"] == f"{url}?token={SECRET}" and hooks[0]["has_secret"] is False

    key = jira.perform("create_issue", {"project_key": "OPS", "summary": "Track me"}, idempotency_key="track").data["key"]
    wait_for(lambda: received, timeout=10, message="the issue_created delivery")
    assert requests.post(f"{sandbox}/jira_dc/_sandbox/transition", json={"issue_key": key, "status": "Done"}, timeout=5).json()["webhooks"] == 1
    wait_for(lambda: len(received) >= 2, timeout=10, message="the issue_updated delivery")
    path, headers, body = received[1]
    assert ("X-Hub-Signature" in headers) is (version[0] >= 10)
    assert (parse_qs(urlsplit(path).query).get("token") == [SECRET]) is (version[0] < 10)
    request = WebhookRequest("POST", f"{root}{path}", headers, body, datetime.now(tz=UTC))
    JiraDataCenterConnector.verify_webhook(request, secret=SECRET)
    status = next(e for e in JiraDataCenterConnector.parse_webhook(request) if e.action == "status")
    assert status.record == {"status": "Done", "status_category": "done", "key": key}
    assert json.loads(body)["issue"]["fields"]["reporter"]["name"] == "jira.admin"  # v2 users: name and key, no accountId


# ---- through the Django layer ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_connect_marks_connected_and_the_catalog_lists_jira_data_center(sandbox, organization, settings, api):
    from integrations.models import CredentialType, IntegrationStatus
    from integrations.services import integration_connect

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True  # the sandbox listens on loopback
    integration = integration_connect(
        organization=organization,
        connector_key="jira_dc",
        credentials={"personal_access_token": issue_pat(sandbox)},
        credential_type=CredentialType.API_KEY,
        base_url=f"{sandbox}/jira_dc",
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    assert integration.external_account_id == f"{sandbox}/jira_dc"
    catalog = {c["key"]: c for c in api.get("/api/connectors").json()}
    entry = catalog["jira_dc"]
    assert entry["name"] == "Jira Data Center" and entry["source"] == "builtin" and entry["connection_status"] == "connected"
    assert [f["name"] for f in entry["credential_fields"]] == ["personal_access_token"]
    assert {e["key"] for e in entry["entities"]} == {"projects", "issues", "users", "fields", "create_metadata"}
    assert "jira" in catalog and catalog["jira"]["connection_status"] == "not_connected"
