"""One-time signed links bound to a person and a step, the e-mails that carry them, and the drafted status update."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from playbooks.human.models import HumanStep, HumanStepKind, HumanStepState, Participant, ParticipantRole
from playbooks.models import PlaybookRun, StepStatus

logger = logging.getLogger(__name__)
TOKEN_SALT = "bastion.playbooks.human-step"


def _token_ttl() -> timedelta:
    return timedelta(hours=float(getattr(settings, "BASTION_APPROVAL_LINK_HOURS", 72)))


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def token_issue(participant: Participant) -> str:
    """A new link for this person and step; only the nonce's hash is stored, and issuing again voids the previous link."""
    nonce = secrets.token_urlsafe(24)
    expires = timezone.now() + _token_ttl()
    if participant.human_step.due_at and participant.human_step.due_at + timedelta(minutes=5) < expires:
        expires = participant.human_step.due_at + timedelta(minutes=5)
    participant.token_hash = _hash(nonce)
    participant.token_expires_at = expires
    participant.token_used_at = None
    participant.save(update_fields=["token_hash", "token_expires_at", "token_used_at", "updated_at"])
    return signing.dumps({"p": str(participant.pk), "n": nonce}, salt=TOKEN_SALT)


class TokenProblem(Exception):
    """A link that cannot be used: bad signature, expired, already used or replaced."""

    def __init__(self, code: str, message: str, status: int = 403):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def token_participant(token: str) -> Participant:
    """The participant a link belongs to; raises TokenProblem for a forged, expired, used or replaced link."""
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=_token_ttl())
    except signing.SignatureExpired:
        raise TokenProblem("link_expired", "This link has expired. Open the war room to act, or ask for a new link.", 410)
    except signing.BadSignature:
        raise TokenProblem("link_invalid", "This link is not valid.", 404)
    participant = (
        Participant.objects.select_related("human_step", "human_step__run", "user").filter(pk=data.get("p")).first() if isinstance(data, dict) else None
    )
    if participant is None or not participant.token_hash or participant.token_hash != _hash(str(data.get("n", ""))):
        raise TokenProblem("link_invalid", "This link is not valid (a newer one may have been sent).", 404)
    if participant.token_used_at is not None:
        raise TokenProblem("link_used", "This link was already used: each link decides once.", 409)
    if participant.token_expires_at and participant.token_expires_at < timezone.now():
        raise TokenProblem("link_expired", "This link has expired. Open the war room to act.", 410)
    return participant


def _link(token: str) -> str:
    return f"{settings.BASTION_PUBLIC_URL.rstrip('/')}/approvals/{token}/"


def _message(human: HumanStep, participant: Participant, link: str, *, reminder: bool) -> tuple[str, str]:
    where = human.playbook.name
    deadline = f"\nDeadline: {timezone.localtime(human.due_at):%Y-%m-%d %H:%M %Z}." if human.due_at else ""
    opener = "Reminder: " if reminder else ""
    if participant.role == ParticipantRole.ASSIGNEE:
        subject = f"{opener}Task for you: {human.title}"
        body = f"You have a task in “{where}”:\n\n{human.title}\n{human.description}\n{deadline}\n\nMark it done (you will confirm on the page): {link}\n"
    else:
        need = f"{human.required_approvals} approval(s) needed." if human.required_approvals > 1 else ""
        subject = f"{opener}Approval needed: {human.title}"
        draft = f"\n\nDraft to be sent:\n{human.draft}\n" if human.draft else ""
        body = (
            f"“{where}” waits for your decision:\n\n{human.title}\n{human.description}\n{need}{deadline}{draft}\n\n"
            f"Approve or reject (you will confirm on the page; opening the link decides nothing): {link}\n"
        )
    return subject, body


def human_step_notify(*, human_step_id: Any, reminder: bool = False) -> int:
    """E-mail each participant not yet told (once each), or remind those who have not acted. Returns e-mails sent.

    Each person is handled in their own transaction with their row locked: the link is stored and the mail sent together,
    so a failed send leaves that person unmarked (the beat sends it again) without re-sending to the others.
    """
    human = HumanStep.objects.select_related("playbook").filter(pk=human_step_id).first()
    if human is None or human.state != HumanStepState.OPEN:
        return 0
    pending = human.participants.filter(decided_at__isnull=True)
    pending = pending.filter(reminded_at__isnull=True) if reminder else pending.filter(notified_at__isnull=True)
    sent = 0
    for participant_id in pending.values_list("pk", flat=True):
        try:
            sent += _notify_one(human, participant_id, reminder=reminder)
        except Exception:  # noqa: BLE001 - SMTP down: this person stays unmarked and the beat retries; the others still get theirs
            logger.exception("playbooks.human.notify_failed", extra={"human_step": str(human.pk), "participant": str(participant_id)})
    return sent


def _notify_one(human: HumanStep, participant_id: Any, *, reminder: bool) -> int:
    with transaction.atomic():
        participant = Participant.objects.select_for_update(of=("self",)).select_related("user").get(pk=participant_id)
        if participant.decided_at is not None or (participant.reminded_at if reminder else participant.notified_at) is not None:
            return 0
        if not participant.user.email:
            logger.warning("playbooks.human.no_email", extra={"participant": str(participant.pk)})
            return 0
        participant.human_step = human
        link = _link(token_issue(participant))
        subject, body = _message(human, participant, link, reminder=reminder)
        setattr(participant, "reminded_at" if reminder else "notified_at", timezone.now())
        participant.save(update_fields=["reminded_at", "notified_at", "updated_at"])
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [participant.user.email], fail_silently=False)
    if not reminder:
        from playbooks.human.chat import chat_notify

        try:
            chat_notify(human, participant, link)
        except Exception:  # noqa: BLE001 - the e-mail went out; the Slack DM is a convenience, logged when it fails
            logger.exception("playbooks.human.chat_failed", extra={"participant": str(participant.pk)})
    return 1


def draft_status_update(run: PlaybookRun) -> str:
    """An executive summary from the run's steps, tracked tasks and timeline: done, pending, blocked, who owns what."""
    steps = list(run.step_runs.filter(undo_of__isnull=True).order_by("position", "item_index"))
    groups: dict[str, dict[str, Any]] = {}
    for step in steps:
        group = groups.setdefault(step.step_key, {"name": step.step_name, "statuses": set(), "errors": []})
        group["statuses"].add(step.status)
        if step.status == StepStatus.FAILED and step.last_error:
            group["errors"].append(step.last_error)
    done = [g["name"] for g in groups.values() if g["statuses"] <= {StepStatus.SUCCEEDED}]
    blocked = [f"{g['name']}: {g['errors'][0]}" for g in groups.values() if StepStatus.FAILED in g["statuses"]]
    pending = [
        g["name"]
        for g in groups.values()
        if g["statuses"] & {StepStatus.PENDING, StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.RETRYING, StepStatus.WAITING}
    ]
    owners: dict[str, list[str]] = {}
    for task in run.tasks.filter(is_done=False).order_by("title"):
        owners.setdefault(task.owner or "unassigned", []).append(task.title)
    lines = [f"Status update: {run.playbook.name} — {run.get_status_display().lower()} as of {timezone.localtime():%Y-%m-%d %H:%M %Z}", ""]
    lines.append(f"Done ({len(done)}): " + ("; ".join(done) or "nothing yet"))
    lines.append(f"Pending ({len(pending)}): " + ("; ".join(pending) or "nothing"))
    lines.append(f"Blocked ({len(blocked)}): " + ("; ".join(blocked) or "nothing"))
    if owners:
        lines.append("Who owns what:")
        lines.extend(f"- {owner}: {len(titles)} open ({'; '.join(titles[:3])}{'…' if len(titles) > 3 else ''})" for owner, titles in sorted(owners.items()))
    recent = list(run.timeline.order_by("-at", "-id")[:5])
    if recent:
        lines.append("Latest:")
        lines.extend(f"- {timezone.localtime(event.at):%H:%M} {event.message}" for event in reversed(recent))
    return "\n".join(lines)


def is_activation(human: HumanStep) -> bool:
    return human.kind == HumanStepKind.ACTIVATION
