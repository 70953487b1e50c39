"""Shared fixtures for scenario and form tests: a directory synced from Active Directory, a Slack workspace, valid crisis values."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from integrations.models import Integration, IntegrationStatus
from people.models import Person, PersonIdentity
from sync.models import SyncRecord

DIRECTORY = [
    ("Ava Chen", "ava.chen@acme.example", "Chief Executive Officer", "Executive"),
    ("Marcus Okafor", "marcus.okafor@acme.example", "Chief Information Security Officer", "Security"),
    ("Priya Raman", "priya.raman@acme.example", "General Counsel", "Legal"),
    ("Liam Novak", "liam.novak@acme.example", "VP Communications", "Communications"),
    ("Sofia Garcia", "sofia.garcia@acme.example", "VP Engineering", "Engineering"),
    ("Amara Nwosu", "amara.nwosu@acme.example", "Incident Manager", "Engineering"),
]


def make_person(organization, name: str, email: str, title: str = "", department: str = "") -> Person:
    return Person.objects.create(
        organization=organization,
        email=email,
        display_name=name,
        title=title,
        department=department,
        search_text=" ".join([name, email, title, department]).lower(),
    )


@pytest.fixture
def ldap_integration(organization) -> Integration:
    return Integration.objects.create(organization=organization, connector_key="ldap", display_name="Corporate AD", status=IntegrationStatus.CONNECTED)


@pytest.fixture
def directory(organization, ldap_integration) -> dict[str, Person]:
    """People as if synced from Active Directory: Person rows with an LDAP identity each."""
    people = {}
    for index, (name, email, title, department) in enumerate(DIRECTORY):
        person = make_person(organization, name, email, title, department)
        PersonIdentity.objects.create(
            organization=organization,
            person=person,
            integration=ldap_integration,
            source="ldap",
            entity_type="users",
            external_id=f"CN={name},OU=People,DC=acme,DC=example#{index}",
        )
        people[email.split(".")[0]] = person
    return people


@pytest.fixture
def slack_channels(organization) -> Integration:
    slack = Integration.objects.create(organization=organization, connector_key="slack", display_name="Acme Slack", status=IntegrationStatus.CONNECTED)
    for external_id, name in [("C001", "incident-response"), ("C002", "exec-team"), ("C003", "press")]:
        data = {"external_id": external_id, "name": name, "is_private": False, "is_archived": False, "member_count": 5, "topic": ""}
        SyncRecord.objects.create(
            organization=organization,
            integration=slack,
            entity_type="channels",
            external_id=external_id,
            raw={"id": external_id, "name": name},
            data=data,
            content_hash=external_id,
            last_seen_at=timezone.now(),
        )
    return slack


def person_value(person: Person) -> dict[str, Any]:
    return {"person_id": str(person.pk), "name": person.display_name, "email": person.email}


def stakeholder(person: Person, role: str) -> dict[str, Any]:
    return {**person_value(person), "role": role}


@pytest.fixture
def crisis_values(directory) -> dict[str, Any]:
    """A valid Service Outage crisis (Legal on the team)."""
    return {
        "title": "Checkout outage",
        "crisis_type": "service_outage",
        "severity": "sev1",
        "summary": "Checkout fails for EU customers.",
        "incident_commander": person_value(directory["amara"]),
        "stakeholders": [stakeholder(directory["amara"], "engineering"), stakeholder(directory["priya"], "legal")],
        "communication_channels": [{"name": "incident-response", "external_id": "C001", "integration_id": ""}],
        "war_room_meeting_at": "2026-12-01T09:30:00+00:00",
        "jira_project_key": "OPS",
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Users of every role are created per test; the production hasher is deliberately slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
