"""Trigger rules (vendor event or signed inbound webhook → propose or activate a playbook) and their firing log."""

from __future__ import annotations

from django.db import models

from common.fields import EncryptedJSONField
from common.models import BaseModel


class TriggerMode(models.TextChoices):
    PROPOSE = "propose", "Propose (ask the accountable people to approve activation)"
    ACTIVATE = "activate", "Activate directly"


class TriggerRule(BaseModel):
    """When an event from `source` matches `condition`, make a scenario from `mapping` and propose or activate a playbook."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="trigger_rules")
    name = models.CharField(max_length=200)
    template = models.ForeignKey("playbooks.PlaybookTemplate", on_delete=models.PROTECT, related_name="trigger_rules")
    source = models.CharField(
        max_length=60, help_text="Connector key of the events (pagerduty, okta, jira…), 'inbound' for the generic signed webhook, or 'schedule'."
    )
    integration = models.ForeignKey(
        "integrations.Integration",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only events of this integration (default: any).",
    )
    inbound_endpoint = models.ForeignKey("playbooks.InboundEndpoint", null=True, blank=True, on_delete=models.CASCADE, related_name="rules")
    event_types = models.JSONField(default=list, blank=True, help_text="Event types watched (empty: all), e.g. ['incident.triggered'].")
    condition = models.JSONField(null=True, blank=True, help_text="JSON Logic over the event {connector, event_type, entity, external_id, record…}.")
    mapping = models.JSONField(default=dict, blank=True, help_text="Scenario field → JSON Logic over the event (or a literal).")
    defaults = models.JSONField(default=dict, blank=True, help_text="Scenario values used when the mapping gives none (team, commander…).")
    mode = models.CharField(max_length=10, choices=TriggerMode.choices, default=TriggerMode.PROPOSE)
    approval = models.JSONField(
        default=dict, blank=True, help_text="Propose mode: {approvers: [{role}|{user}], required, timeout_minutes, on_timeout: drop|activate}."
    )
    integration_bindings = models.JSONField(default=dict, blank=True, help_text="Connector key → integration id for the playbook it makes.")
    schedule = models.JSONField(
        null=True,
        blank=True,
        help_text="Source 'schedule': {date_field: 'launch_date', offset_days: -7, at: '09:00', timezone: 'Europe/Paris'} over the template's scenarios.",
    )
    cooldown_seconds = models.PositiveIntegerField(default=900, help_text="After a firing, the rule does not fire again for this long.")
    is_enabled = models.BooleanField(default=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FiringOutcome(models.TextChoices):
    PROPOSED = "proposed", "Fired: proposed"
    ACTIVATED = "activated", "Fired: activated"
    UPDATED = "updated", "Update to the run it started"
    NOT_MATCHED = "not_matched", "Not fired: condition false"
    EVENT_NOT_WATCHED = "not_watched", "Not fired: event type not watched"
    COOLDOWN = "cooldown", "Not fired: cooldown"
    DISABLED = "disabled", "Not fired: rule disabled"
    FAILED = "failed", "Not fired: error"


FIRED_OUTCOMES = (FiringOutcome.PROPOSED, FiringOutcome.ACTIVATED)


class TriggerFiring(BaseModel):
    """One evaluation of a rule against one event: a firing, an update, or a non-firing with its reason."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(TriggerRule, on_delete=models.CASCADE, related_name="firings")
    resource_key = models.CharField(max_length=300, help_text="The external resource (connector:entity:id) the event is about.")
    event_type = models.CharField(max_length=120, blank=True)
    delivery_id = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=12, choices=FiringOutcome.choices, db_index=True)
    is_firing = models.BooleanField(default=False, help_text="True for the one firing per rule and resource.")
    reason = models.TextField(blank=True)
    event = models.JSONField(default=dict, blank=True)
    values = models.JSONField(default=dict, blank=True, help_text="Scenario values the mapping produced.")
    scenario = models.ForeignKey("scenarios.Scenario", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    playbook = models.ForeignKey("playbooks.Playbook", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run = models.ForeignKey("playbooks.PlaybookRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    received_at = models.DateTimeField(null=True, blank=True, help_text="When the event reached Bastion (for time-to-first-action).")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "resource_key"], condition=models.Q(is_firing=True), name="trigger_fires_once_per_resource"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} · {self.resource_key} · {self.outcome}"


class InboundEndpoint(BaseModel):
    """A signed generic webhook for a system Bastion has no connector for (HMAC-SHA256 over timestamp + body)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="inbound_endpoints")
    name = models.CharField(max_length=200)
    secret = EncryptedJSONField(help_text="{'secret': ...}; shown once when created.")
    is_enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class InboundDelivery(BaseModel):
    """A verified delivery to an inbound endpoint, stored before processing (deduplicated by its delivery id)."""

    endpoint = models.ForeignKey(InboundEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.CharField(max_length=255)
    event = models.JSONField(default=dict)
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "inbound deliveries"
        constraints = [models.UniqueConstraint(fields=["endpoint", "delivery_id"], name="unique_inbound_delivery")]
