"""Sync jobs (the seed's data_sync_jobs)."""

from __future__ import annotations

from django.db import models

from accounts.models import Organization
from common.models import BaseModel
from integrations.models import DataSource, Integration


class JobType(models.TextChoices):
    IMPORT = "import", "Import"
    EXPORT = "export", "Export"
    SYNC = "sync", "Sync"


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    PARTIAL = "partial", "Partial"
    CANCELLED = "cancelled", "Cancelled"


class DataSyncJob(BaseModel):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sync_jobs")
    integration = models.ForeignKey(Integration, null=True, blank=True, on_delete=models.CASCADE, related_name="sync_jobs")
    data_source = models.ForeignKey(DataSource, null=True, blank=True, on_delete=models.CASCADE, related_name="sync_jobs")
    job_type = models.CharField(max_length=10, choices=JobType.choices, default=JobType.SYNC)
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    records_processed = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    error_log = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_job_type_display()} {self.status} ({self.created_at:%Y-%m-%d %H:%M})"
