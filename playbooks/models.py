"""Playbook templates (edited by ops in the admin), playbooks, runs, step runs, tracked tasks and the timeline."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from common.models import BaseModel


class PlaybookTemplate(BaseModel):
    """What a scenario type's playbook does when activated: an ordered set of steps."""

    scenario_type = models.CharField(max_length=60, db_index=True, help_text="Scenario type this template serves, e.g. crisis_management.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True, help_text="Offered when a playbook is created for this scenario type.")
    manual_baseline_minutes = models.PositiveIntegerField(default=120, help_text="How long the same coordination takes by hand (the seed says 2 hours).")

    class Meta:
        ordering = ["scenario_type", "name"]
        constraints = [models.UniqueConstraint(fields=["scenario_type", "name"], name="unique_playbook_template_name")]

    def __str__(self) -> str:
        return self.name


class PlaybookStepTemplate(BaseModel):
    """One step: a connector action with a payload template, its dependencies and how it fans out."""

    template = models.ForeignKey(PlaybookTemplate, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0)
    key = models.SlugField(max_length=60, help_text="Unique within the template; other steps refer to it as steps.<key>.")
    name = models.CharField(max_length=200)
    connector_key = models.CharField(
        max_length=60,
        help_text="Connector that performs the action (jira, email…), or a role the organization's connected tools play: "
        "@chat (the collaboration channel), @meeting (the meeting), @documents, @tasks (Jira or Asana), @signatures (DocuSign).",
    )
    action = models.CharField(max_length=60, help_text="Action key from the connector's manifest.")
    payload_template = models.JSONField(
        default=dict, blank=True, help_text="JSON payload; strings may use {{ scenario.x }}, {{ item.x }}, {{ steps.<key>.external_id }}."
    )
    depends_on = models.JSONField(default=list, blank=True, help_text="Step keys that must succeed first.")
    for_each = models.CharField(
        max_length=120, blank=True, help_text="Fan out: 'items' (this step's item list) or a scenario list path such as 'scenario.stakeholders'."
    )
    items = models.JSONField(default=list, blank=True, help_text="Static item definitions for for_each='items' (e.g. the crisis task list).")
    item_key = models.CharField(max_length=60, blank=True, help_text="Item field that identifies an item stably (default: key, email, person_id or position).")
    is_bulk = models.BooleanField(default=False, help_text="Send the items through the connector's bulk endpoint (Jira: 50 issues per call).")
    bulk_chunk_size = models.PositiveIntegerField(
        default=50, help_text="Items per bulk call; smaller chunks run in parallel (useful when the connector does per-item lookups)."
    )
    is_required = models.BooleanField(default=True, help_text="A missing integration makes the run partial (required) or just skips the step (optional).")
    condition = models.JSONField(null=True, blank=True, help_text="JSON Logic over the scenario values; the step runs only when true.")
    task_kind = models.CharField(max_length=40, blank=True, help_text="Track created objects as tasks: jira_issue, slack_channel, calendar_event, incident…")
    description = models.CharField(
        max_length=300, blank=True, help_text="Preview sentence, e.g. 'creates {{ count }} Jira issues in project {{ payload.project_key }}'."
    )

    class Meta:
        ordering = ["template", "position", "key"]
        constraints = [models.UniqueConstraint(fields=["template", "key"], name="unique_step_key_per_template")]

    def __str__(self) -> str:
        return f"{self.template.name} · {self.key}"


class PlaybookStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    PARTIAL = "partial", "Needs attention"
    CANCELLED = "cancelled", "Cancelled"


class Playbook(BaseModel):
    """A scenario's playbook: a template bound to the organization's integrations."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="playbooks")
    scenario = models.ForeignKey("scenarios.Scenario", on_delete=models.CASCADE, related_name="playbooks")
    template = models.ForeignKey(PlaybookTemplate, on_delete=models.PROTECT, related_name="playbooks")
    name = models.CharField(max_length=300)
    integration_bindings = models.JSONField(default=dict, blank=True, help_text="Connector key → integration id to use (default: the one connected).")
    status = models.CharField(max_length=12, choices=PlaybookStatus.choices, default=PlaybookStatus.DRAFT, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partial"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class PlaybookRun(BaseModel):
    """One activation of a playbook."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="playbook_runs")
    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING, db_index=True)
    activated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Activation wall time: first step dispatched to last step finished.")
    manual_baseline_minutes = models.PositiveIntegerField(default=120)
    error_summary = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="The scenario values and playbook facts the payloads were rendered from.")
    undo_requested_at = models.DateTimeField(null=True, blank=True, help_text="When a person asked to undo what this run created in the vendors.")
    undo_requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.playbook} · {self.status}"


class StepStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Retrying"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"
    WAITING = "waiting", "Waiting on a person, a time or a condition"


ACTIVE_STEP_STATUSES = (StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.RETRYING)
DONE_STEP_STATUSES = (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED)


class StepRun(BaseModel):
    """One unit of external work: a step, or one item of a fanned-out step. The idempotency key is stored before the call."""

    run = models.ForeignKey(PlaybookRun, on_delete=models.CASCADE, related_name="step_runs")
    step_key = models.CharField(max_length=60)
    step_name = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0)
    item_index = models.PositiveIntegerField(default=0)
    item_key = models.CharField(max_length=200, blank=True)
    item = models.JSONField(null=True, blank=True)
    connector_key = models.CharField(max_length=60)
    action = models.CharField(max_length=60)
    depends_on = models.JSONField(default=list, blank=True)
    is_bulk = models.BooleanField(default=False)
    bulk_chunk_size = models.PositiveIntegerField(default=50)
    is_required = models.BooleanField(default=True)
    task_kind = models.CharField(max_length=40, blank=True)
    integration = models.ForeignKey("integrations.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=StepStatus.choices, default=StepStatus.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=80, db_index=True)
    payload = models.JSONField(null=True, blank=True, help_text="Rendered once when the step becomes ready, reused on every retry.")
    external_id = models.CharField(max_length=200, blank=True)
    external_url = models.URLField(max_length=1000, blank=True)
    result = models.JSONField(default=dict, blank=True)
    reused_existing = models.BooleanField(default=False, help_text="The vendor already had this object (a retry or re-activation found it).")
    last_error = models.TextField(blank=True)
    error_class = models.CharField(max_length=20, blank=True, help_text="configuration | auth | transient | system")
    lease_expires_at = models.DateTimeField(null=True, blank=True, help_text="A worker holds the step until then; a dead worker's lease expires.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    undo_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="undo_step", help_text="The step whose vendor object this step undoes."
    )

    class Meta:
        ordering = ["position", "item_index"]
        constraints = [models.UniqueConstraint(fields=["run", "step_key", "item_key"], name="unique_step_run_item")]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"{self.step_key}[{self.item_key}] {self.status}"

    @property
    def item_title(self) -> str:
        """What this item is about (the person invited, the task filed), when the step runs per item."""
        if not isinstance(self.item, dict):
            return ""
        return str(self.item.get("title") or self.item.get("name") or self.item.get("email") or "")

    @property
    def label(self) -> str:
        title = self.item_title
        return f"{self.step_name}: {title}" if title else self.step_name


class Task(BaseModel):
    """An external object a playbook created and keeps tracking (a Jira issue, the Slack channel, the meeting…)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="playbook_tasks")
    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="tasks")
    run = models.ForeignKey(PlaybookRun, on_delete=models.CASCADE, related_name="tasks")
    step_run = models.OneToOneField(StepRun, on_delete=models.CASCADE, related_name="task")
    integration = models.ForeignKey("integrations.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=40, db_index=True)
    external_id = models.CharField(max_length=200, db_index=True)
    external_key = models.CharField(max_length=200, blank=True, db_index=True, help_text="Human key when it differs from the id (Jira OPS-12).")
    url = models.URLField(max_length=1000, blank=True)
    title = models.CharField(max_length=500)
    owner = models.CharField(max_length=254, blank=True, help_text="Who owns it (e-mail).")
    status = models.CharField(max_length=60, default="open")
    is_done = models.BooleanField(default=False)
    details = models.JSONField(default=dict, blank=True, help_text="Vendor facts kept for the war room (attendee responses, archive state…).")
    last_event_at = models.DateTimeField(null=True, blank=True, help_text="Vendor time of the newest state applied (event time or the object's updated time).")
    status_source = models.CharField(max_length=10, blank=True, help_text="Where the current status came from: created | webhook | poll | undo.")
    last_polled_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text="When the polling backstop last read this object.")

    class Meta:
        ordering = ["kind", "title"]

    def __str__(self) -> str:
        return f"{self.kind} {self.external_key or self.external_id}"


class TimelineEvent(models.Model):
    """What happened, in order: the war room's timeline."""

    run = models.ForeignKey(PlaybookRun, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=40)
    message = models.CharField(max_length=1000)
    step_key = models.CharField(max_length=60, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.message}"


# Steps a person takes part in and trigger rules live in their own modules; importing them here registers the models.
from playbooks.as_code.models import PlaybookTemplateVersion  # noqa: E402, F401
from playbooks.human.models import HumanStep, Participant  # noqa: E402, F401
from playbooks.triggers.models import InboundDelivery, InboundEndpoint, TriggerFiring, TriggerRule  # noqa: E402, F401
