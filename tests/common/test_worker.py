import os
import signal

import pytest

from accounts.models import AuditEvent
from accounts.tasks import record_worker_heartbeat
from tests.conftest import wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_task_runs_on_a_real_worker_through_redis(organization, celery_worker_process):
    worker = celery_worker_process(concurrency=1)
    record_worker_heartbeat.delay(str(organization.pk), "through-redis")
    try:
        event = wait_for(lambda: AuditEvent.objects.filter(action="system.worker_heartbeat").first(), timeout=60, message="the worker to run the task")
    except AssertionError:
        os.killpg(worker.pid, signal.SIGKILL)  # with its pool children, which hold the output pipe open too
        raise AssertionError(worker.stdout.read()[-3000:])
    assert event.changes == {"note": "through-redis"}
    assert event.organization_id == organization.pk
