"""Sync jobs (the seed's data_sync_jobs)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

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


class JobTrigger(models.TextChoices):
    MANUAL = "manual", "Manual"
    SCHEDULE = "schedule", "Schedule"
    WEBHOOK = "webhook", "Webhook"
    UPLOAD = "upload", "Upload"


ACTIVE_JOB_STATUSES = (JobStatus.PENDING, JobStatus.RUNNING)


class DataSyncJob(BaseModel):
    """One run of a sync or import, with live progress; one active job per data source (DB-enforced)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sync_jobs")
    integration = models.ForeignKey(Integration, null=True, blank=True, on_delete=models.CASCADE, related_name="sync_jobs")
    data_source = models.ForeignKey(DataSource, null=True, blank=True, on_delete=models.CASCADE, related_name="sync_jobs")
    job_type = models.CharField(max_length=10, choices=JobType.choices, default=JobType.SYNC)
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    records_processed = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    error_log = models.JSONField(default=list, blank=True, help_text="The first errors (capped); every error is also in the job log.")
    metadata = models.JSONField(default=dict, blank=True)
    # Live progress
    trigger = models.CharField(max_length=10, choices=JobTrigger.choices, default=JobTrigger.MANUAL)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    is_full_refresh = models.BooleanField(default=False)
    phase = models.CharField(max_length=40, blank=True, help_text="queued, reading, paused, finalizing, done…")
    pages = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    deleted_count = models.PositiveIntegerField(default=0)
    total_estimate = models.PositiveIntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, db_index=True)
    resume_at = models.DateTimeField(null=True, blank=True, help_text="When a paused (rate-limited) job continues.")
    start_cursor = models.JSONField(null=True, blank=True, help_text="The data source cursor this run reads from.")
    next_page = models.JSONField(null=True, blank=True, help_text="In-run position of the next page, committed with each page.")
    is_full_scan = models.BooleanField(default=True, help_text="Every page so far was part of a full scan.")
    attempts = models.PositiveIntegerField(default=0, help_text="Consecutive transient failures of the current page.")
    is_cancel_requested = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    error_class = models.CharField(max_length=20, blank=True, help_text="configuration | auth | transient | system")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["data_source"],
                condition=Q(status__in=["pending", "running"]),
                name="one_active_job_per_data_source",
            )
        ]
        indexes = [models.Index(fields=["organization", "status"]), models.Index(fields=["status", "heartbeat_at"])]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_JOB_STATUSES

    @property
    def is_paused(self) -> bool:
        return self.phase == "paused"

    def __str__(self) -> str:
        return f"{self.get_job_type_display()} {self.status} ({self.created_at:%Y-%m-%d %H:%M})"


class SyncRecord(BaseModel):
    """The records store: what syncs pulled, unique on (integration, entity, external id).

    Few indexes on purpose: syncs re-stamp the records they see (last_seen_*), and with none of the stamped columns
    indexed PostgreSQL updates them in place (HOT) instead of rewriting every index entry. A full scan on PostgreSQL does
    not stamp unchanged records at all: it lists them in SyncScanSeen, and the scan itself vouches for every record it
    left live (sync.selectors.records_with_last_seen gives the effective "last seen").
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sync_records", db_index=False)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="sync_records", db_index=False)
    entity_type = models.CharField(max_length=80)
    external_id = models.CharField(max_length=255)
    raw = models.JSONField(default=dict, help_text="The vendor's record as received.")
    data = models.JSONField(default=dict, help_text="The record transformed into Bastion's shape (connector.to_bastion).")
    content_hash = models.CharField(max_length=64)
    source_updated_at = models.DateTimeField(null=True, blank=True, help_text="The source's own modification time.")
    created_at = models.DateTimeField(auto_now_add=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    # No database constraint: a full sync re-stamps every record it sees, and a foreign-key check per stamped row at commit was the
    # largest single cost of an unchanged re-sync. The id is only compared with the running job's (deletion detection); a
    # dangling id left by a purged job means "seen by a job that no longer exists", which is what it says.
    last_seen_job = models.ForeignKey(DataSyncJob, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False)
    is_deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["entity_type", "external_id"]
        # The unique constraint's index serves lookups by integration; the organization index serves forms and deletes.
        constraints = [models.UniqueConstraint(fields=["integration", "entity_type", "external_id"], name="unique_sync_record")]
        indexes = [models.Index(fields=["organization", "entity_type", "is_deleted"])]

    def __str__(self) -> str:
        return f"{self.entity_type}:{self.external_id}"


class SyncScanSeen(models.Model):
    """An external id a full scan found unchanged, by job: deletion detection reads these instead of re-stamping every record.

    Append-only while the job runs (one INSERT per page, no index to maintain), emptied when the job ends; rows of a job that
    died are removed by the reaper.
    """

    id = models.BigAutoField(primary_key=True)
    job_id = models.UUIDField()
    external_id = models.CharField(max_length=255)

    class Meta:
        verbose_name = "record seen by a scan"
        verbose_name_plural = "records seen by scans"

    def __str__(self) -> str:
        return self.external_id


class SyncJobLog(models.Model):
    """One line of a job's log: what happened, never a secret or a vendor body."""

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(DataSyncJob, on_delete=models.CASCADE, related_name="log_lines")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    level = models.CharField(max_length=10, default="info")  # info | warning | error
    event = models.CharField(max_length=80)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.level} {self.event}"


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"


class WebhookDelivery(BaseModel):
    """The webhook inbox: one row per vendor delivery, deduplicated by its id, replayable."""

    # Every accepted delivery is one INSERT, so the inbox keeps only the checks and indexes that earn their cost there. The
    # organization is the integration's (copied from it for tenant-scoped lists): the integration's foreign key already
    # refuses a delivery whose integration (or its organization) is gone, so a second check per insert (a lookup and a row
    # lock on the organization) adds nothing; deleting an organization still deletes its deliveries (Django cascades).
    # Neither key needs its own index: (organization, status) and (integration, delivery_id) begin with them.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_deliveries", db_constraint=False, db_index=False)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="webhook_deliveries", db_index=False)
    delivery_id = models.CharField(max_length=255)
    event_types = models.JSONField(default=list, blank=True)
    events = models.JSONField(default=list, blank=True, help_text="Parsed events (dataclasses.asdict(WebhookEvent)).")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED)  # indexed below, without a LIKE index
    received_at = models.DateTimeField(db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0, help_text="How many times the vendor sent it again.")
    last_error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["integration", "delivery_id"], name="unique_webhook_delivery")]
        indexes = [models.Index(fields=["organization", "status"]), models.Index(fields=["status"], name="sync_webhook_status_idx")]

    def __str__(self) -> str:
        return f"{self.delivery_id} ({self.status})"
