"""Celery tasks for trigger rules: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from playbooks.triggers import inbound


@shared_task(ignore_result=True, acks_late=True)
def inbound_delivery_process(delivery_pk: str) -> int:
    """Evaluate the trigger rules of a stored inbound delivery."""
    return inbound.inbound_delivery_process(delivery_pk=delivery_pk)
