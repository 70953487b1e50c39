"""People written in bulk: provenance stored packed and read whole, and the one-identity shortcut agreeing with the general rule."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from integrations.models import Integration, IntegrationStatus
from people import services
from people.models import Person, PersonIdentity
from people.provenance import ORIGINS_KEY, provenance_packed, provenance_unpacked
from people.services.merge import MAX_LENGTHS, _apply_state, _new_state, _new_state_from_one

pytestmark = pytest.mark.django_db

AT = "2026-12-07T09:00:00+00:00"


def full(value, source="csv", external_id="e1", integration_id=None, at=AT):
    return {"value": value, "source": source, "integration_id": integration_id, "external_id": external_id, "at": at}


def test_packing_names_each_origin_once_and_unpacks_to_the_same_provenance():
    provenance = {
        "email": full("ava@acme.example"),
        "title": full("CFO", source="okta", external_id="00u1", integration_id="5d1c"),
        "phone": full("+1 555"),
        "manager": {"value": str(uuid.uuid4()), "source": "okta", "external_id": "00u1"},  # another shape: kept as it is
    }
    packed = provenance_packed(provenance)
    assert len(packed[ORIGINS_KEY]) == 2 and packed["email"][0] == packed["phone"][0] != packed["title"][0]
    assert packed["manager"] == provenance["manager"]
    assert provenance_unpacked(packed) == provenance
    assert provenance_packed(packed) is packed  # packing twice changes nothing
    # Values that are not packed provenance read as they are: rows written before packing, empty, or hand-written.
    for stored in ({}, None, {"title": full("CEO")}, {"manager": {"value": "x"}}, [1, 2]):
        assert provenance_unpacked(stored) == stored


def test_a_packed_origin_index_out_of_range_is_read_as_written_not_as_an_error():
    stored = {ORIGINS_KEY: [["csv", None, "e1", AT]], "title": [3, "CFO"], "phone": [0, "+1"]}
    assert provenance_unpacked(stored) == {"title": [3, "CFO"], "phone": full("+1")}


def test_the_model_stores_packed_and_every_reader_sees_the_whole_provenance(organization):
    provenance = {"title": full("CFO"), "department": full("Finance")}
    person = Person.objects.create(organization=organization, email="ava@acme.example", provenance=provenance)
    with connection.cursor() as cursor:
        cursor.execute("SELECT provenance::text FROM sync_person WHERE id = %s", [person.pk])
        stored = cursor.fetchone()[0]
    assert ORIGINS_KEY in stored and stored.count('"csv"') == 1
    assert Person.objects.get(pk=person.pk).provenance == provenance
    assert Person.objects.filter(pk=person.pk).values_list("provenance", flat=True).get() == provenance
    # A row written before packing existed (field by field) reads unchanged.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE sync_person SET provenance = %s::jsonb WHERE id = %s", [json.dumps({"title": full("CEO")}), person.pk])
    assert Person.objects.get(pk=person.pk).provenance == {"title": full("CEO")}


VIEW_CASES = [
    {"email": "ava@acme.example", "name": "Ava Chen", "title": "CFO", "department": "Finance", "phone": "+1 555", "groups": ["b", "a", "b"]},
    {"email": "", "name": "", "given_name": " Ava ", "family_name": "Chen", "title": "   ", "is_active": False},
    {"email": "x@acme.example", "title": "T" * (MAX_LENGTHS["title"] + 50), "groups": "ab", "phone": 0},
    {"email": "m@acme.example", "name": "Report", "manager_email": "boss@acme.example"},
    {"email": "self@acme.example", "name": "Self", "manager_email": "self@acme.example"},
    {"email": "ext@acme.example", "manager_external_id": "b-1", "is_active": 1},
]


@pytest.mark.parametrize("attributes", VIEW_CASES)
@pytest.mark.parametrize("integration_id", [None, uuid.uuid4()])
def test_the_one_identity_shortcut_builds_what_the_general_rule_builds(attributes, integration_id):
    pk, boss = uuid.uuid4(), uuid.uuid4()
    attributes = {**attributes, "external_id": attributes["email"] or "no-email"}
    view = {"source": "okta", "integration_id": integration_id, "external_id": attributes["external_id"], "attributes": attributes, "updated_at": None}
    manager_ids = {("email", "boss@acme.example"): boss, ("email", "self@acme.example"): pk, ("ext", "okta", integration_id, "b-1"): boss}
    general = _new_state(pk, attributes["email"])
    _apply_state(general, [view], ["okta"], manager_ids, AT, lambda email: True)
    shortcut = _new_state_from_one(pk, view, manager_ids, AT)
    assert provenance_unpacked(shortcut.pop("provenance")) == general.pop("provenance")
    assert shortcut == general


def test_a_bulk_merge_of_new_people_reads_back_with_full_provenance_and_managers(organization):
    okta = Integration.objects.create(organization=organization, connector_key="okta", display_name="Okta", status=IntegrationStatus.CONNECTED)
    items = [
        {"external_id": "b-1", "email": "boss@acme.example", "name": "Boss", "title": "CEO"},
        {"external_id": "r-1", "email": "Report@Acme.example", "name": "Report", "manager_external_id": "b-1", "groups": ["eng"]},
    ]
    with transaction.atomic():
        result = services.people_merge(organization=organization, source="okta", integration=okta, entity_type="users", items=items)
    assert result.created == 2
    report = Person.objects.get(organization=organization, email="report@acme.example")
    boss = Person.objects.get(organization=organization, email="boss@acme.example")
    assert report.manager_id == boss.pk and report.groups == ["eng"]
    assert report.provenance["display_name"] == {
        "value": "Report",
        "source": "okta",
        "integration_id": str(okta.pk),
        "external_id": "r-1",
        "at": report.provenance["display_name"]["at"],
    }
    assert report.provenance["manager"] == {"value": str(boss.pk), "source": "okta", "external_id": "r-1"}
    # A second source merging into the same person goes through the general rule and keeps reading whole.
    with transaction.atomic():
        services.people_merge(
            organization=organization,
            source="csv",
            integration=None,
            entity_type="people",
            items=[{"external_id": "x", "email": "report@acme.example", "phone": "+1"}],
        )
    report.refresh_from_db()
    assert report.provenance["phone"]["source"] == "csv" and report.provenance["display_name"]["source"] == "okta"


def test_the_database_refuses_an_identity_of_one_organization_on_another_organizations_person(organization, other_organization):
    with connection.cursor() as cursor:  # the test runs inside one transaction: check each write now, not at its end
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    theirs = Person.objects.create(organization=other_organization, email="ava@other.example")
    with pytest.raises(IntegrityError), transaction.atomic():
        PersonIdentity.objects.create(organization=organization, person=theirs, source="csv", external_id="ava")
    ours = Person.objects.create(organization=organization, email="ava@acme.example")
    with pytest.raises(IntegrityError), transaction.atomic():
        identity = PersonIdentity.objects.create(organization=organization, person=ours, source="csv", external_id="ava")
        PersonIdentity.objects.filter(pk=identity.pk).update(person=theirs)  # moved across tenants by a later write
    with pytest.raises(IntegrityError), transaction.atomic():
        PersonIdentity.objects.create(organization_id=uuid.uuid4(), person=ours, source="csv", external_id="nobody")
    # Deleting a person still takes its identities along (the ORM's cascade, the key checked at commit).
    PersonIdentity.objects.create(organization=organization, person=ours, source="csv", external_id="ava")
    ours.delete()
    assert not PersonIdentity.objects.filter(organization=organization).exists()
