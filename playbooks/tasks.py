"""Celery tasks for playbooks: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from playbooks import services


@shared_task(ignore_result=True)
def playbook_run_advance(run_id: str) -> None:
    """Dispatch the steps of a run that became ready; finish the run when nothing more can move."""
    services.playbook_run_advance(run_id=run_id)


@shared_task(ignore_result=True, acks_late=True)
def step_run_execute(step_run_id: str) -> None:
    """Perform one step (one item) against its vendor."""
    services.step_run_execute(step_run_id=step_run_id)


@shared_task(ignore_result=True, acks_late=True)
def step_runs_execute_bulk(step_run_ids: list[str]) -> None:
    """Perform a chunk of a bulk step in one vendor call."""
    services.step_runs_execute_bulk(step_run_ids=step_run_ids)


@shared_task(ignore_result=True)
def playbook_tasks_poll() -> int:
    """Periodic backstop: read the state of open tasks where a vendor sends no webhooks."""
    return services.playbook_tasks_poll()


@shared_task(ignore_result=True)
def playbook_runs_resume_stalled() -> int:
    """Periodic: re-send steps whose worker died mid-activation."""
    return services.playbook_runs_resume_stalled()


@shared_task(ignore_result=True, acks_late=True)
def step_run_undo_execute(step_run_id: str) -> None:
    """Undo one object a cancelled run created (archive, cancel, close) in its vendor."""
    services.step_run_undo_execute(step_run_id=step_run_id)
