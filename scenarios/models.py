"""Scenario data models (the seed's scenario_data_models): versioned definitions."""

from __future__ import annotations

from django.db import models

from common.models import BaseModel


class ScenarioDataModel(BaseModel):
    """One version of a scenario type's definition. Published versions are never edited: a change makes a new version."""

    scenario_type = models.CharField(max_length=60, db_index=True)
    version = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    field_definitions = models.JSONField(default=list, blank=True, help_text="Ordered fields: key, label, type, required, source, visible_if, validation…")
    data_source_mappings = models.JSONField(default=dict, blank=True, help_text="Derived: field key → source (connector, entity, mapping).")
    validation_rules = models.JSONField(default=list, blank=True, help_text="Cross-field rules: key, message, rule (JSON Logic), fields.")
    is_published = models.BooleanField(default=False, help_text="New scenarios use the latest published version.")
    published_at = models.DateTimeField(null=True, blank=True)
    change_note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["scenario_type", "-version"]
        constraints = [models.UniqueConstraint(fields=["scenario_type", "version"], name="unique_scenario_type_version")]

    def __str__(self) -> str:
        return f"{self.name or self.scenario_type} v{self.version}"

    @property
    def required_fields(self) -> list[str]:
        return [f["key"] for f in self.field_definitions if f.get("required")]

    @property
    def optional_fields(self) -> list[str]:
        return [f["key"] for f in self.field_definitions if not f.get("required")]


class ScenarioStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    READY = "ready", "Ready"
    ACTIVE = "active", "Active"
    CLOSED = "closed", "Closed"


class Scenario(BaseModel):
    """One scenario instance (a crisis, a launch, a deal) filled from a data model version."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="scenarios")
    data_model = models.ForeignKey(ScenarioDataModel, on_delete=models.PROTECT, related_name="scenarios")
    scenario_type = models.CharField(max_length=60, db_index=True)
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=ScenarioStatus.choices, default=ScenarioStatus.DRAFT)
    values = models.JSONField(default=dict, blank=True, help_text="Field key → value, shaped by the data model.")
    value_sources = models.JSONField(default=dict, blank=True, help_text="Field key → where each value came from (source record ids, CSV, manual, pre-fill).")
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title
