"""Integrations (a connected vendor account), their data sources and encrypted credentials."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import Organization
from common.fields import EncryptedJSONField
from common.models import BaseModel


class IntegrationStatus(models.TextChoices):
    CONNECTED = "connected", "Connected"
    DEGRADED = "degraded", "Degraded"
    AUTH_FAILED = "auth_failed", "Authentication failed"
    DISCONNECTED = "disconnected", "Disconnected"


class Integration(BaseModel):
    """The seed's enterpriseIntegrations: one connected account of one vendor for one organization."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="integrations")
    connector_key = models.CharField(max_length=60, db_index=True)
    display_name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=IntegrationStatus.choices, default=IntegrationStatus.DISCONNECTED, db_index=True)
    config = models.JSONField(default=dict, blank=True, help_text="Non-secret settings (workspace, project, base DN…).")
    base_url = models.URLField(max_length=500, blank=True, help_text="Override the vendor's API base URL (self-hosted, regional, sandbox).")
    external_account_id = models.CharField(
        max_length=200,
        blank=True,
        db_index=True,
        help_text="Vendor account id captured at connect time (Slack team_id, Atlassian cloudId) for webhook routing.",
    )
    allowed_roles = models.JSONField(default=list, blank=True, help_text="Roles allowed to use this integration's data and actions; empty means every member.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Health
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    error_count = models.PositiveIntegerField(default=0, help_text="Consecutive failures since the last success.")
    calls_24h = models.PositiveIntegerField(default=0)
    failures_24h = models.PositiveIntegerField(default=0)
    auth_failed_at = models.DateTimeField(null=True, blank=True, help_text="When the authorization last broke (admins were alerted then).")
    webhook_secret_revealed_at = models.DateTimeField(null=True, blank=True, help_text="The webhook secret is shown once; after this it is never shown again.")

    class Meta:
        ordering = ["display_name"]
        indexes = [models.Index(fields=["organization", "connector_key"])]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.connector_key})"


class DataSource(BaseModel):
    """The seed's dataSources: one entity stream of an integration."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="data_sources")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="data_sources")
    entity_type = models.CharField(max_length=80)
    is_enabled = models.BooleanField(default=True)
    cursor = models.JSONField(null=True, blank=True, help_text="Incremental sync position, committed with the data it covers.")
    schedule = models.ForeignKey("django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    field_mapping = models.JSONField(default=dict, blank=True, help_text="Bastion field → source field path.")
    discovered_fields = models.JSONField(default=list, blank=True)
    discovered_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    # When the sync dispatcher next starts this source's scheduled sync (one indexed query finds every due source).
    next_sync_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text="Next scheduled sync; set from the schedule.")
    is_stale = models.BooleanField(default=False)
    stale_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["integration__display_name", "entity_type"]
        constraints = [models.UniqueConstraint(fields=["integration", "entity_type"], name="unique_data_source_entity")]

    def __str__(self) -> str:
        return f"{self.integration.display_name} · {self.entity_type}"


class CredentialType(models.TextChoices):
    OAUTH = "oauth", "OAuth 2.0"
    API_KEY = "api_key", "API key / token"
    SERVICE_ACCOUNT = "service_account", "Service account"
    WEBHOOK_SECRET = "webhook_secret", "Webhook secret"


class IntegrationCredential(BaseModel):
    """The seed's integration_credentials; `data` is AES-256-GCM encrypted, bound to this row."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="credentials")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="credentials")
    credential_type = models.CharField(max_length=20, choices=CredentialType.choices)
    data = EncryptedJSONField(null=True, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["integration", "credential_type"]
        constraints = [models.UniqueConstraint(fields=["integration", "credential_type"], name="unique_credential_type")]

    def __str__(self) -> str:
        return f"{self.get_credential_type_display()} for {self.integration.display_name}"


class IntegrationCall(models.Model):
    """One vendor HTTP call: method, path, status, latency. Never a body, a query string or a secret."""

    id = models.BigAutoField(primary_key=True)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="calls")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(default=0)
    is_ok = models.BooleanField(default=True)
    error = models.CharField(max_length=80, blank=True, help_text="Error class, e.g. ApiRateLimited.")
    vendor_code = models.CharField(max_length=120, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["integration", "created_at"])]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"


# Custom connectors live in their own subpackage; imported here so Django registers them with this app.
from integrations.custom.models import CustomConnector, CustomConnectorStatus, CustomConnectorVersion  # noqa: E402, F401
