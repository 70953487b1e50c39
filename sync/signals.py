"""A data source's next scheduled sync follows its schedule row wherever that row is edited (API, admin, shell)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver
from django_celery_beat.models import PeriodicTask

from sync.services.schedules import data_source_next_sync_refresh


@receiver(post_save, sender=PeriodicTask, dispatch_uid="sync.schedule_row_saved")
def schedule_row_saved(sender: Any, instance: PeriodicTask, **kwargs: Any) -> None:
    data_source_next_sync_refresh(schedule=instance)
