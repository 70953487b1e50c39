"""Admin for scenario data models."""

from django.contrib import admin

from scenarios.models import ScenarioDataModel


@admin.register(ScenarioDataModel)
class ScenarioDataModelAdmin(admin.ModelAdmin):
    list_display = ["scenario_type", "version", "name", "updated_at"]
    list_filter = ["scenario_type"]
    search_fields = ["scenario_type", "name"]
