"""Steps a person takes part in: approval gates, human tasks, waits, status updates, and activation proposals."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from common.models import BaseModel


class HumanStepKind(models.TextChoices):
    APPROVAL = "approval", "Approval"
    TASK = "task", "Human task"
    WAIT = "wait", "Wait"
    STATUS_UPDATE = "status_update", "Status update"
    ACTIVATION = "activation", "Activation proposal"


class HumanStepState(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    CANCELLED = "cancelled", "Cancelled"


class Outcome(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    TIMED_OUT = "timed_out", "Timed out"
    DONE = "done", "Done"
    TIME_REACHED = "time_reached", "Time reached"
    CONDITION_MET = "condition_met", "Condition met"


class HumanStep(BaseModel):
    """One open (or finished) point where a run, or a trigger's proposal, waits for a person, a time or a condition."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="human_steps")
    playbook = models.ForeignKey("playbooks.Playbook", on_delete=models.CASCADE, related_name="human_steps")
    run = models.ForeignKey("playbooks.PlaybookRun", null=True, blank=True, on_delete=models.CASCADE, related_name="human_steps")
    step_run = models.OneToOneField("playbooks.StepRun", null=True, blank=True, on_delete=models.CASCADE, related_name="human_step")
    kind = models.CharField(max_length=16, choices=HumanStepKind.choices, db_index=True)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="The step's rendered configuration (approvers, deadlines, branches, condition…).")
    state = models.CharField(max_length=10, choices=HumanStepState.choices, default=HumanStepState.OPEN, db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    required_approvals = models.PositiveIntegerField(default=1)
    due_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text="Deadline: the timeout branch (approval, wait) or overdue (task).")
    wake_at = models.DateTimeField(null=True, blank=True, help_text="A wait until a time (or for a duration) ends here.")
    escalate_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    overdue_at = models.DateTimeField(null=True, blank=True, help_text="When an overdue task was raised and its assignee reminded.")
    stalled_at = models.DateTimeField(null=True, blank=True, help_text="When the beat check found nothing that will ever move this step.")
    stalled_reason = models.CharField(max_length=500, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    draft = models.TextField(blank=True, help_text="Status update: the summary drafted from the run's timeline.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["state", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title} ({self.outcome or self.state})"


class ParticipantRole(models.TextChoices):
    APPROVER = "approver", "Approver"
    ASSIGNEE = "assignee", "Assignee"


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    DONE = "done", "Done"


class Participant(BaseModel):
    """A person asked to act on a human step, with their one-time link (only its hash is stored)."""

    human_step = models.ForeignKey(HumanStep, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=10, choices=ParticipantRole.choices, default=ParticipantRole.APPROVER)
    required_role = models.CharField(max_length=10, help_text="The organization role re-checked when they decide.")
    via = models.CharField(max_length=120, blank=True, help_text="How they were chosen: role:admin, user:ava, escalation…")
    escalation_level = models.PositiveIntegerField(default=0)
    token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    token_used_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    chat_user_id = models.CharField(max_length=60, blank=True, help_text="The Slack member the approval buttons were sent to (only they can press them).")
    chat_notified_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_via = models.CharField(max_length=10, blank=True, help_text="war_room | email | api | chat")
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["escalation_level", "created_at"]
        constraints = [models.UniqueConstraint(fields=["human_step", "user", "role"], name="unique_participant_per_step")]

    def __str__(self) -> str:
        return f"{self.user} · {self.role} · {self.decision or 'pending'}"
