"""Celery tasks for human steps: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task

from playbooks.human import clock, notify


@shared_task(ignore_result=True)
def human_step_notify(human_step_id: str, reminder: bool = False) -> int:
    """E-mail each person asked to act (once), or remind them."""
    return notify.human_step_notify(human_step_id=human_step_id, reminder=reminder)


@shared_task(ignore_result=True)
def human_step_check(human_step_id: str) -> str:
    """Move one step whose time or condition came."""
    return clock.human_step_check(human_step_id=human_step_id)


@shared_task(ignore_result=True)
def human_waits_recheck(run_id: str) -> int:
    """Re-check a run's condition waits after its data changed."""
    return clock.waits_recheck(run_ids=[run_id])


@shared_task(ignore_result=True)
def human_steps_tick() -> dict[str, int]:
    """Beat: deadlines, escalations, overdue tasks, waits."""
    return clock.human_steps_tick()


@shared_task(ignore_result=True)
def human_steps_stall_check() -> list[str]:
    """Beat: raise any run waiting with nothing that will move it."""
    return clock.human_steps_stall_check()
