"""Admin for scenario instances. Definitions (ScenarioDataModel) are registered in forms_engine/admin.py, because their
structured editor previews the rendered form, and rendering forms is forms_engine's job (imports only go down the app list)."""

from django.contrib import admin

from scenarios.models import Scenario


@admin.register(Scenario)
class ScenarioAdmin(admin.ModelAdmin):
    list_display = ["title", "scenario_type", "organization", "status", "data_model", "updated_at"]
    list_filter = ["scenario_type", "status"]
    search_fields = ["title"]
    readonly_fields = ["organization", "data_model", "scenario_type", "values", "value_sources", "created_by", "created_at", "updated_at"]
    fields = ["title", "status", *readonly_fields]

    def has_add_permission(self, request) -> bool:
        return False  # scenarios are created through the form, which validates them
