"""After an erasure, records that merely mention the erased person (a deal's stakeholder, a colleague's notes) are stored with "[erased]"."""

from __future__ import annotations

import hmac
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from integrations.connectors.hubspot import HubSpotConnector
from integrations.models import Integration
from people.models import Person, SuppressedIdentity
from sync.models import JobStatus, SyncJobLog, SyncRecord
from sync.services.records import content_hash, records_upsert
from tests.data_rights.test_suppression import EMAIL, erase, people_source, plaintext_anywhere
from tests.sync.conftest import directory_control

pytestmark = pytest.mark.django_db

COLLEAGUE = "p000010"  # Sandbox Directory: someone else, whose record will mention her
OTHER = "ava.chen@acme.example"


@pytest.fixture
def admin_api(api_for, users_by_role):
    return api_for(users_by_role[Role.ADMIN])


@pytest.fixture
def synced(make_directory, organization, run_sync):
    directory = make_directory(organization)
    assert run_sync(people_source(directory)).status == JobStatus.SUCCEEDED
    return directory


def hubspot_in(organization) -> tuple[Integration, HubSpotConnector]:
    """A HubSpot integration row and the real connector (its transform, ids and times; no HTTP is needed to upsert)."""
    integration = Integration.objects.create(organization=organization, connector_key="hubspot", display_name="HubSpot")
    return integration, HubSpotConnector(config={})


def deal(deal_id: str, *, stakeholders: list[str], name: str, notes: list | None = None) -> dict:
    """A deal as the HubSpot connector reads it (see tests/integrations/connectors/fixtures/hubspot/deal.json)."""
    return {
        "id": deal_id,
        "properties": {"dealname": name, "amount": "1000", "dealstage": "contractsent", "hs_lastmodifieddate": "2025-03-02T10:11:12.345Z"},
        "updatedAt": "2025-03-02T10:11:12.345Z",
        "_bastion": {"stakeholder_emails": stakeholders, "owner_email": OTHER, "notes": notes or []},
    }


class DigestCounter:
    """Counts HMAC computations (the suppression check's only per-value cost) while delegating to the real hmac.digest."""

    def __init__(self) -> None:
        self.calls, self._digest = 0, hmac.digest

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self._digest(*args, **kwargs)


def test_a_resync_stores_a_colleagues_record_with_her_address_redacted(synced, organization, admin_api, run_sync, sandbox):
    erase(admin_api, organization)
    # Her address reappears inside a colleague's record: in a longer string, nested, in another case, as a key.
    directory_control(
        sandbox,
        "/_control/people",
        id=COLLEAGUE,
        title="Covering for Emma.Rossi@ACME.example until May",
        delegates=[{"contact": {"email": EMAIL.upper()}}, {"contact": {"email": OTHER}}],
        notes={"mailto:emma.rossi@acme.example": "ask <emma.rossi@acme.example>, cc ava.chen@acme.example"},
    )

    job = run_sync(people_source(synced), full_refresh=True)

    assert job.status == JobStatus.SUCCEEDED and job.updated_count == 1
    assert job.metadata == {"suppressed": 1, "mentions_redacted": 4}  # she is still in the source: skipped; her colleague kept
    lines = [line.message for line in SyncJobLog.objects.filter(job=job, event="records.mentions_redacted")]
    assert lines == ["4 mentions of erased data subjects redacted."]
    record = SyncRecord.objects.get(integration=synced, external_id=COLLEAGUE)
    assert record.raw["title"] == record.data["title"] == "Covering for [erased] until May"
    assert record.raw["delegates"] == [{"contact": {"email": "[erased]"}}, {"contact": {"email": OTHER}}]
    assert record.raw["notes"] == {"mailto:[erased]": "ask <[erased]>, cc ava.chen@acme.example"}
    assert record.content_hash == content_hash(record.raw)
    assert Person.objects.get(organization=organization, identities__external_id=COLLEAGUE).title == "Covering for [erased] until May"
    assert plaintext_anywhere(EMAIL) == []

    # The redacted record hashes the same every run: the next sync finds nothing changed and still stores no address.
    again = run_sync(people_source(synced), full_refresh=True)
    assert again.status == JobStatus.SUCCEEDED and (again.updated_count, again.created_count) == (0, 0)
    assert again.metadata == {"suppressed": 1, "mentions_redacted": 4}
    assert plaintext_anywhere(EMAIL) == []


def test_the_write_path_stores_mentions_redacted(synced, organization, admin_api, settings):
    erase(admin_api, organization)
    integration, connector = hubspot_in(organization)
    records = [
        deal(
            "9001",
            stakeholders=[OTHER, "EMMA.ROSSI@acme.example"],
            name="Falcon: call emma.rossi@acme.example first",
            notes=[{"from": {"email": EMAIL.title()}}],
        ),
        deal("9002", stakeholders=[OTHER], name="Heron"),
    ]

    result = records_upsert(integration=integration, entity_type="deals", records=records, connector=connector)

    assert result.created == 2
    falcon = SyncRecord.objects.get(integration=integration, external_id="9001")
    assert falcon.raw["properties"]["dealname"] == "Falcon: call [erased] first"
    assert falcon.raw["_bastion"] == {"stakeholder_emails": [OTHER, "[erased]"], "owner_email": OTHER, "notes": [{"from": {"email": "[erased]"}}]}
    assert falcon.data["stakeholders"] == [OTHER, "[erased]"] and falcon.data["dealName"] == "Falcon: call [erased] first"
    assert falcon.content_hash == content_hash(falcon.raw)
    heron = SyncRecord.objects.get(integration=integration, external_id="9002")
    assert heron.raw == records[1]  # no erased address: stored exactly as read
    assert EMAIL not in json.dumps([falcon.raw, falcon.data, heron.raw]).lower()
    assert [item["stakeholders"] for item in result.changed] == [[OTHER, "[erased]"], [OTHER]]
    assert records[0]["_bastion"]["stakeholder_emails"][1] == "EMMA.ROSSI@acme.example"  # the caller's batch is not modified

    # An update redacts the same way.
    records[0]["properties"]["hs_lastmodifieddate"] = "2025-03-03T00:00:00.000Z"
    again = records_upsert(integration=integration, entity_type="deals", records=records[:1], connector=connector)
    assert again.updated == 1
    falcon.refresh_from_db()
    assert falcon.raw["_bastion"]["stakeholder_emails"] == [OTHER, "[erased]"] and EMAIL not in json.dumps(falcon.raw).lower()


def test_each_distinct_address_is_digested_once_and_the_check_stays_one_query(synced, organization, admin_api, monkeypatch):
    erase(admin_api, organization)
    integration, connector = hubspot_in(organization)
    batch = [
        deal(
            str(9100 + index),
            stakeholders=[OTHER, EMAIL, f"buyer{index % 5}@globex.example"],
            name=f"Deal {index}",
            notes=[{"from": {"email": EMAIL.title()}}],
        )
        for index in range(200)
    ]
    counter = DigestCounter()
    monkeypatch.setattr(hmac, "digest", counter)

    with CaptureQueriesContext(connection) as captured:
        result = records_upsert(integration=integration, entity_type="deals", records=batch, connector=connector)

    # One key in use: 200 source ids, plus 7 distinct addresses (hers in two cases: "EMAIL" and its title-cased note share a digest).
    assert counter.calls == 200 + 7
    assert sum("sync_suppressedidentity" in query["sql"] for query in captured.captured_queries) == 1
    assert result.created == 200
    stored = SyncRecord.objects.filter(integration=integration)
    assert all(record.raw["_bastion"]["stakeholder_emails"][:2] == [OTHER, "[erased]"] for record in stored)
    assert not stored.filter(raw__icontains=EMAIL).exists() and EMAIL not in json.dumps(list(stored.values_list("raw", flat=True))).lower()

    # Past the load-everything limit the batch's subjects and mentions are looked up together: one digest statement.
    monkeypatch.setattr("people.services.suppression.LOAD_ALL_LIMIT", 1)
    with CaptureQueriesContext(connection) as captured:
        records_upsert(integration=integration, entity_type="deals", records=[deal("9999", stakeholders=[EMAIL], name="Late")], connector=connector)
    assert sum("sync_suppressedidentity" in query["sql"] for query in captured.captured_queries) == 3  # as without mentions
    assert SyncRecord.objects.get(integration=integration, external_id="9999").raw["_bastion"]["stakeholder_emails"] == ["[erased]"]


def test_an_organization_without_suppressions_is_untouched_and_does_no_digest_work(synced, organization, other_organization, admin_api, monkeypatch):
    erase(admin_api, organization)  # suppressions exist, but in another organization
    assert not SuppressedIdentity.objects.filter(organization=other_organization).exists()
    integration, connector = hubspot_in(other_organization)
    records = [deal("9201", stakeholders=[OTHER, EMAIL], name=f"Falcon: call {EMAIL}")]
    counter = DigestCounter()
    monkeypatch.setattr(hmac, "digest", counter)

    result = records_upsert(integration=integration, entity_type="deals", records=records, connector=connector)

    assert result.created == 1 and counter.calls == 0
    stored = SyncRecord.objects.get(integration=integration, external_id="9201")
    assert stored.raw == records[0] and stored.data["stakeholders"] == [OTHER, EMAIL]
