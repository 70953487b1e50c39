"""What keeps step execution exactly-once across workers, crashes, cancels and re-activations.

- A worker holds a step through a short lease that a heartbeat renews while the vendor call runs, so a step whose worker
  died is noticed within `lease + resume interval` (well under a minute), not after a long fixed lease.
- A step whose idempotency key already succeeded in an earlier run of the same playbook (and was not undone) reuses that
  result instead of calling the vendor again: re-activating after a cancel sends no notification twice.
- A step whose key is being performed right now by another run waits for it instead of racing it.
- An object an earlier run created and then undid is created afresh by the next activation (a new key generation).
- For actions whose vendor cannot deduplicate (SMTP: `idempotency="none"`), the start of a delivery is committed before
  the call; an attempt that was interrupted after that point is never repeated automatically (at most once), and says so.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from integrations.connectors.base import ActionResult, BaseConnector
from playbooks.contract import outcome_restored
from playbooks.models import StepRun, StepStatus

logger = logging.getLogger(__name__)

DELIVERY_MARK = "delivery_started_at"
UNCONFIRMED_DELIVERY = (
    "Delivery not confirmed: the worker stopped while sending. It was not sent again automatically, so nobody gets it twice; "
    "check the recipient's inbox, then press “Retry failed steps” if it did not arrive."
)


def lease_seconds() -> float:
    """How long a claimed step stays a worker's without a heartbeat (BASTION_PLAYBOOK_STEP_LEASE_SECONDS, 30)."""
    return float(getattr(settings, "BASTION_PLAYBOOK_STEP_LEASE_SECONDS", 30))


@contextlib.contextmanager
def lease_kept(step_run_ids: Iterable[Any]) -> Iterator[None]:
    """Renew the lease of these running steps every third of a lease while the body runs (the vendor call)."""
    ids = [str(i) for i in step_run_ids]
    stop = threading.Event()
    interval = max(0.5, lease_seconds() / 3)

    def beat() -> None:
        try:
            while not stop.wait(interval):
                StepRun.objects.filter(pk__in=ids, status=StepStatus.RUNNING).update(lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds()))
        except Exception:  # noqa: BLE001 - a missed heartbeat only lets the lease expire; the resume check takes over
            logger.warning("playbooks.lease.heartbeat_failed", exc_info=True, extra={"steps": len(ids)})
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name="step-lease-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def action_idempotency(connector: BaseConnector, action: str) -> str:
    """The manifest's idempotency for an action: vendor | search | natural | none."""
    for spec in connector.manifest.actions:
        if spec.key == action:
            return spec.idempotency
    return "search"


def earlier_successes(step_runs: list[StepRun], *, any_payload: bool = False) -> dict[Any, ActionResult]:
    """Results of the same idempotency keys that already succeeded in another run and were not undone since.

    Only for the same rendered payload (a briefing for a new channel is posted there), unless `any_payload`: a delivery
    to a person that cannot be taken back (an e-mail) is never repeated, whatever changed in its text.
    """
    keys = {s.idempotency_key for s in step_runs}
    if not keys:
        return {}
    done = (
        StepRun.objects.filter(idempotency_key__in=keys, status=StepStatus.SUCCEEDED, undo_of__isnull=True)
        .exclude(run_id__in={s.run_id for s in step_runs})
        .exclude(undo_step__status=StepStatus.SUCCEEDED)
        .order_by("idempotency_key", "-finished_at")
    )
    by_key: dict[str, StepRun] = {}
    for earlier in done:
        if earlier.idempotency_key not in by_key and earlier.external_id:
            by_key[earlier.idempotency_key] = earlier
    found: dict[Any, ActionResult] = {}
    for step_run in step_runs:
        earlier = by_key.get(step_run.idempotency_key)
        if earlier is None or not (any_payload or earlier.payload == step_run.payload):
            continue
        found[step_run.pk] = outcome_restored(earlier.result, external_id=earlier.external_id, url=earlier.external_url)
    return found


def undone_keys(playbook_id: Any) -> set[str]:
    """Idempotency keys of this playbook whose object an earlier run created and then undid (archived, cancelled, closed)."""
    return set(
        StepRun.objects.filter(run__playbook_id=playbook_id, undo_of__isnull=True, undo_step__status=StepStatus.SUCCEEDED).values_list(
            "idempotency_key", flat=True
        )
    )


def key_after_undo(key: str, undone: set[str]) -> str:
    """The key a new activation uses: the same one, unless its object was undone — then a new generation (`~2`, `~3`…), so
    the vendor creates a fresh object instead of finding the undone one by its marker."""
    generation, candidate = 1, key
    while candidate in undone:
        generation += 1
        candidate = f"{key}~{generation}"
    return candidate


def busy_elsewhere(step_runs: list[StepRun]) -> set[Any]:
    """Steps whose idempotency key another run's worker is performing right now (a cancelled run's call still in flight)."""
    keys = {s.idempotency_key for s in step_runs}
    busy = set(
        StepRun.objects.filter(idempotency_key__in=keys, status=StepStatus.RUNNING, lease_expires_at__gt=timezone.now())
        .exclude(pk__in=[s.pk for s in step_runs])
        .values_list("idempotency_key", flat=True)
    )
    return {s.pk for s in step_runs if s.idempotency_key in busy}


def delivery_interrupted(step_run: StepRun) -> bool:
    """A delivery that cannot be deduplicated started in an attempt that never recorded its outcome."""
    return bool((step_run.result or {}).get(DELIVERY_MARK))


def delivery_mark(step_runs: list[StepRun]) -> None:
    """Commit that the deliveries are about to start (before the vendor call)."""
    now = timezone.now().isoformat()
    for step_run in step_runs:
        step_run.result = {**(step_run.result or {}), DELIVERY_MARK: now}
        StepRun.objects.filter(pk=step_run.pk).update(result=step_run.result)


def delivery_unmark(step_run: StepRun) -> None:
    """The attempt ended with a known outcome (sent or refused): a later attempt may send."""
    if DELIVERY_MARK in (step_run.result or {}):
        step_run.result = {k: v for k, v in step_run.result.items() if k != DELIVERY_MARK}
