"""Scenario data models (the seed's scenario_data_models): versioned definitions."""

from __future__ import annotations

from django.db import models

from common.models import BaseModel


class ScenarioDataModel(BaseModel):
    scenario_type = models.CharField(max_length=60, db_index=True)
    version = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=200, blank=True)
    field_definitions = models.JSONField(default=list, blank=True)
    data_source_mappings = models.JSONField(default=dict, blank=True)
    validation_rules = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["scenario_type", "-version"]
        constraints = [models.UniqueConstraint(fields=["scenario_type", "version"], name="unique_scenario_type_version")]

    def __str__(self) -> str:
        return f"{self.name or self.scenario_type} v{self.version}"


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
