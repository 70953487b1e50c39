"""Retention settings and the record of data-rights requests."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import Organization
from common.models import BaseModel


class RetentionPolicy(BaseModel):
    """How long an organization keeps what Bastion collects; enforced by a scheduled task."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="retention_policy")
    deleted_records_days = models.PositiveIntegerField(default=30, help_text="Synced records marked deleted at the source are purged after this many days.")
    webhook_deliveries_days = models.PositiveIntegerField(default=14, help_text="Webhook deliveries (the inbox) are purged after this many days.")
    job_logs_days = models.PositiveIntegerField(default=90, help_text="Finished sync jobs and their logs are purged after this many days.")

    class Meta:
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"Retention for {self.organization}"


class DataRightsRequest(BaseModel):
    class Kind(models.TextChoices):
        EXPORT = "export", "Export"
        ERASE = "erase", "Erase"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="data_rights_requests")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    subject_reference = models.CharField(
        max_length=64, help_text="Keyed HMAC-SHA256 of the subject's email (or person id): identifies the request without keeping the address."
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    summary = models.JSONField(default=dict, blank=True, help_text="Counts of what was exported or erased, per table.")

    class Meta:
        ordering = ["-created_at"]
