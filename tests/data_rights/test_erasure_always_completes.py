"""An erasure always completes: erased values that take part in a uniqueness rule never collide (issue 13, finding 5)."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from accounts.models import Role
from data_rights.services import find_mentions
from people.models import Person
from playbooks.models import PlaybookRun, StepRun
from playbooks.services import playbook_activate, playbook_create
from tests.playbooks.conftest import make_scenario  # noqa: F401

TEAM = [("Chloe Dubois", "chloe.dubois@acme.example"), ("Ava Chen", "ava.chen@acme.example"), ("Omar Haddad", "omar.haddad@acme.example")]


@pytest.fixture
def run_with_team(organization, make_scenario):  # noqa: F811
    """A real activated crisis run whose per-person steps are keyed by each stakeholder's email."""
    people = [Person.objects.create(organization=organization, email=email, display_name=name) for name, email in TEAM]
    stakeholders = [{"person_id": str(p.pk), "name": p.display_name, "email": p.email, "role": "comms"} for p in people]
    lead = stakeholders[0]
    scenario = make_scenario(stakeholders=stakeholders, incident_commander={k: lead[k] for k in ("person_id", "name", "email")})
    run, _ = playbook_activate(playbook=playbook_create(organization=organization, scenario=scenario))
    keyed = StepRun.objects.filter(run=run, item_key__in=[email for _, email in TEAM])
    assert keyed.values("step_key").distinct().count() >= 1, "the crisis template fans out per stakeholder email"
    return run, people


@pytest.mark.parametrize("count", [2, 3])
def test_erasing_several_stakeholders_of_one_run_always_completes(api_for, users_by_role, organization, run_with_team, count):
    run, people = run_with_team
    admin = api_for(users_by_role[Role.ADMIN])
    before = StepRun.objects.filter(run=run).count()
    for person in people[:count]:
        response = admin.post(f"/api/data-rights/people/{person.pk}/erase")
        assert response.status_code == 200, response.content
    assert not Person.objects.filter(pk__in=[p.pk for p in people[:count]]).exists()
    keys = list(StepRun.objects.filter(run=run).values_list("step_key", "item_key"))
    assert len(keys) == before and len(set(keys)) == before  # nothing deleted, every key still unique
    erased_keys = [key for _, key in keys if key.startswith("[erased:")]
    assert len(erased_keys) >= count and len(set(erased_keys)) == len(erased_keys)
    needles = [email for _, email in TEAM[:count]] + [name for name, _ in TEAM[:count]]
    assert find_mentions(organization=organization, needles=needles) == {}
    # The one not erased keeps their key and their mentions.
    if count < len(TEAM):
        assert StepRun.objects.filter(run=run, item_key=TEAM[-1][1]).exists()


def test_one_subject_under_two_spellings_of_a_unique_value_is_erased(api_for, users_by_role, organization, run_with_team):
    """Two rows whose unique values differ only by case would both become the same text under a per-subject marker."""
    run, people = run_with_team
    original = StepRun.objects.filter(run=run, item_key=TEAM[0][1]).first()
    original.pk = None
    original.item_key = TEAM[0][1].upper()
    original.save()
    assert api_for(users_by_role[Role.ADMIN]).post(f"/api/data-rights/people/{people[0].pk}/erase").status_code == 200
    keys = list(StepRun.objects.filter(run=run, step_key=original.step_key).values_list("item_key", flat=True))
    assert len(keys) == len(set(keys)) and not any(TEAM[0][1] in k.lower() for k in keys)


def test_a_uniqueness_rule_the_model_does_not_declare_is_survived(api_for, users_by_role, organization, run_with_team):
    """A unique index added outside the models (here: on a run's error summary) still cannot stop an erasure."""
    run, people = run_with_team
    other = PlaybookRun.objects.create(organization=organization, playbook=run.playbook, context={})
    PlaybookRun.objects.filter(pk=run.pk).update(error_summary=f"failed for {TEAM[0][1]}")
    PlaybookRun.objects.filter(pk=other.pk).update(error_summary=f"failed for {TEAM[1][1]}")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # PostgreSQL builds no index while deferred checks are pending
        cursor.execute("CREATE UNIQUE INDEX test_unique_error_summary ON playbooks_playbookrun (error_summary) WHERE error_summary <> ''")
    admin = api_for(users_by_role[Role.ADMIN])
    for person in people[:2]:
        assert admin.post(f"/api/data-rights/people/{person.pk}/erase").status_code == 200
    summaries = list(PlaybookRun.objects.filter(pk__in=[run.pk, other.pk]).values_list("error_summary", flat=True))
    assert len(set(summaries)) == 2 and all(s.startswith("failed for [erased") for s in summaries)
    assert TEAM[0][1] not in json.dumps(summaries) and TEAM[1][1] not in json.dumps(summaries)
