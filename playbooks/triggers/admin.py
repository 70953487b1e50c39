"""Admin for trigger rules (each rule's page lists its firings and non-firings with their reasons) and inbound endpoints."""

from django.contrib import admin

from playbooks.triggers.models import InboundDelivery, InboundEndpoint, TriggerFiring, TriggerRule


class TriggerFiringInline(admin.TabularInline):
    model = TriggerFiring
    extra = 0
    can_delete = False
    ordering = ["-created_at"]
    fields = ["created_at", "outcome", "resource_key", "event_type", "reason", "playbook", "run"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("playbook", "run")


@admin.register(TriggerRule)
class TriggerRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "source", "mode", "template", "cooldown_seconds", "is_enabled", "last_fired_at"]
    list_filter = ["source", "mode", "is_enabled"]
    search_fields = ["name"]
    readonly_fields = ["last_fired_at"]
    inlines = [TriggerFiringInline]


@admin.register(TriggerFiring)
class TriggerFiringAdmin(admin.ModelAdmin):
    list_display = ["created_at", "rule", "outcome", "resource_key", "event_type", "reason"]
    list_filter = ["outcome"]
    search_fields = ["resource_key", "rule__name"]
    readonly_fields = [f.name for f in TriggerFiring._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(InboundEndpoint)
class InboundEndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "is_enabled", "created_at"]
    exclude = ["secret"]  # created through the API, which shows the secret once


@admin.register(InboundDelivery)
class InboundDeliveryAdmin(admin.ModelAdmin):
    list_display = ["delivery_id", "endpoint", "received_at", "processed_at", "last_error"]
    search_fields = ["delivery_id"]
    readonly_fields = [f.name for f in InboundDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
