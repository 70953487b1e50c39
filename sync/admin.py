"""Admin for sync jobs."""

from django.contrib import admin

from sync.models import DataSyncJob


@admin.register(DataSyncJob)
class DataSyncJobAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "organization",
        "integration",
        "data_source",
        "job_type",
        "status",
        "records_processed",
        "error_count",
        "started_at",
        "completed_at",
    ]
    list_filter = ["status", "job_type", "organization"]
    search_fields = ["integration__display_name"]
    readonly_fields = ["started_at", "completed_at", "records_processed", "error_count", "error_log", "metadata"]
