"""Account tasks."""

from celery import shared_task

from accounts.models import Organization
from accounts.services import audit_record


@shared_task
def record_worker_heartbeat(organization_id: str, worker_note: str = "") -> None:
    """Write an audit event from a worker: proves the broker→worker→database path."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return
    audit_record(action="system.worker_heartbeat", organization=organization, target=organization, changes={"note": worker_note})
