"""Celery tasks for trigger rules: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from playbooks.triggers import inbound


@shared_task(ignore_result=True, acks_late=True)
def inbound_delivery_process(delivery_pk: str) -> int:
    """Evaluate the trigger rules of a stored inbound delivery."""
    return inbound.inbound_delivery_process(delivery_pk=delivery_pk)


@shared_task(ignore_result=True)
def trigger_schedules_evaluate() -> int:
    """Beat: fire the schedule rules whose moment came (launch day − 7 days at 09:00…)."""
    from playbooks.triggers.schedules import trigger_schedules_evaluate as evaluate

    return evaluate()
