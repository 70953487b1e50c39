"""A custom connector (per organization) and its saved spec versions; the published version is what integrations run."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import Organization
from common.models import BaseModel

# An integration names a custom connector as "custom.<connector id>": the id is the organization's own row.
CUSTOM_KEY_PREFIX = "custom."


class CustomConnectorStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class CustomConnector(BaseModel):
    """One vendor an organization connects to through a spec it wrote; never visible to other organizations."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="custom_connectors")
    key = models.SlugField(max_length=60, help_text="Short name, unique in the organization (used in the exported file name).")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=CustomConnectorStatus.choices, default=CustomConnectorStatus.DRAFT)
    current_version = models.ForeignKey(
        "integrations.CustomConnectorVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="The published version."
    )
    # The vendor's OpenAPI document the builder started from (parsed, size-capped); empty for a blank spec.
    openapi = models.JSONField(null=True, blank=True)
    draft = models.TextField(blank=True, help_text="The spec being edited (YAML), not yet saved as a version.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="unique_custom_connector_key")]

    def __str__(self) -> str:
        return f"{self.name} (custom)"

    @property
    def connector_key(self) -> str:
        """What an integration's connector_key says to run this connector."""
        return f"{CUSTOM_KEY_PREFIX}{self.pk}"


class CustomConnectorVersion(BaseModel):
    """One saved, valid spec of a custom connector; versions are never edited, only added."""

    connector = models.ForeignKey(CustomConnector, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    spec = models.JSONField(help_text="The spec document (validated when saved).")
    notes = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["connector", "-number"]
        constraints = [models.UniqueConstraint(fields=["connector", "number"], name="unique_custom_connector_version")]

    def __str__(self) -> str:
        return f"{self.connector.name} v{self.number}"


from integrations.custom import receivers  # noqa: E402, F401 - connects the organization guard on integrations
