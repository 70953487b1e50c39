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


class SyncRecord(BaseModel):
    """The records store: what syncs pulled, unique on (integration, entity, external id)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sync_records")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="sync_records")
    entity_type = models.CharField(max_length=80)
    external_id = models.CharField(max_length=255)
    raw = models.JSONField(default=dict, help_text="The vendor's record as received.")
    data = models.JSONField(default=dict, help_text="The record transformed into Bastion's shape (connector.to_bastion).")
    content_hash = models.CharField(max_length=64)
    source_updated_at = models.DateTimeField(null=True, blank=True, help_text="The source's own modification time.")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(db_index=True)
    last_seen_job = models.ForeignKey(DataSyncJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    is_deleted = models.BooleanField(default=False, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["entity_type", "external_id"]
        constraints = [models.UniqueConstraint(fields=["integration", "entity_type", "external_id"], name="unique_sync_record")]
        indexes = [models.Index(fields=["organization", "entity_type", "is_deleted"])]

    def __str__(self) -> str:
        return f"{self.entity_type}:{self.external_id}"


class Person(BaseModel):
    """One human per organization, merged across sources (matched by email, then by external ids)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="people")
    email = models.CharField(max_length=254, blank=True, db_index=True, help_text="Lower-cased; empty when no source knows it.")
    display_name = models.CharField(max_length=300, blank=True)
    given_name = models.CharField(max_length=150, blank=True)
    family_name = models.CharField(max_length=150, blank=True)
    title = models.CharField(max_length=300, blank=True)
    department = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    manager = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    groups = models.JSONField(default=list, blank=True)
    provenance = models.JSONField(default=dict, blank=True, help_text="Field → {value, source (connector key / csv / manual), integration id, at}.")
    is_active = models.BooleanField(default=True)
    search_text = models.TextField(blank=True, help_text="Lower-cased name, email, title, department for typeahead.")

    class Meta:
        ordering = ["display_name"]
        indexes = [models.Index(fields=["organization", "email"]), models.Index(fields=["organization", "display_name"])]

    def __str__(self) -> str:
        return self.display_name or self.email


class PersonIdentity(BaseModel):
    """A person's id in one source system (AD, Okta, Slack, Jira, CRM, CSV)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="identities")
    integration = models.ForeignKey(Integration, null=True, blank=True, on_delete=models.CASCADE, related_name="person_identities")
    source = models.CharField(max_length=60, help_text="Connector key, or 'csv' / 'manual'.")
    entity_type = models.CharField(max_length=80, blank=True)
    external_id = models.CharField(max_length=255)
    attributes = models.JSONField(default=dict, blank=True, help_text="What this source says about the person.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "source", "integration", "external_id"], name="unique_person_identity")]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"
