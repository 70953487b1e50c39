"""Admin for the sync engine: jobs with progress ("Run again", "Cancel"), the records store, people, the webhook inbox ("Replay")."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from common.errors import ApplicationError
from sync import services
from sync.models import DataSyncJob, SyncJobLog, SyncRecord, SyncScanSeen, WebhookDelivery
from sync.selectors import records_with_last_seen


class SyncJobLogInline(admin.TabularInline):
    model = SyncJobLog
    extra = 0
    can_delete = False
    fields = ["at", "level", "event", "message"]
    readonly_fields = fields
    ordering = ["-id"]
    max_num = 0

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-id")


@admin.register(DataSyncJob)
class DataSyncJobAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "organization",
        "integration",
        "data_source",
        "job_type",
        "trigger",
        "status",
        "phase",
        "progress",
        "error_count",
        "heartbeat_at",
    ]
    list_filter = ["status", "job_type", "trigger", "phase", "organization"]
    search_fields = ["integration__display_name", "data_source__entity_type", "last_error"]
    readonly_fields = [f.name for f in DataSyncJob._meta.fields]
    inlines = [SyncJobLogInline]
    actions = ["run_now", "cancel"]

    @admin.display(description="Progress")
    def progress(self, job: DataSyncJob) -> str:
        return f"{job.records_processed} records · {job.pages} pages · +{job.created_count} ~{job.updated_count} −{job.deleted_count}"

    @admin.action(description="Run now (start a new sync of the same data source)")
    def run_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        for job in queryset.select_related("data_source", "data_source__integration"):
            if job.data_source is None:
                continue
            try:
                started = services.sync_start(data_source=job.data_source, actor=request.user)
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
                continue
            note = "already running" if started.already_running else "started"
            self.message_user(request, f"{job.data_source}: {note}.")

    @admin.action(description="Cancel")
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        for job in queryset:
            try:
                services.sync_job_cancel(job=job, actor=request.user)
            except ApplicationError as error:
                self.message_user(request, f"{job}: {error.message}", messages.WARNING)


@admin.register(SyncRecord)
class SyncRecordAdmin(admin.ModelAdmin):
    list_display = ["external_id", "entity_type", "integration", "is_deleted", "source_updated_at", "last_seen"]
    list_filter = ["entity_type", "is_deleted", "integration"]
    search_fields = ["external_id"]
    readonly_fields = [*(f.name for f in SyncRecord._meta.fields), "last_seen"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return records_with_last_seen(super().get_queryset(request))

    @admin.display(description="Last seen", ordering="seen_at")
    def last_seen(self, record: SyncRecord) -> Any:
        return record.seen_at


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["received_at", "integration", "delivery_id", "event_types", "status", "attempts", "duplicates", "last_error"]
    list_filter = ["status", "integration"]
    search_fields = ["delivery_id"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["replay"]

    @admin.action(description="Replay (process again)")
    def replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        for delivery in queryset:
            services.webhook_delivery_replay(delivery=delivery)
        self.message_user(request, f"{queryset.count()} deliveries queued for replay.")


@admin.register(SyncScanSeen)
class SyncScanSeenAdmin(admin.ModelAdmin):
    """A running full scan's list of records it found unchanged (read-only; emptied when the job ends)."""

    list_display = ["job_id", "external_id"]
    search_fields = ["external_id", "job_id"]
    readonly_fields = ["job_id", "external_id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
