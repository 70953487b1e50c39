"""Admin for integrations, data sources and credentials (credential contents never shown)."""

from django.contrib import admin

from integrations.models import DataSource, Integration, IntegrationCredential


class CredentialInline(admin.TabularInline):
    model = IntegrationCredential
    extra = 0
    fields = ["credential_type", "scopes", "expires_at", "refreshed_at", "updated_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class DataSourceInline(admin.TabularInline):
    model = DataSource
    extra = 0
    fields = ["entity_type", "is_enabled", "last_synced_at", "is_stale", "schedule"]
    readonly_fields = ["last_synced_at", "is_stale"]


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ["display_name", "connector_key", "organization", "status", "last_success_at", "error_count", "calls_24h", "failures_24h"]
    list_filter = ["status", "connector_key", "organization"]
    search_fields = ["display_name", "connector_key", "organization__name", "external_account_id"]
    readonly_fields = ["last_sync_at", "last_success_at", "last_error", "last_error_at", "error_count", "calls_24h", "failures_24h", "created_at", "updated_at"]
    inlines = [DataSourceInline, CredentialInline]


@admin.register(DataSource)
class DataSourceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization", "entity_type", "is_enabled", "last_synced_at", "is_stale"]
    list_filter = ["is_enabled", "is_stale", "entity_type", "integration__connector_key"]
    search_fields = ["entity_type", "integration__display_name"]


@admin.register(IntegrationCredential)
class IntegrationCredentialAdmin(admin.ModelAdmin):
    list_display = ["integration", "organization", "credential_type", "expires_at", "refreshed_at", "updated_at"]
    list_filter = ["credential_type"]
    search_fields = ["integration__display_name"]
    fields = ["integration", "organization", "credential_type", "scopes", "expires_at", "refreshed_at", "created_at", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
