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
