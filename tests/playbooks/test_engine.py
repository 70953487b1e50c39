"""Engine internals that exactly-once and speed rest on: which attempts may skip search-before-create, connector reuse, lost advances."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import AuditEvent
from integrations.models import CredentialType
from integrations.services import credential_store
from playbooks.models import PlaybookRun, RunStatus, StepRun, StepStatus
from playbooks.services import _claim, connector_for, playbook_activate, playbook_runs_resume_stalled


def _queue(*step_runs: StepRun) -> list[str]:
    StepRun.objects.filter(pk__in=[s.pk for s in step_runs]).update(status=StepStatus.QUEUED)
    return [str(s.pk) for s in step_runs]


def test_only_keys_never_tried_in_any_run_are_known_new(crisis_playbook, owner):
    run, _ = playbook_activate(playbook=crisis_playbook, actor=owner)  # callbacks not run: nothing dispatched yet
    channel = run.step_runs.get(step_key="create_channel")
    [claimed] = _claim(_queue(channel))
    assert claimed.known_new is True and claimed.attempts == 1 and claimed.status == StepStatus.RUNNING
    assert claimed.run.pk == run.pk and claimed.integration is not None  # loaded with the lock, no second query needed

    # Redelivered after a crash mid-call: the committed attempt count makes the next attempt search first.
    [again] = _claim(_queue(channel))
    assert again.known_new is False and again.attempts == 2

    # The run is cancelled and the playbook activated again: its keys were tried in the first run.
    PlaybookRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    second, is_new = playbook_activate(playbook=crisis_playbook, actor=owner)
    assert is_new
    tried = second.step_runs.get(step_key="create_channel")
    untried = second.step_runs.get(step_key="book_war_room")
    assert tried.idempotency_key == channel.idempotency_key
    claimed = {s.step_key: s for s in _claim(_queue(tried, untried))}
    assert claimed["create_channel"].known_new is False
    assert claimed["book_war_room"].known_new is True


def test_claim_takes_nothing_from_a_cancelled_run(crisis_playbook, owner):
    run, _ = playbook_activate(playbook=crisis_playbook, actor=owner)
    ids = _queue(run.step_runs.get(step_key="create_channel"))
    PlaybookRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    assert _claim(ids) == []
    assert StepRun.objects.get(pk=ids[0]).attempts == 0


def test_connector_is_reused_until_its_credentials_change(actions_integration):
    decrypts = AuditEvent.objects.filter(action="credential.decrypt")
    first = connector_for(actions_integration)
    after_first = decrypts.count()
    assert connector_for(actions_integration) is first
    assert decrypts.count() == after_first  # no second decryption for the next step
    secret = {"api_key": first.credentials["api_key"]}
    credential_store(integration=actions_integration, credential_type=CredentialType.API_KEY, data=secret)
    rebuilt = connector_for(actions_integration)
    assert rebuilt is not first and decrypts.count() > after_first


def test_a_run_that_lost_its_advance_is_finished_by_the_reaper(crisis_playbook, owner, on_commit):
    run, _ = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    # As if the worker died right after the last step committed: the run still says running, nothing is in flight.
    PlaybookRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, finished_at=None)
    StepRun.objects.filter(run=run).update(updated_at=timezone.now() - timedelta(hours=1))
    on_commit(playbook_runs_resume_stalled)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.finished_at is not None
