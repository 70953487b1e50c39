"""The people directory: one merged person per human, their identities in each source, merge settings, erased subjects.

The tables keep the names they had under the sync app (sync_person…): raw SQL, COPY and the trigram index name them.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTransform

from accounts.models import Organization
from common.models import BaseModel
from integrations.models import Integration
from people.provenance import provenance_packed, provenance_unpacked


class ProvenanceField(models.JSONField):
    """Provenance stored packed (people.provenance) and read unpacked: code and API only ever see field → {value, source, …}.

    Key lookups in SQL (provenance__title__source) would see the packed form: filter in Python, or unpack in the query."""

    def from_db_value(self, value, expression, connection):  # noqa: ANN001, ANN201 - Django's signature
        loaded = super().from_db_value(value, expression, connection)
        return loaded if isinstance(expression, KeyTransform) else provenance_unpacked(loaded)

    def get_prep_value(self, value):  # noqa: ANN001, ANN201 - Django's signature
        return super().get_prep_value(provenance_packed(value))


class Person(BaseModel):
    """One human per organization, merged across sources (matched by email, then by external ids)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="people", db_index=False)  # led by the composite indexes
    created_at = models.DateTimeField(auto_now_add=True)  # not indexed: nothing lists people by creation, and a large import paid for it
    email = models.CharField(max_length=254, blank=True, help_text="Lower-cased; empty when no source knows it (indexed with the organization).")
    display_name = models.CharField(max_length=300, blank=True)
    given_name = models.CharField(max_length=150, blank=True)
    family_name = models.CharField(max_length=150, blank=True)
    title = models.CharField(max_length=300, blank=True)
    department = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=64, blank=True)
    manager = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    groups = models.JSONField(default=list, blank=True)
    provenance = ProvenanceField(
        default=dict, blank=True, help_text="Field → {value, source (connector key / csv / manual), integration id, at}; stored packed."
    )
    is_active = models.BooleanField(default=True)
    search_text = models.TextField(blank=True, help_text="Lower-cased name, email, title, department for typeahead.")

    class Meta:
        db_table = "sync_person"
        verbose_name_plural = "people"
        ordering = ["display_name"]
        # Lookups by email use the unique partial index below (queries add `email <> ''` so the planner can use it).
        indexes = [models.Index(fields=["organization", "display_name"])]
        constraints = [
            models.UniqueConstraint(fields=["organization", "email"], condition=~Q(email=""), name="unique_person_email"),
            # What an identity's foreign key points at: (organization, person), so no identity can hang off another tenant's person.
            models.UniqueConstraint(fields=["organization", "id"], name="person_organization_key"),
        ]

    def __str__(self) -> str:
        return self.display_name or self.email


class PersonIdentity(BaseModel):
    """A person's id in one source system (AD, Okta, Slack, Jira, CRM, CSV)."""

    # Both references are checked by one composite foreign key, (organization, person) → the person's (organization, id)
    # (migration people 0004): it keeps an identity in its person's organization, and the organization exists because the
    # person's own key says so. Two checks per identity were a fifth of a large import's foreign-key work.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    created_at = models.DateTimeField(auto_now_add=True)  # not indexed, as for Person
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="identities", db_constraint=False)
    # Indexed only where set (below): most identities of a large directory come from files (csv) and have none.
    integration = models.ForeignKey(Integration, null=True, blank=True, on_delete=models.CASCADE, related_name="person_identities", db_index=False)
    source = models.CharField(max_length=60, help_text="Connector key, or 'csv' / 'manual'.")
    entity_type = models.CharField(max_length=80, blank=True)
    external_id = models.CharField(max_length=255)
    attributes = models.JSONField(default=dict, blank=True, help_text="What this source says about the person.")

    class Meta:
        db_table = "sync_personidentity"
        indexes = [models.Index(fields=["integration"], condition=Q(integration__isnull=False), name="person_identity_integration")]
        constraints = [
            # Partial: identities without an integration have their own key below, and a NULL never conflicted here anyway.
            models.UniqueConstraint(
                fields=["organization", "source", "integration", "external_id"], condition=Q(integration__isnull=False), name="unique_person_identity"
            ),
            # NULLs are distinct in unique constraints: sources without an integration (csv, manual) need their own.
            models.UniqueConstraint(
                fields=["organization", "source", "external_id"], condition=Q(integration__isnull=True), name="unique_person_identity_without_integration"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


NON_CONNECTOR_SOURCES = ["csv", "manual"]  # people imported from a file or typed in rank after every connector


def default_source_priority() -> list[str]:
    """Connectors by their declared person_rank (directories first), then files and manual entries."""
    from integrations.registry import manifests

    ranked = sorted((m for m in manifests() if m.person_rank is not None), key=lambda m: m.person_rank or 0)
    return [m.key for m in ranked] + NON_CONNECTOR_SOURCES


class PeopleSettings(BaseModel):
    """Per-organization merge settings: which source wins when two disagree about a person."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="people_settings")
    source_priority = models.JSONField(default=list, blank=True, help_text="Source keys, most trusted first; unknown sources rank after these.")

    class Meta:
        db_table = "sync_peoplesettings"
        verbose_name_plural = "people settings"

    def __str__(self) -> str:
        return f"People settings for {self.organization}"

    def priority(self) -> list[str]:
        return list(self.source_priority or default_source_priority())


class SuppressionKind(models.TextChoices):
    EMAIL = "email", "Email"
    SOURCE_ID = "source_id", "Source id"


class SuppressedIdentity(BaseModel):
    """An erased data subject that syncs and imports must not bring back: a keyed hash only, never the value itself.

    digest = HMAC-SHA256 under a key derived from BASTION_ENCRYPTION_KEYS[key_id] (people/services/suppression.py).
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="suppressed_identities")
    kind = models.CharField(max_length=10, choices=SuppressionKind.choices)
    key_id = models.CharField(max_length=64, help_text="The keyring key the digest was made with; keep it in BASTION_ENCRYPTION_KEYS while rows use it.")
    digest = models.CharField(max_length=64)
    erasure_reference = models.CharField(max_length=64, blank=True, help_text="The data-rights request (erasure) that created it.")

    class Meta:
        db_table = "sync_suppressedidentity"
        ordering = ["-created_at"]
        verbose_name_plural = "suppressed identities"
        constraints = [models.UniqueConstraint(fields=["organization", "digest"], name="unique_suppressed_identity")]
        indexes = [models.Index(fields=["organization", "erasure_reference"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.digest[:12]}…"
