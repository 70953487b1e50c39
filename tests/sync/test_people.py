"""People across sources: one person per human (email, then stored ids), every source's id kept, priority, provenance, search."""

from __future__ import annotations

import pytest
from django.db import transaction

from integrations.models import Integration, IntegrationStatus
from people import selectors, services
from people.models import Person, PersonIdentity

pytestmark = pytest.mark.django_db


def merge(organization, source, integration, *items):
    with transaction.atomic():
        return services.people_merge(organization=organization, source=source, integration=integration, entity_type="users", items=items)


@pytest.fixture
def okta(organization):
    return Integration.objects.create(organization=organization, connector_key="okta", display_name="Okta", status=IntegrationStatus.CONNECTED)


@pytest.fixture
def slack(organization):
    return Integration.objects.create(organization=organization, connector_key="slack", display_name="Slack", status=IntegrationStatus.CONNECTED)


def test_same_human_from_three_sources_is_one_person_with_every_id(organization, okta, slack):
    merge(organization, "slack", slack, {"external_id": "U1", "email": "Ava.Chen@Acme.example", "name": "ava", "title": "CEO (Slack profile)"})
    merge(organization, "okta", okta, {"external_id": "00u1", "email": "ava.chen@acme.example", "name": "Ava Chen", "title": "Chief Executive Officer"})
    merge(organization, "csv", None, {"external_id": "ava.chen@acme.example", "email": "AVA.CHEN@acme.example", "name": "A. Chen", "phone": "+1 555"})

    person = Person.objects.get(organization=organization)
    assert person.email == "ava.chen@acme.example"
    assert person.display_name == "Ava Chen" and person.title == "Chief Executive Officer"  # okta outranks slack and csv
    assert person.phone == "+1 555" and person.provenance["phone"]["source"] == "csv"  # only the CSV knows the phone
    assert person.provenance["title"] == {
        "value": "Chief Executive Officer",
        "source": "okta",
        "integration_id": str(okta.pk),
        "external_id": "00u1",
        "at": person.provenance["title"]["at"],
    }
    assert sorted(PersonIdentity.objects.filter(person=person).values_list("source", "external_id")) == [
        ("csv", "ava.chen@acme.example"),
        ("okta", "00u1"),
        ("slack", "U1"),
    ]


def test_stored_identity_matches_even_when_email_changes(organization, slack):
    merge(organization, "slack", slack, {"external_id": "U2", "email": "old@acme.example", "name": "Sam"})
    merge(organization, "slack", slack, {"external_id": "U2", "email": "new@acme.example", "name": "Sam Lee"})
    person = Person.objects.get(organization=organization)
    assert (person.email, person.display_name) == ("new@acme.example", "Sam Lee")
    assert PersonIdentity.objects.count() == 1


def test_people_without_email_stay_separate_and_organizations_never_mix(organization, other_organization, slack):
    merge(organization, "slack", slack, {"external_id": "B1", "email": "", "name": "Deploy Bot"}, {"external_id": "B2", "email": "", "name": "Alert Bot"})
    other_csv = {"external_id": "x@acme.example", "email": "x@acme.example", "name": "X"}
    merge(other_organization, "csv", None, other_csv)
    merge(organization, "csv", None, other_csv)
    assert Person.objects.filter(organization=organization).count() == 3
    assert Person.objects.filter(organization=other_organization).count() == 1


def test_priority_is_configurable_and_recomputes_everyone(organization, okta, slack, api, users_by_role, api_for):
    from accounts.models import Role

    merge(organization, "okta", okta, {"external_id": "00u9", "email": "kim@acme.example", "name": "Kim", "title": "Okta title"})
    merge(organization, "slack", slack, {"external_id": "U9", "email": "kim@acme.example", "name": "Kim", "title": "Slack title"})
    assert Person.objects.get().title == "Okta title"

    assert api_for(users_by_role[Role.EDITOR]).put("/api/people-settings", {"source_priority": ["slack"]}, format="json").status_code == 403
    response = api.put("/api/people-settings", {"source_priority": ["slack", "okta"]}, format="json")
    assert response.status_code == 200 and response.json() == {"source_priority": ["slack", "okta"]}
    person = Person.objects.get()
    assert person.title == "Slack title" and person.provenance["title"]["source"] == "slack"
    assert api.get("/api/people-settings").json()["source_priority"] == ["slack", "okta"]


def test_managers_link_within_source_and_by_email(organization, okta):
    merge(
        organization,
        "okta",
        okta,
        {"external_id": "m1", "email": "boss@acme.example", "name": "Boss"},
        {"external_id": "r1", "email": "report@acme.example", "name": "Report", "manager_external_id": "m1"},
    )
    merge(organization, "csv", None, {"external_id": "new@acme.example", "email": "new@acme.example", "name": "New", "manager_email": "BOSS@acme.example"})
    boss = Person.objects.get(email="boss@acme.example")
    assert Person.objects.get(email="report@acme.example").manager == boss
    assert Person.objects.get(email="new@acme.example").manager == boss


def test_person_search_selector_and_api(organization, other_organization, okta, api, api_for, outsider):
    merge(
        organization,
        "okta",
        okta,
        {"external_id": "1", "email": "marcus.okafor@acme.example", "name": "Marcus Okafor", "title": "CISO", "department": "Security"},
        {"external_id": "2", "email": "emma.rossi@acme.example", "name": "Emma Rossi", "title": "Security Engineer", "department": "Security"},
        {"external_id": "3", "email": "liam@acme.example", "name": "Liam Novak", "title": "VP Communications"},
    )
    merge(other_organization, "csv", None, {"external_id": "spy@globex.example", "email": "spy@globex.example", "name": "Security Spy"})

    assert [p.display_name for p in selectors.person_search(organization=organization, query="security")] == ["Emma Rossi", "Marcus Okafor"]
    assert [p.display_name for p in selectors.person_search(organization=organization, query="MARCUS sec")] == ["Marcus Okafor"]
    assert len(selectors.person_search(organization=organization, query="", limit=2)) == 2

    listed = api.get("/api/people/?q=security").json()
    assert [p["display_name"] for p in listed["results"]] == ["Emma Rossi", "Marcus Okafor"] and listed["results"][0]["sources"] == ["okta"]
    marcus = Person.objects.get(email="marcus.okafor@acme.example")
    detail = api.get(f"/api/people/{marcus.pk}/").json()
    assert detail["provenance"]["title"]["source"] == "okta" and detail["identities"][0]["external_id"] == "1"
    assert api_for(outsider).get(f"/api/people/{marcus.pk}/").status_code == 404


def test_directory_and_csv_merge_end_to_end(run_sync, people_source, api, django_capture_on_commit_callbacks, organization):
    from django.core.files.uploadedfile import SimpleUploadedFile

    run_sync(people_source)
    csv_content = b"email,name,phone\nAVA.CHEN@acme.example,Ava C.,+44 20 0000\nnew.person@acme.example,New Person,\n"
    with django_capture_on_commit_callbacks(execute=True):
        preview = api.post("/api/imports/csv/preview", {"file": SimpleUploadedFile("p.csv", csv_content)}, format="multipart").json()
        api.post("/api/imports/csv", {"upload_id": preview["upload_id"], "mapping": '{"email": "email", "name": "name", "phone": "phone"}'}, format="multipart")
    assert Person.objects.filter(organization=organization).count() == 21
    ava = Person.objects.get(email="ava.chen@acme.example")
    assert sorted(ava.identities.values_list("source", flat=True)) == ["csv", "sandbox_directory"]
    assert ava.display_name == "Ava Chen"  # the directory outranks the CSV
    assert ava.phone == "+1 555 0100"


def test_a_value_too_long_for_a_person_field_is_shortened_with_a_warning_never_silently(run_sync, people_source, sandbox, organization):
    from people.models import Person
    from sync.models import SyncJobLog
    from tests.sync.conftest import directory_control

    long_title = "Head of " + "very " * 100 + "long titles"
    directory_control(sandbox, "/_control/people", id="p000003", title=long_title)
    job = run_sync(people_source)
    assert job.status == "succeeded"
    warnings = list(SyncJobLog.objects.filter(job=job, event="person.field_shortened"))
    assert len(warnings) == 1 and warnings[0].level == "warning"
    assert warnings[0].data == {"external_id": "p000003", "field": "title", "length": len(long_title), "limit": 300}
    person = Person.objects.get(organization=organization, identities__external_id="p000003")
    assert person.title == long_title[:300] and person.provenance["title"]["value"] == long_title
