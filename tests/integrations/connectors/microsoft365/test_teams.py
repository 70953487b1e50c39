"""Teams over real HTTP against the stand-in: channels created once (by name), people added by directory identity, the
briefing posted once as an Adaptive Card, reads for the forms and the people merge, tracked channels and undo."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations.connectors.microsoft365 import Microsoft365Connector
from integrations.connectors.microsoft365.cards import CARD_CONTENT_TYPE
from integrations.connectors.microsoft365.manifest import OPTIONAL_SCOPE_PURPOSES, SCOPE_PURPOSES
from integrations.connectors.microsoft365.teams import channel_display_name, rendered_channel_name, successor_name
from integrations.errors import ApiNotFound
from integrations.models import CredentialType, DataSource, IntegrationStatus
from integrations.services import integration_connect
from people.models import Person
from sync.models import DataSyncJob
from sync.services import sync_start
from tests.integrations.connectors.microsoft365.test_connection import (
    SIGNED_IN,
    TENANT_ID,
    app_connector,
    delegated_connector,
    graph_client,
    sign_in,
    team_id,
)

BRIEFING = "*SEV1: Customer data exposed*\nIncident commander: Amara Nwosu\n\nWar room: https://bastion.example/runs/42"
STAKEHOLDERS = ["emma.rossi@acme.example", "Noah.Fischer@acme.example", "ghost@nowhere.example", "omar.haddad@acme.example"]


@pytest.fixture
def teams(sandbox):
    """A signed-in delegate who consented to everything, the optional message check included, on the response team."""
    connector = delegated_connector(sandbox, sign_in(sandbox, (*SCOPE_PURPOSES, *OPTIONAL_SCOPE_PURPOSES)))
    connector.config["team_id"] = team_id(connector)
    return connector


def messages(connector, channel_id: str) -> list[dict]:
    return connector.graph("GET", connector._channel_path(channel_id, "/messages"), params={"$top": 50})["value"]


def test_channel_names_follow_teams_rules():
    assert channel_display_name("Crisis: data/breach #42?") == "Crisis- data-breach -42"
    assert channel_display_name("_.hidden.") == "hidden"
    assert len(channel_display_name("x" * 80)) == 50
    assert rendered_channel_name("###") == "Bastion channel"
    assert rendered_channel_name({"name": "SEV1 | login outage"}) == "SEV1 - login outage"
    assert channel_display_name("v2...final") == "v2.final"
    assert successor_name("x" * 50, 3) == "x" * 48 + "-3" and successor_name("inc", 1) == "inc"


def test_create_channel_once_by_name(teams):
    first = teams.perform("create_channel", {"name": "inc-2041 data breach", "topic": "SEV1\nexposure", "is_private": False}, idempotency_key="run-1:create")
    assert first.created and first.external_id.startswith("19:") and first.link_text == "#inc-2041 data breach"
    assert first.tracked.title == "#inc-2041 data breach" and first.url.startswith("https://teams.microsoft.com/")
    again = teams.perform("create_channel", {"name": "inc-2041 data breach", "is_private": False}, idempotency_key="run-1:create")
    assert not again.created and again.external_id == first.external_id
    named = [c for c in teams._channels() if c["displayName"] == "inc-2041 data breach"]
    assert len(named) == 1 and named[0]["description"] == "SEV1 exposure"  # one line, as Teams shows descriptions


def test_private_channel_with_application_permissions_gets_the_organizer_as_owner(sandbox):
    connector = app_connector(sandbox)
    connector.config["team_id"] = team_id(connector)
    result = connector.perform("create_channel", {"name": "inc-legal-private", "is_private": True}, idempotency_key="run-2:create", known_new=True)
    assert result.created and result.data["membership_type"] == "private"
    owners = [m for m in connector.graph("GET", connector._channel_path(result.external_id, "/members"))["value"] if "owner" in m["roles"]]
    assert [m["email"] for m in owners] == ["amara.nwosu@acme.example"]


def test_invite_adds_team_members_by_directory_identity_and_counts_the_unknown(teams):
    channel = teams.perform("create_channel", {"name": "inc-invite", "is_private": False}, idempotency_key="run-3:create")
    result = teams.perform("invite_users", {"channel": channel.external_id, "emails": STAKEHOLDERS}, idempotency_key="run-3:invite")
    assert result.summary == "3 invited, 1 not found" and result.data["not_found"] == ["ghost@nowhere.example"]
    assert result.data["scope"] == "team"
    members = {m["email"]: m for m in teams.graph("GET", teams._team("/members"))["value"]}
    assert {"emma.rossi@acme.example", "noah.fischer@acme.example", "omar.haddad@acme.example"} <= set(members)
    assert members["omar.haddad@acme.example"]["roles"] == []  # never an owner
    again = teams.perform("invite_users", {"channel": "#inc-invite", "emails": STAKEHOLDERS}, idempotency_key="run-3:invite")
    assert again.summary == result.summary and again.external_id == channel.external_id  # a channel named, not only its id
    assert len(teams.graph("GET", teams._team("/members"))["value"]) == len(members)


def test_invite_to_a_private_channel_adds_channel_members(teams):
    channel = teams.perform("create_channel", {"name": "inc-private", "is_private": True}, idempotency_key="run-4:create")
    result = teams.perform("invite_users", {"channel": channel.external_id, "emails": ["omar.haddad@acme.example"]}, idempotency_key="run-4:invite")
    assert result.data["scope"] == "channel" and result.summary == "1 invited"
    emails = {m["email"] for m in teams.graph("GET", teams._channel_path(channel.external_id, "/members"))["value"]}
    assert "omar.haddad@acme.example" in emails


def test_briefing_is_posted_once_as_an_adaptive_card(teams):
    channel = teams.perform("create_channel", {"name": "inc-post", "is_private": False}, idempotency_key="run-5:create")
    posted = teams.perform("post_message", {"channel": channel.external_id, "text": BRIEFING}, idempotency_key="run-5:post")
    assert posted.created and posted.link_text == "Briefing posted" and posted.external_id
    again = teams.perform("post_message", {"channel": channel.external_id, "text": BRIEFING}, idempotency_key="run-5:post")
    assert not again.created and again.external_id == posted.external_id
    [message] = messages(teams, channel.external_id)
    [attachment] = message["attachments"]
    assert attachment["contentType"] == CARD_CONTENT_TYPE
    card = json.loads(attachment["content"])
    texts = [block["text"] for block in card["body"]]
    assert texts[0] == "SEV1: Customer data exposed" and card["body"][0]["weight"] == "Bolder"
    assert "[https://bastion.example/runs/42](https://bastion.example/runs/42)" in texts[-1]


def test_notification_is_marked_important(teams):
    channel = teams.perform("create_channel", {"name": "inc-notify", "is_private": False}, idempotency_key="run-6:create")
    sent = teams.perform("send_notification", {"channel": channel.external_id, "text": "Bridge moved to 15:00", "title": "Update"}, idempotency_key="run-6:n")
    assert sent.created and sent.link_text == "Notification sent"
    [message] = messages(teams, channel.external_id)
    assert message["importance"] == "high"


def test_teams_meeting_is_created_or_got_again_by_key(teams):
    payload = {"subject": "War room: data breach", "start": "2030-01-07T15:00:00Z", "end": "2030-01-07T16:00:00Z", "attendees": STAKEHOLDERS[:2]}
    first = teams.perform("create_online_meeting", payload, idempotency_key="run-7:meeting")
    assert first.created and first.url.startswith("https://teams.microsoft.com/l/meetup-join/")
    again = teams.perform("create_online_meeting", payload, idempotency_key="run-7:meeting")
    assert not again.created and again.external_id == first.external_id and again.url == first.url


def test_reads_channels_and_members_for_the_forms_and_the_people_merge(teams):
    teams.perform("create_channel", {"name": "inc-read", "is_private": False}, idempotency_key="run-8:create")
    page = teams.read("channels")
    channels = [teams.to_bastion("channels", r) for r in page.records]
    assert {"General", "inc-read"} <= {c["name"] for c in channels} and all(c["external_id"].startswith("19:") for c in channels)
    members = []
    position = None
    while True:
        page = teams.read("members", page=position)
        members += [teams.to_bastion("members", r) for r in page.records]
        position = page.next_page
        if position is None:
            break
    directory = {u["mail"]: u["id"] for u in teams.graph("GET", "users", params={"$top": 999})["value"]}
    amara = next(m for m in members if m["email"] == "amara.nwosu@acme.example")
    assert amara["external_id"] == directory["amara.nwosu@acme.example"]  # the Entra id: merges with the directory's person
    with pytest.raises(ApiNotFound):
        teams.read("chats")


def test_undo_archives_the_channel_and_the_poll_sees_it(sandbox, teams):
    channel = teams.perform("create_channel", {"name": "inc-undo", "is_private": False}, idempotency_key="run-9:create")
    assert teams.fetch_objects("channel", [channel.external_id])[channel.external_id].status == "active"
    undone = teams.undo("create_channel", external_id=channel.external_id, reason="Run cancelled", idempotency_key="run-9:undo")
    assert undone.tracked.is_done and undone.tracked.status == "archived"
    state = teams.fetch_objects("channel", [channel.external_id])[channel.external_id]
    assert state.status == "archived" and state.is_done and state.title == "#inc-undo"
    admin = app_connector(sandbox, team_id=teams.config["team_id"])  # someone deletes it in Teams (the application may)
    admin.graph("DELETE", admin._channel_path(channel.external_id))
    assert teams.fetch_objects("channel", [channel.external_id])[channel.external_id].status == "deleted"
    gone = teams.undo("create_channel", external_id=channel.external_id, reason="", idempotency_key="run-9:undo")
    assert not gone.created and gone.tracked.status == "deleted"


def test_a_new_activation_after_an_undo_takes_the_next_name(teams):
    first = teams.perform("create_channel", {"name": "inc-again", "is_private": False}, idempotency_key="run-11:create")
    teams.undo("create_channel", external_id=first.external_id, reason="Run cancelled", idempotency_key="run-11:undo")
    for known_new in (False, True):  # whether or not Bastion looks first, the archived channel is never reused
        second = teams.perform("create_channel", {"name": "inc-again", "is_private": False}, idempotency_key="run-12:create", known_new=known_new)
        assert second.external_id != first.external_id and second.link_text == "#inc-again-2"
    assert second.created is False  # the second call found the first's channel


class WebhookReceiver(BaseHTTPRequestHandler):
    """A Teams incoming webhook: takes the message and answers 202 with no body, as Workflows webhooks do."""

    received: list[tuple[dict[str, str], dict]] = []

    def do_POST(self):  # noqa: N802 - the http.server hook's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append((dict(self.headers), json.loads(body)))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        return


def test_application_posts_through_the_incoming_webhook_without_the_graph_token(sandbox):
    server = ThreadingHTTPServer(("127.0.0.1", 0), WebhookReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    WebhookReceiver.received = []
    try:
        credentials = {"tenant_id": TENANT_ID, "client_id": "bastion-app", "client_secret": "sandbox-app-secret"}
        credentials["incoming_webhook_url"] = f"http://127.0.0.1:{server.server_port}/workflows/hook"
        connector = Microsoft365Connector(client=graph_client(sandbox), config={"tenant_id": TENANT_ID, "organizer": SIGNED_IN}, credentials=credentials)
        connector.test_connection()  # the Graph token is fetched: it must still never reach the webhook's host
        result = connector.perform("post_message", {"channel": "19:x@thread.tacv2", "text": BRIEFING}, idempotency_key="run-10:post")
    finally:
        server.shutdown()
    assert result.data == {"via": "incoming_webhook"} and "through the incoming webhook" in result.summary
    [(headers, message)] = WebhookReceiver.received
    assert not {k.lower() for k in headers} & {"authorization", "cookie"}
    [attachment] = message["attachments"]
    assert attachment["contentType"] == CARD_CONTENT_TYPE and attachment["content"]["type"] == "AdaptiveCard"
    assert attachment["content"]["body"][0]["text"] == "SEV1: Customer data exposed"


def synced(django_capture_on_commit_callbacks, integration, entity: str) -> DataSyncJob:
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(data_source=DataSource.objects.get(integration=integration, entity_type=entity))
    return DataSyncJob.objects.get(pk=job.pk)


@pytest.mark.django_db
def test_team_members_merge_with_directory_people_by_email(sandbox, organization, django_capture_on_commit_callbacks):
    entra = integration_connect(
        organization=organization,
        connector_key="entra",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"client_id": "bastion-demo", "client_secret": "entra-secret"},
        config={"tenant_id": "acme-tenant", "login_base_url": f"{sandbox}/entra"},
        base_url=f"{sandbox}/entra/v1.0",
    )
    token = sign_in(sandbox)
    team = team_id(delegated_connector(sandbox, token))
    m365 = integration_connect(
        organization=organization,
        connector_key="microsoft365",
        credential_type=CredentialType.OAUTH,
        credentials=token,
        config={"tenant_id": TENANT_ID, "team_id": team},
        base_url=f"{sandbox}/microsoft365",
    )
    for integration in (entra, m365):
        integration.refresh_from_db()
        assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    assert synced(django_capture_on_commit_callbacks, entra, "users").status == "succeeded"
    people_before = Person.objects.filter(organization=organization).count()
    job = synced(django_capture_on_commit_callbacks, m365, "members")
    assert job.status == "succeeded"
    assert Person.objects.filter(organization=organization).count() == people_before  # every member is a directory person
    amara = Person.objects.get(organization=organization, email=SIGNED_IN)
    assert {identity.source for identity in amara.identities.all()} == {"entra", "microsoft365"}
