"""Scheduled retention."""

from celery import shared_task

from data_rights.services import retention_enforce


@shared_task
def enforce_retention() -> dict:
    """Purge expired synced records, webhook deliveries, job logs and stored CSV uploads no import needs (daily, from beat)."""
    return retention_enforce()
