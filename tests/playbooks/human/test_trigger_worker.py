"""A real worker: a signed PagerDuty incident from the sandbox reaches the intake, the worker evaluates the rule and activates
the crisis playbook directly, and the vendor actions start. Measures webhook arrival → first vendor action."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from playbooks.models import PlaybookRun, RunStatus, StepRun
from playbooks.triggers.models import FiringOutcome, TriggerFiring
from tests.conftest import wait_for
from tests.playbooks.human.test_triggers import _open_incident, _pagerduty, _rule


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_incident_to_first_vendor_action_through_a_real_worker(
    live_server, sandbox, organization, actions_integration, crisis_template, celery_worker_process, settings
):
    settings.BASTION_PUBLIC_URL = live_server.url
    _integration, _secret, service = _pagerduty(organization, sandbox, live_server)
    rule = _rule(organization, actions_integration, crisis_template, mode="activate")
    celery_worker_process(concurrency=2)
    # Warm up: a low-urgency incident is evaluated (not fired) once the worker runs, so the measure excludes its start-up.
    _open_incident(sandbox, service, "Warm-up", urgency="low")
    wait_for(lambda: TriggerFiring.objects.filter(rule=rule, outcome=FiringOutcome.NOT_MATCHED).exists(), timeout=60, message="the worker to start")

    _open_incident(sandbox, service, "Payments API down")
    firing = wait_for(lambda: TriggerFiring.objects.filter(rule=rule, is_firing=True).first(), timeout=60, message="the rule to fire in the worker")
    assert firing.outcome == FiringOutcome.ACTIVATED
    run = wait_for(
        lambda: PlaybookRun.objects.filter(pk=firing.run_id, status__in=[RunStatus.SUCCEEDED, RunStatus.PARTIAL]).first(), timeout=120, message="the run"
    )
    vendor_steps = StepRun.objects.filter(run=run).exclude(connector_key="bastion").exclude(started_at=None)
    first_started = min(vendor_steps.values_list("started_at", flat=True))
    first_done = min(vendor_steps.exclude(finished_at=None).values_list("finished_at", flat=True))
    to_start_ms = (first_started - firing.received_at).total_seconds() * 1000
    to_done_ms = (first_done - firing.received_at).total_seconds() * 1000
    assert 0 < to_start_ms < 60_000 and to_start_ms <= to_done_ms
    # Only one firing and one run for the incident, whatever the worker saw.
    assert TriggerFiring.objects.filter(rule=rule, is_firing=True).count() == 1 and PlaybookRun.objects.count() == 1
    out = os.environ.get("BENCH_RESULTS_DIR")
    if out:
        Path(out, "trigger_to_first_action.json").write_text(
            json.dumps({"webhook_to_first_call_started_ms": round(to_start_ms), "webhook_to_first_call_done_ms": round(to_done_ms)})
        )
    print(f"webhook → first vendor call started {to_start_ms:.0f} ms, first vendor object created {to_done_ms:.0f} ms")
