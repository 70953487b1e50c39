"""Delta queries, the backstop of change notifications, over real HTTP: events, channel messages and drive items read in
full then incrementally from the stored deltaLink, deletions from @removed, expired and foreign links handled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from integrations.connectors.base import Page
from integrations.errors import ApiBadRequest
from tests.integrations.connectors.microsoft365.test_subscriptions import ORGANIZER, connector_for, graph, m365_integration


def read_round(connector: Any, entity: str, cursor: Any = None) -> tuple[list[dict], list[str], Any, list[Page]]:
    """Every page of one delta round: records, deleted ids, the new cursor, the pages."""
    pages: list[Page] = []
    page_state = None
    while True:
        page = connector.read_delta(entity, cursor=cursor, page=page_state)
        pages.append(page)
        if page.next_page is None:
            break
        assert page.cursor is None  # the cursor moves only once the round is complete
        page_state = page.next_page
    records = [r for p in pages for r in p.records]
    deleted = [i for p in pages for i in p.deleted_ids]
    return records, deleted, pages[-1].cursor, pages


def event_body(subject: str, days: int = 2) -> dict:
    start = (datetime.now(UTC) + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    return {
        "subject": subject,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": "liam.novak@acme.example"}, "type": "required"}],
    }


@pytest.fixture
def integration(sandbox, organization):
    return m365_integration(sandbox, organization)


@pytest.mark.django_db
def test_events_full_round_then_changes_and_deletions_from_the_delta_link(sandbox, integration):
    connector = connector_for(integration)
    first = graph(connector, "POST", f"users/{ORGANIZER}/events", json=event_body("War room: delta one"))
    records, deleted, cursor, pages = read_round(connector, "events")
    assert first["id"] in {r["id"] for r in records} and deleted == []
    assert not any(p.is_full_scan for p in pages)  # a calendarView window is not every event: no deletion by absence
    assert cursor.startswith(f"{sandbox}/microsoft365/v1.0/") and "deltatoken" in cursor.lower()

    second = graph(connector, "POST", f"users/{ORGANIZER}/events", json=event_body("War room: delta two", days=3))
    graph(connector, "DELETE", f"users/{ORGANIZER}/events/{first['id']}")
    records, deleted, next_cursor, pages = read_round(connector, "events", cursor)
    assert [r["id"] for r in records] == [second["id"]] and deleted == [first["id"]]
    assert not any(p.is_full_scan for p in pages) and next_cursor != cursor


@pytest.mark.django_db
def test_attendee_responses_read_by_delta_become_the_meetings_state(sandbox, integration):
    connector = connector_for(integration)
    event = graph(connector, "POST", f"users/{ORGANIZER}/events", json=event_body("War room: responses"))
    _, _, cursor, _ = read_round(connector, "events")
    requests.post(
        f"{sandbox}/microsoft365/_control/events/{event['id']}/respond", json={"email": "liam.novak@acme.example", "response": "declined"}, timeout=10
    ).raise_for_status()
    records, _, _, _ = read_round(connector, "events", cursor)
    (changed,) = records
    state = type(connector).tracked_state("events", changed, config=integration.config)
    assert state is not None and not state.is_done
    assert state.details["attendees"] == [{"email": "liam.novak@acme.example", "response": "declined"}]


@pytest.mark.django_db
def test_an_expired_delta_link_starts_a_full_round_again(sandbox, integration):
    connector = connector_for(integration)
    graph(connector, "POST", f"users/{ORGANIZER}/events", json=event_body("War room: kept"))
    expired = f"{sandbox}/microsoft365/v1.0/users/{ORGANIZER}/calendarView/delta?$deltatoken=expired-state"
    records, _, cursor, pages = read_round(connector, "events", expired)
    assert records and cursor != expired and "expired-state" not in cursor


@pytest.mark.django_db
def test_links_to_another_host_are_never_followed(integration):
    connector = connector_for(integration)
    with pytest.raises(ApiBadRequest, match="another host"):
        connector.read_delta("events", cursor="https://attacker.example/v1.0/users/x/calendarView/delta?$deltatoken=1")
    with pytest.raises(ApiBadRequest, match="another host"):
        connector.read_delta("events", page={"next": "http://169.254.169.254/latest/meta-data"})


@pytest.mark.django_db
def test_channel_messages_per_channel_with_one_cursor(sandbox, integration):
    connector = connector_for(integration)
    team = connector.config_choices("team_id")[0][0]
    integration.config = {**integration.config, "team_id": team}
    integration.save(update_fields=["config"])
    connector = connector_for(integration)
    channels = graph(connector, "GET", f"teams/{team}/channels").get("value") or []
    assert channels
    general = channels[0]["id"]

    def say(text: str) -> dict:
        answer = requests.post(
            f"{sandbox}/microsoft365/_control/channels/{general}/messages", json={"from": "liam.novak@acme.example", "text": text}, timeout=10
        )
        answer.raise_for_status()
        return answer.json()

    hello = say("Status: containment under way")
    records, _, cursor, _ = read_round(connector, "channel_messages")
    assert hello["id"] in {r["id"] for r in records}
    assert set(cursor["links"]) == {c["id"] for c in channels}  # one deltaLink per channel, in one cursor
    later = say("Status: contained")
    records, deleted, _, pages = read_round(connector, "channel_messages", cursor)
    assert [r["id"] for r in records] == [later["id"]] and deleted == []
    assert records[0]["channelIdentity"]["channelId"] == general and not any(p.is_full_scan for p in pages)


@pytest.mark.django_db
def test_drive_items_of_the_documents_drive(sandbox, integration):
    connector = connector_for(integration)
    sites = graph(connector, "GET", "sites", params={"search": "Legal"}).get("value") or []
    drive = (graph(connector, "GET", f"sites/{sites[0]['id']}/drives").get("value") or [])[0]["id"]
    integration.config = {**integration.config, "documents_drive_id": drive}
    integration.save(update_fields=["config"])
    connector = connector_for(integration)
    records, deleted, cursor, pages = read_round(connector, "drive_items")
    names = {r.get("name") for r in records}
    assert all(p.is_full_scan for p in pages)  # the first round lists the whole drive: what it misses was deleted
    assert "Breach notification template.docx" in names and deleted == [] and cursor
    template = next(r for r in records if r.get("name") == "Press holding statement.docx")
    graph(connector, "DELETE", f"drives/{drive}/items/{template['id']}")
    records, deleted, _, _ = read_round(connector, "drive_items", cursor)
    assert template["id"] in deleted


@pytest.mark.django_db(transaction=True)
def test_the_sync_engine_reads_events_through_delta(sandbox, integration):
    from sync.models import DataSyncJob, JobStatus, SyncRecord
    from sync.services.jobs import data_sources_ensure, sync_start

    connector = connector_for(integration)
    event = graph(connector, "POST", f"users/{ORGANIZER}/events", json=event_body("War room: synced"))
    source = next(s for s in data_sources_ensure(integration=integration) if s.entity_type == "events")
    job = sync_start(data_source=source, full_refresh=True)
    assert DataSyncJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED
    assert SyncRecord.objects.filter(integration=integration, entity_type="events", external_id=event["id"]).exists()
    source.refresh_from_db()
    assert "deltatoken" in str(source.cursor).lower()  # the deltaLink is the stored incremental cursor


@pytest.mark.django_db(transaction=True)
def test_a_drive_notification_runs_delta_and_the_deleted_document_leaves_the_records(sandbox, live_server, organization, settings):
    """OneDrive says only "the root changed": Bastion's answer is an incremental delta run, which finds the deletion."""
    from sync.models import DeliveryStatus, SyncRecord, WebhookDelivery
    from sync.services.jobs import data_sources_ensure, sync_start
    from tests.conftest import wait_for
    from tests.integrations.connectors.microsoft365.test_subscriptions import registered

    settings.BASTION_PUBLIC_URL = live_server.url
    probe = connector_for(m365_integration(sandbox, organization))
    site = (graph(probe, "GET", "sites", params={"search": "Legal"}).get("value") or [])[0]["id"]
    drive = (graph(probe, "GET", f"sites/{site}/drives").get("value") or [])[0]["id"]
    integration = m365_integration(sandbox, organization, documents_drive_id=drive)
    source = next(s for s in data_sources_ensure(integration=integration) if s.entity_type == "drive_items")
    sync_start(data_source=source, full_refresh=True)
    template = SyncRecord.objects.get(integration=integration, entity_type="drive_items", data__name="Press holding statement.docx")
    registered(integration)

    graph(connector_for(integration), "DELETE", f"drives/{drive}/items/{template.external_id}")
    delivery = wait_for(
        lambda: WebhookDelivery.objects.filter(integration=integration, event_types=["drive_items.updated"], status=DeliveryStatus.PROCESSED).first(),
        message="the drive notification processed",
    )
    assert delivery.events[0]["action"] == "sync" and delivery.result["syncs"]
    template.refresh_from_db()
    assert template.is_deleted is True
