"""Versions of a playbook template as code: every change that reaches the template through import or restore is one version."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from common.models import BaseModel


class PlaybookTemplateVersion(BaseModel):
    """One saved state of a template (the exported document and its YAML), numbered per template."""

    template = models.ForeignKey("playbooks.PlaybookTemplate", on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    document = models.JSONField(help_text="The template as exported (validated against the published JSON Schema).")
    yaml = models.TextField()
    digest = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON document: an unchanged import makes no version.")
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["template", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="unique_template_version_number")]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"
