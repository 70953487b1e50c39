"""Celery beat's scheduler for Bastion: django-celery-beat's DatabaseScheduler without the per-data-source entries.

Those rows (sync:<id>) are started by the dispatcher (sync.services.schedules), which finds the due ones with one indexed
query; beat walking tens of thousands of them itself falls behind (docs/scaling.md). Beat runs the dispatcher entry
(sync:dispatch-due-schedules) itself, in this process, on that row's interval and while the row is enabled, instead of
sending it as a task: sent, it would wait in the broker behind the very work it meters (its backpressure reads what the
workers finished), so its clock would slow down exactly when the workers are busiest.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import close_old_connections
from django.db.models import QuerySet
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from sync.services.jobs import SCHEDULED_TASK
from sync.services.schedules import PERIOD_SECONDS, sync_schedules_dispatch

logger = logging.getLogger(__name__)

DISPATCH_TASK = "sync.tasks.sync_schedules_dispatch"
DEFAULT_DISPATCH_SECONDS = 10.0


class SyncDispatchingScheduler(DatabaseScheduler):
    _next_dispatch = 0.0

    def enabled_models_qs(self) -> QuerySet:
        return super().enabled_models_qs().exclude(task__in=[SCHEDULED_TASK, DISPATCH_TASK])

    def tick(self, *args: Any, **kwargs: Any) -> float:
        wait = super().tick(*args, **kwargs)
        if time.monotonic() >= self._next_dispatch:
            self._next_dispatch = time.monotonic() + self.dispatch_run()
        return max(0.0, min(wait, self._next_dispatch - time.monotonic()))

    def dispatch_run(self) -> float:
        """Run the dispatcher if its row is enabled; return the seconds until the next run (the row's interval)."""
        try:
            row = PeriodicTask.objects.select_related("interval").filter(task=DISPATCH_TASK).first()
            every = DEFAULT_DISPATCH_SECONDS
            if row is not None and row.interval is not None:
                every = row.interval.every * PERIOD_SECONDS.get(row.interval.period, 1)
            if row is not None and row.enabled:
                sync_schedules_dispatch()
        except Exception:  # noqa: BLE001 - beat keeps running its other entries; the next tick tries again
            logger.exception("sync.dispatch.failed")
            close_old_connections()  # a connection the failure left unusable is replaced on the next query
            return DEFAULT_DISPATCH_SECONDS
        return max(1.0, float(every))
