"""Admin for retention settings and the record of data-rights requests."""

from django.contrib import admin

from data_rights.models import DataRightsRequest, RetentionPolicy


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ["organization", "deleted_records_days", "webhook_deliveries_days", "job_logs_days", "updated_at"]
    search_fields = ["organization__name"]


@admin.register(DataRightsRequest)
class DataRightsRequestAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "kind", "subject_reference", "requested_by"]
    list_filter = ["kind", "organization"]
    readonly_fields = ["organization", "kind", "subject_reference", "requested_by", "summary", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
