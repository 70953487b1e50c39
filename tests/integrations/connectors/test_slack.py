"""Slack connector against the Slack stand-in over real HTTP: reads, actions exactly once, errors, rate limits, Events API."""

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

from integrations.connectors import slack as slack_module
from integrations.connectors.base import TrackedObject, WebhookRequest
from integrations.connectors.slack import SlackConnector, channel_name
from integrations.connectors.slack import actions as slack_actions
from integrations.errors import ApiBadRequest, ApiForbidden, ApiNotFound, ApiUnauthorized, WebhookRejected
from integrations.http import BearerAuth, HttpClient
from tests.conftest import wait_for

FIXTURES = Path(__file__).parent / "fixtures" / "slack"
ALL_SCOPES = list(slack_module.SCOPE_PURPOSES) + list(slack_module.OPTIONAL_SCOPE_PURPOSES)
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def issue_token(sandbox: str, scopes: list[str]) -> str:
    return requests.post(f"{sandbox}/_control/tokens", json={"vendor": "slack", "scopes": scopes}, timeout=5).json()["token"]


def make_connector(sandbox: str, token: str, **config) -> SlackConnector:
    client = HttpClient(f"{sandbox}/slack/api", auth=BearerAuth(token), backoff_base=0.01)
    return SlackConnector(client=client, config={"page_size": 5, **config})


@pytest.fixture
def slack(sandbox) -> SlackConnector:
    return make_connector(sandbox, issue_token(sandbox, ALL_SCOPES))


def channels(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/slack/_sandbox/channels", timeout=5).json()


def created(sandbox: str, kind: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/created", params={"vendor": "slack", "kind": kind}, timeout=5).json()


def api_calls(sandbox: str, method: str) -> list[dict]:
    log = requests.get(f"{sandbox}/_control/requests", params={"vendor": "slack"}, timeout=5).json()
    return [r for r in log if r["path"] == f"/slack/api/{method}"]


def set_faults(sandbox: str, **knobs) -> None:
    requests.put(f"{sandbox}/_control/faults/slack", json=knobs, timeout=5).raise_for_status()


def fail_after_write(sandbox: str, count: int = 1, status: int = 500) -> None:
    requests.put(f"{sandbox}/slack/_sandbox/knobs", json={"fail_after_write": count, "fail_status": status}, timeout=5).raise_for_status()


# ---- connection, discovery, reads ------------------------------------------------------------------


def test_connection_reports_identity_team_and_scopes(slack):
    result = slack.test_connection()
    assert result.ok is True
    assert result.account_id == "T0ACME0001"
    assert result.identity == "bastion @ Acme"
    assert result.scopes == ALL_SCOPES
    assert result.detail["missing_scopes"] == []


def test_connection_names_missing_scopes(sandbox):
    connector = make_connector(sandbox, issue_token(sandbox, ["users:read", "channels:read"]))
    result = connector.test_connection()
    assert result.scopes == ["users:read", "channels:read"]
    assert "chat:write" in result.detail["missing_scopes"]


def test_invalid_token_is_unauthorized(sandbox):
    connector = make_connector(sandbox, "xoxb-not-a-real-token")
    with pytest.raises(ApiUnauthorized) as error:
        connector.test_connection()
    assert error.value.vendor_code == "invalid_auth"


def test_users_read_in_cursor_pages_is_complete(slack, sandbox):
    pages = []
    page = None
    while True:
        result = slack.read("users", page=page)
        pages.append(result.records)
        assert result.is_full_scan is True
        if not result.next_page:
            break
        page = result.next_page
    people = [slack.to_bastion("users", r) for p in pages for r in p]
    assert len(pages) == 5  # 21 members (20 people + the bot) in pages of 5
    assert len(people) == 20 and len({p["external_id"] for p in people}) == 20  # the bot is not a person
    ava = next(p for p in people if p["email"] == "ava.chen@acme.example")
    assert ava["title"] == "Chief Executive Officer" and ava["given_name"] == "Ava" and ava["is_active"] is True
    calls = api_calls(sandbox, "users.list")
    assert len(calls) == 5 and all(c["status"] == 200 for c in calls)


def test_channels_read_includes_private_channels_bastion_is_in(slack):
    records = list(slack.iter_records("channels"))
    names = {r["name"]: slack.to_bastion("channels", r) for r in records}
    assert set(names) == {"general", "random", "security", "exec-team", "incident-response"}
    assert names["exec-team"]["is_private"] is True
    assert names["general"]["member_count"] == 20
    assert names["security"]["topic"] == "Security team"


def test_field_discovery_from_live_members(slack):
    fields = {f.name: f for f in slack.discover_fields("users")}
    assert fields["profile.email"].type == "email"
    assert fields["profile.email"].path == "$.profile.email"
    assert fields["profile.title"].type == "string"
    assert fields["is_admin"].type == "boolean"
    assert "profile.image_24" not in fields


# ---- transformers ------------------------------------------------------------------------------------


def test_to_bastion_person_from_recorded_payload():
    connector = SlackConnector(config={"department_field_id": "Xf06054BBB"})
    person = connector.to_bastion("users", fixture("users_list_member.json"))
    assert person == {
        "external_id": "W012A3CDE",
        "email": "spengler@ghostbusters.example.com",
        "name": "Egon Spengler",
        "given_name": "Egon",
        "family_name": "Spengler",
        "title": "Staff Parapsychologist",
        "department": "Research",
        "phone": "+1 555 0100",
        "manager_external_id": "",
        "groups": [],
        "is_active": True,
        "username": "spengler",
    }
    assert connector.updated_at("users", fixture("users_list_member.json")) == "2017-08-07T20:44:46+00:00"


def test_to_bastion_channel_and_from_bastion_sanitizes_names():
    connector = SlackConnector()
    assert connector.to_bastion("channels", fixture("conversations_list_channel.json")) == {
        "external_id": "C012AB3CD",
        "name": "general",
        "is_private": False,
        "is_archived": False,
        "member_count": 4,
        "topic": "Company-wide announcements and work-based matters",
    }
    assert connector.from_bastion("channels", {"name": "Crisis: Data Breach v2.1 (Sev1)", "is_private": True}) == {
        "name": "crisis-data-breach-v2-1-sev1",
        "is_private": True,
    }
    assert channel_name("Überfall — Café") == "uberfall-cafe"
    assert channel_name("x" * 120) == "x" * 80
    assert channel_name("...") == "bastion"


# ---- actions, exactly once -----------------------------------------------------------------------------


def test_create_channel_twice_with_same_key_makes_one_channel(slack, sandbox):
    first = slack.perform("create_channel", {"name": "Crisis Room 42", "topic": "Sev1 breach"}, idempotency_key="run-1:create_channel")
    second = slack.perform("create_channel", {"name": "Crisis Room 42", "topic": "Sev1 breach"}, idempotency_key="run-1:create_channel")
    assert first.created is True and second.created is False
    assert first.external_id == second.external_id
    assert first.url == f"{sandbox}/slack/archives/{first.external_id}"
    matching = [c for c in channels(sandbox) if c["name"] == "crisis-room-42"]
    assert len(matching) == 1 and matching[0]["topic"]["value"] == "Sev1 breach"
    assert len(created(sandbox, "channel")) == 1
    assert requests.get(first.url, timeout=5).status_code == 200  # the inspector link works


def test_create_channel_survives_a_5xx_after_slack_created_it(slack, sandbox):
    fail_after_write(sandbox)  # Slack creates the channel, then the answer is lost as a 500
    result = slack.perform("create_channel", {"name": "war-room", "is_private": True}, idempotency_key="k")
    assert result.created is False  # found by name after the retried create answered name_taken
    assert [c["id"] for c in channels(sandbox) if c["name"] == "war-room"] == [result.external_id]
    assert len(created(sandbox, "channel")) == 1
    assert [c["status"] for c in api_calls(sandbox, "conversations.create")] == [500, 200]


def test_invite_users_by_email_batches_and_is_idempotent(slack, sandbox, monkeypatch):
    monkeypatch.setattr(slack_actions, "INVITE_BATCH", 3)
    channel = slack.perform("create_channel", {"name": "launch"}, idempotency_key="c").external_id
    emails = ["ava.chen@acme.example", "marcus.okafor@acme.example", "priya.raman@acme.example", "liam.novak@acme.example", "nobody@acme.example"]
    first = slack.perform("invite_users", {"channel": channel, "emails": emails}, idempotency_key="i")
    assert first.created is True
    assert len(first.data["invited"]) == 4 and first.data["not_found"] == ["nobody@acme.example"]
    assert len(api_calls(sandbox, "conversations.invite")) == 2  # 4 people in batches of 3
    again = slack.perform("invite_users", {"channel": channel, "emails": emails}, idempotency_key="i")
    assert again.created is False and {k: again.data[k] for k in ("invited", "not_found")} == {k: first.data[k] for k in ("invited", "not_found")}
    assert sorted(again.data["already_members"]) == sorted(e for e in emails if e != "nobody@acme.example")
    members = next(c for c in channels(sandbox) if c["id"] == channel)["members"]
    assert len(members) == 5 and len(set(members)) == 5  # the bot + 4 people, nobody twice


def test_post_message_with_blocks_exactly_once_under_retries(slack, sandbox):
    channel = slack.perform("create_channel", {"name": "updates"}, idempotency_key="c").external_id
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Sev1* declared"}}]
    fail_after_write(sandbox)  # posted, then a 500: the connector must find it, not post again
    first = slack.perform("post_message", {"channel": channel, "text": "Sev1 declared", "blocks": blocks}, idempotency_key="m1")
    second = slack.perform("post_message", {"channel": channel, "text": "Sev1 declared", "blocks": blocks}, idempotency_key="m1")
    third = slack.perform("post_message", {"channel": channel, "text": "Next update", "blocks": blocks}, idempotency_key="m2")
    assert first.created is True and second.created is False and third.created is True
    assert first.external_id == second.external_id != third.external_id
    messages = next(c for c in channels(sandbox) if c["id"] == channel)["messages"]
    assert [m["text"] for m in messages] == ["Next update", "Sev1 declared"]
    assert messages[1]["blocks"] == blocks
    assert first.url.endswith(f"/archives/{channel}/p{first.external_id.replace('.', '')}")


def test_send_dm_by_email_once(slack, sandbox):
    first = slack.perform("send_dm", {"email": "Emma.Rossi@acme.example", "text": "You own the forensics task"}, idempotency_key="dm1")
    second = slack.perform("send_dm", {"email": "emma.rossi@acme.example", "text": "You own the forensics task"}, idempotency_key="dm1")
    assert first.created is True and second.created is False and first.external_id == second.external_id
    dm = next(c for c in channels(sandbox) if c.get("is_im"))
    assert dm["user"] == first.data["user"] and [m["text"] for m in dm["messages"]] == ["You own the forensics task"]
    with pytest.raises(ApiNotFound):
        slack.perform("send_dm", {"email": "ghost@acme.example", "text": "hi"}, idempotency_key="dm2")


def test_archive_channel_is_idempotent(slack, sandbox):
    channel = slack.perform("create_channel", {"name": "old-room"}, idempotency_key="c").external_id
    assert slack.perform("archive_channel", {"channel": channel}, idempotency_key="a").created is True
    assert slack.perform("archive_channel", {"channel": channel}, idempotency_key="a").created is False
    assert next(c for c in channels(sandbox) if c["id"] == channel)["is_archived"] is True


def test_post_without_history_scope_still_posts(sandbox):
    connector = make_connector(sandbox, issue_token(sandbox, list(slack_module.SCOPE_PURPOSES)))
    general = next(c["id"] for c in channels(sandbox) if c["name"] == "incident-response")
    result = connector.perform("post_message", {"channel": general, "text": "hello"}, idempotency_key="x")
    assert result.created is True
    assert api_calls(sandbox, "conversations.history")[0]["status"] == 200  # answered ok:false missing_scope, HTTP 200


# ---- errors and rate limits -------------------------------------------------------------------------------


def test_ok_false_errors_are_mapped(slack, sandbox):
    with pytest.raises(ApiNotFound) as not_found:
        slack.perform("post_message", {"channel": "C000000000", "text": "x"}, idempotency_key="e1")
    assert not_found.value.vendor_code == "channel_not_found" and not_found.value.status == 200
    with pytest.raises(ApiBadRequest) as bad:
        slack._post("conversations.create", name="Bad Name")
    assert bad.value.vendor_code == "invalid_name_specials"
    narrow = make_connector(sandbox, issue_token(sandbox, ["users:read"]))
    with pytest.raises(ApiForbidden) as forbidden:
        narrow.read("channels")
    assert forbidden.value.vendor_code == "missing_scope"
    assert created(sandbox, "channel") == []


def test_rate_limit_answer_is_waited_out(slack, sandbox):
    set_faults(sandbox, rate_limit_next=1, retry_after=1)
    started = time.monotonic()
    page = slack.read("channels")
    assert len(page.records) == 5
    assert time.monotonic() - started >= 1.0  # honoured Retry-After
    assert [c["status"] for c in api_calls(sandbox, "conversations.list")] == [429, 200]


def test_rate_limited_create_is_sent_again_without_duplicates(slack, sandbox):
    channel = next(c["id"] for c in channels(sandbox) if c["name"] == "incident-response")
    set_faults(sandbox, rate_limit_next=2, retry_after=1)  # history lookup and then the post itself are throttled once each
    result = slack.perform("post_message", {"channel": channel, "text": "throttled"}, idempotency_key="t")
    assert result.created is True
    messages = next(c for c in channels(sandbox) if c["id"] == channel)["messages"]
    assert [m["text"] for m in messages] == ["throttled"]


# ---- Events API ------------------------------------------------------------------------------------------------


def signed_request(
    body: bytes, *, secret: str = SECRET, timestamp: int | None = None, received_at: datetime | None = None, headers: dict | None = None
) -> WebhookRequest:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    base_headers = {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature, "Content-Type": "application/json"}
    return WebhookRequest(
        "POST", "https://bastion.example/webhooks/slack", headers if headers is not None else base_headers, body, received_at or datetime.now(tz=UTC)
    )


def test_webhook_signature_accepted_rejected_stale_and_missing():
    body = (FIXTURES / "event_channel_archive.json").read_bytes()
    SlackConnector.verify_webhook(signed_request(body), secret=SECRET)
    with pytest.raises(WebhookRejected) as wrong:
        SlackConnector.verify_webhook(signed_request(body, secret="another-secret"), secret=SECRET)
    assert wrong.value.status == 401
    with pytest.raises(WebhookRejected) as tampered:
        good = signed_request(body)
        SlackConnector.verify_webhook(WebhookRequest(good.method, good.url, good.headers, body + b" ", good.received_at), secret=SECRET)
    assert tampered.value.status == 401
    with pytest.raises(WebhookRejected) as stale:
        SlackConnector.verify_webhook(signed_request(body, timestamp=int(time.time()) - 301), secret=SECRET)
    assert stale.value.status == 409
    with pytest.raises(WebhookRejected) as missing:
        SlackConnector.verify_webhook(signed_request(body, headers={"X-Slack-Request-Timestamp": str(int(time.time()))}), secret=SECRET)
    assert missing.value.status == 400


def test_url_verification_handshake():
    events = SlackConnector.parse_webhook(signed_request((FIXTURES / "url_verification.json").read_bytes()))
    assert len(events) == 1
    assert events[0].challenge_response == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_event_callbacks_become_bastion_events():
    archive = SlackConnector.parse_webhook(signed_request((FIXTURES / "event_channel_archive.json").read_bytes()))
    assert [(e.delivery_id, e.entity, e.external_id, e.action, e.record["status"]) for e in archive] == [
        ("Ev0PV52K21", "channels", "C024BE91L", "status", "archived")
    ]
    assert archive[0].occurred_at == datetime.fromtimestamp(1525215129, tz=UTC)
    joined = SlackConnector.parse_webhook(signed_request((FIXTURES / "event_member_joined_channel.json").read_bytes()))
    assert [(e.delivery_id, e.entity, e.external_id, e.action, e.record["user"]) for e in joined] == [
        ("Ev0PV52K22", "channels", "C0698JE0H", "sync", "W06GH7XHN")
    ]
    change = SlackConnector.parse_webhook(signed_request((FIXTURES / "event_user_change.json").read_bytes()))
    assert [(e.delivery_id, e.entity, e.external_id, e.action) for e in change] == [("Ev0PV52K23", "users", "W012A3CDE", "upsert")]
    assert SlackConnector().to_bastion("users", change[0].record)["title"] == "Chief Parapsychologist"
    with pytest.raises(WebhookRejected) as invalid:
        SlackConnector.parse_webhook(signed_request(b"not json"))
    assert invalid.value.status == 400


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        return


@pytest.fixture
def receiver():
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/slack", _Receiver.received
    server.shutdown()


def test_sandbox_archive_delivers_a_signed_event_over_http(slack, sandbox, receiver):
    url, received = receiver
    requests.post(f"{sandbox}/slack/_sandbox/event_subscriptions", json={"url": url, "signing_secret": SECRET}, timeout=5).raise_for_status()
    channel = slack.perform("create_channel", {"name": "to-archive"}, idempotency_key="c").external_id
    answer = requests.post(f"{sandbox}/slack/_sandbox/archive_channel", json={"channel": channel}, timeout=5).json()
    wait_for(lambda: received, timeout=10, message="the Slack event delivery")
    headers, body = received[0]
    request = WebhookRequest("POST", url, headers, body, datetime.now(tz=UTC))
    SlackConnector.verify_webhook(request, secret=SECRET)
    with pytest.raises(WebhookRejected):
        SlackConnector.verify_webhook(request, secret="wrong")
    [event] = SlackConnector.parse_webhook(request)
    assert (event.delivery_id, event.external_id, event.action, event.record["status"]) == (answer["event_id"], channel, "status", "archived")


# ---- through the Django layer ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_integration_connect_and_test_store_the_team_id(sandbox, organization, settings):
    from integrations.models import CredentialType, IntegrationStatus
    from integrations.services import integration_connect

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True  # the sandbox listens on loopback
    integration = integration_connect(
        organization=organization,
        connector_key="slack",
        credentials={"access_token": issue_token(sandbox, ALL_SCOPES)},
        credential_type=CredentialType.API_KEY,
        base_url=f"{sandbox}/slack/api",
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED
    assert integration.external_account_id == "T0ACME0001"


def test_post_of_a_never_tried_key_skips_the_history_scan_and_stays_exactly_once(slack, sandbox):
    channel = slack.perform("create_channel", {"name": "fresh-posts"}, idempotency_key="c").external_id
    fail_after_write(sandbox)  # posted, then a 500: even a known-new post must look before sending again
    first = slack.perform("post_message", {"channel": channel, "text": "Sev2 declared"}, idempotency_key="new-1", known_new=True)
    assert first.created is True
    assert len(api_calls(sandbox, "conversations.history")) == 1  # only the recovery search after the 500, no scan before the post
    assert [c["status"] for c in api_calls(sandbox, "chat.postMessage")] == [500]
    clean = slack.perform("post_message", {"channel": channel, "text": "Next update"}, idempotency_key="new-2", known_new=True)
    assert clean.created is True and len(api_calls(sandbox, "conversations.history")) == 1
    # A retry of the same key (not known new any more) scans and finds it.
    again = slack.perform("post_message", {"channel": channel, "text": "Sev2 declared"}, idempotency_key="new-1")
    assert again.created is False and again.external_id == first.external_id
    messages = next(c for c in channels(sandbox) if c["id"] == channel)["messages"]
    assert sorted(m["text"] for m in messages) == ["Next update", "Sev2 declared"]


# ---- tracked objects: status polling and undo ----------------------------------------------------------------


def test_fetch_objects_reads_archive_state_and_undo_archives_once(slack, sandbox):
    channel = slack.perform("create_channel", {"name": "crisis-undo-me"}, idempotency_key="c").external_id
    shape = slack.fetch_objects("slack_channel", [channel])[channel]
    assert (shape.title, shape.status, shape.is_done) == ("#crisis-undo-me", "active", False)

    undone = slack.undo("create_channel", external_id=channel, reason="The activation was cancelled.", idempotency_key="undo-c")
    assert undone.created and undone.data == {"is_archived": True}
    stored = next(c for c in channels(sandbox) if c["id"] == channel)
    assert stored["is_archived"] and [m["text"] for m in stored["messages"]] == ["The activation was cancelled."]
    archived = slack.fetch_objects("channel", [channel])[channel]
    assert (archived.status, archived.is_done) == ("archived", True)
    # Again (a redelivered task): no second note, Slack's already_archived counts as undone.
    again = slack.undo("create_channel", external_id=channel, reason="The activation was cancelled.", idempotency_key="undo-c")
    assert not again.created
    assert len(next(c for c in channels(sandbox) if c["id"] == channel)["messages"]) == 1
    # A channel Slack no longer knows reads as deleted, and undoing it has nothing left to do.
    assert slack.fetch_objects("slack_channel", ["CNOPE"]) == {"CNOPE": TrackedObject(status="deleted", is_done=True)}
    assert slack.undo("create_channel", external_id="CNOPE", idempotency_key="undo-x").data == {"status": "deleted"}
    with pytest.raises(KeyError):
        slack.fetch_objects("message", ["123.4"])


def test_archiving_through_the_api_tells_subscribed_apps_like_slack(slack, sandbox, receiver):
    url, received = receiver
    requests.post(f"{sandbox}/slack/_sandbox/event_subscriptions", json={"url": url, "signing_secret": SECRET}, timeout=5).raise_for_status()
    channel = slack.perform("create_channel", {"name": "crisis-archived-event"}, idempotency_key="e").external_id
    slack.perform("archive_channel", {"channel": channel}, idempotency_key="a")
    wait_for(lambda: received, timeout=10, message="the channel_archive event")
    headers, body = received[0]
    [event] = SlackConnector.parse_webhook(WebhookRequest("POST", url, headers, body, datetime.now(tz=UTC)))
    assert (event.event_type, event.external_id, event.record["status"]) == ("channel_archive", channel, "archived")
