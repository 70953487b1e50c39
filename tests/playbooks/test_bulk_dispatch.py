"""How the engine sends a bulk step's items (dispatch_groups): in chunks only where the bound connector serves the action in
bulk (its manifest's Capability.BULK_ACTIONS or the action's bulk flag), else one task per item; and the shipped crisis
template's per-person invitations reaching Slack as one lookup round and one conversations.invite."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from integrations.models import Integration, IntegrationStatus
from playbooks.models import PlaybookRun, RunStatus, StepRun, StepStatus
from playbooks.services import playbook_activate
from playbooks.services.shared import BULK_CHUNK, bulk_supported, dispatch_groups
from tests.playbooks.conftest import stakeholders


@pytest.fixture
def run(crisis_playbook, organization) -> PlaybookRun:
    return PlaybookRun.objects.create(organization=organization, playbook=crisis_playbook, status=RunStatus.RUNNING, context={})


@pytest.fixture
def connected(organization):
    """Integration rows of a given connector (dispatching reads only which connector a step is bound to)."""

    def make(connector_key: str) -> Integration:
        return Integration.objects.create(
            organization=organization, connector_key=connector_key, display_name=connector_key, status=IntegrationStatus.CONNECTED
        )

    return make


def items(run: PlaybookRun, integration: Integration | None, action: str, count: int, *, is_bulk: bool = True, chunk: int = 50) -> list[StepRun]:
    """One step's queued per-person items, in the order the engine reads them."""
    step_key = f"{action}_{integration.connector_key if integration else 'unbound'}_{is_bulk}_{chunk}"
    return [
        StepRun.objects.create(
            run=run,
            step_key=step_key,
            step_name=step_key,
            item_index=index,
            item_key=f"person{index}@acme.example",
            item={"email": f"person{index}@acme.example"},
            connector_key=integration.connector_key if integration else "slack",
            action=action,
            is_bulk=is_bulk,
            bulk_chunk_size=chunk,
            integration=integration,
            status=StepStatus.QUEUED,
            idempotency_key=f"{step_key}-{index}",
        )
        for index in range(count)
    ]


def ids(step_runs: list[StepRun]) -> list[str]:
    return [str(s.pk) for s in step_runs]


@pytest.mark.parametrize(
    ("connector_key", "action"),
    [
        ("twilio", "send_sms"),  # no bulk call at all
        ("google_calendar", "create_event"),
        ("slack", "post_message"),  # Slack serves invite_users in bulk, not this action
        ("microsoft365", "post_message"),
    ],
)
def test_a_bulk_step_without_a_bulk_call_goes_one_task_per_item(run, connected, connector_key, action):
    queued = items(run, connected(connector_key), action, 7, chunk=3)
    assert bulk_supported(queued[0]) is False
    assert dispatch_groups(queued) == [[pk] for pk in ids(queued)]


@pytest.mark.parametrize(
    ("connector_key", "action"),
    [
        ("slack", "invite_users"),  # the action's bulk flag
        ("microsoft365", "invite_users"),
        ("email", "send_email"),
        ("jira", "create_issue"),  # the connector's Capability.BULK_ACTIONS
    ],
)
def test_a_bulk_step_with_a_bulk_call_goes_in_chunks_of_its_size(run, connected, connector_key, action):
    queued = items(run, connected(connector_key), action, 7, chunk=3)
    assert bulk_supported(queued[0]) is True
    pks = ids(queued)
    assert dispatch_groups(queued) == [pks[0:3], pks[3:6], pks[6:7]]


def test_a_step_not_marked_bulk_goes_one_task_per_item_even_where_bulk_is_served(run, connected):
    queued = items(run, connected("slack"), "invite_users", 4, is_bulk=False, chunk=2)
    assert dispatch_groups(queued) == [[pk] for pk in ids(queued)]


def test_chunk_size_is_kept_within_one_to_the_engine_limit(run, connected):
    slack = connected("slack")
    large = items(run, slack, "invite_users", BULK_CHUNK + 5, chunk=500)
    assert [len(group) for group in dispatch_groups(large)] == [BULK_CHUNK, 5]
    unset = items(run, slack, "invite_users", 3, chunk=0)  # 0 reads as "the default", never a zero-sized chunk
    assert dispatch_groups(unset) == [ids(unset)]


def test_an_unbound_or_unknown_connector_follows_the_step(run, connected):
    unbound = items(run, None, "invite_users", 5, chunk=2)
    assert [len(group) for group in dispatch_groups(unbound)] == [2, 2, 1]  # the call fails with its own message either way
    unknown = items(run, connected("no_such_vendor"), "invite_users", 3, chunk=2)
    assert [len(group) for group in dispatch_groups(unknown)] == [2, 1]
    assert dispatch_groups([]) == []


# ---- the shipped template against the Slack stand-in ---------------------------------------------------------------------


def slack_calls(sandbox: str, method: str) -> list[dict[str, Any]]:
    log = requests.get(f"{sandbox}/_control/requests", params={"vendor": "slack"}, timeout=5).json()
    return [r for r in log if r["path"] == f"/slack/api/{method}"]


def test_crisis_activation_invites_twenty_stakeholders_with_one_invite_call(vendor_playbook, owner, on_commit, sandbox):
    run, created = on_commit(playbook_activate, playbook=vendor_playbook, actor=owner)
    assert created
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary

    invites = list(run.step_runs.filter(step_key="invite_stakeholders").order_by("item_index"))
    people = [p["email"] for p in stakeholders()]
    assert len(invites) == 20 and all(s.is_bulk and s.status == StepStatus.SUCCEEDED for s in invites)
    # One task for the 20 items (chunk 50): one lookup per person side by side, one conversations.invite for everyone.
    assert len(slack_calls(sandbox, "users.lookupByEmail")) == 20
    assert len(slack_calls(sandbox, "conversations.invite")) == 1
    # Each person's row holds its own outcome.
    assert [s.item_key for s in invites] == people
    assert [s.result.get("data", {}).get("invited") for s in invites] == [[email] for email in people], invites[0].result
