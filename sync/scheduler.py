"""Celery beat's scheduler for Bastion: django-celery-beat's DatabaseScheduler without the per-data-source entries.

Those rows (sync:<id>) are started by the dispatcher entry (sync.services.schedules), which finds the due ones with one
indexed query; beat walking tens of thousands of them itself falls behind (docs/scaling.md).
"""

from __future__ import annotations

from django.db.models import QuerySet
from django_celery_beat.schedulers import DatabaseScheduler

from sync.services.jobs import SCHEDULED_TASK


class SyncDispatchingScheduler(DatabaseScheduler):
    def enabled_models_qs(self) -> QuerySet:
        return super().enabled_models_qs().exclude(task=SCHEDULED_TASK)
