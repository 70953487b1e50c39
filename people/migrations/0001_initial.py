"""The people directory moves out of the sync app: state only, the tables (sync_person…) and their rows stay as they are.

Runs after sync 0011 (the tables exist) and before sync 0012 (which forgets the models there). The content types of the
moved models are relabelled so permissions and admin history keep pointing at them.
"""

import uuid

import django.db.models.deletion
from django.db import migrations, models

MOVED = ("person", "personidentity", "peoplesettings", "suppressedidentity")


def relabel_content_types(apps, schema_editor, source="sync", target="people"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    taken = set(ContentType.objects.using(db).filter(app_label=target, model__in=MOVED).values_list("model", flat=True))
    ContentType.objects.using(db).filter(app_label=source, model__in=[m for m in MOVED if m not in taken]).update(app_label=target)


def relabel_content_types_back(apps, schema_editor):
    relabel_content_types(apps, schema_editor, source="people", target="sync")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0001_initial"),
        ("integrations", "0001_initial"),
        ("sync", "0011_plural_names"),
    ]

    state_operations = [
        migrations.CreateModel(
            name="PeopleSettings",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("source_priority", models.JSONField(blank=True, default=list, help_text="Source keys, most trusted first; unknown sources rank after these.")),
                ("organization", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="people_settings", to="accounts.organization")),
            ],
            options={
                "verbose_name_plural": "people settings",
                "db_table": "sync_peoplesettings",
            },
        ),
        migrations.CreateModel(
            name="Person",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("email", models.CharField(blank=True, help_text="Lower-cased; empty when no source knows it (indexed with the organization).", max_length=254)),
                ("display_name", models.CharField(blank=True, max_length=300)),
                ("given_name", models.CharField(blank=True, max_length=150)),
                ("family_name", models.CharField(blank=True, max_length=150)),
                ("title", models.CharField(blank=True, max_length=300)),
                ("department", models.CharField(blank=True, max_length=300)),
                ("phone", models.CharField(blank=True, max_length=64)),
                ("groups", models.JSONField(blank=True, default=list)),
                ("provenance", models.JSONField(blank=True, default=dict, help_text="Field → {value, source (connector key / csv / manual), integration id, at}.")),
                ("is_active", models.BooleanField(default=True)),
                ("search_text", models.TextField(blank=True, help_text="Lower-cased name, email, title, department for typeahead.")),
                ("manager", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="reports", to="people.person")),
                ("organization", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="people", to="accounts.organization")),
            ],
            options={
                "verbose_name_plural": "people",
                "db_table": "sync_person",
                "ordering": ["display_name"],
                "indexes": [models.Index(fields=["organization", "display_name"], name="sync_person_organiz_bf7439_idx")],
                "constraints": [models.UniqueConstraint(condition=models.Q(("email", ""), _negated=True), fields=("organization", "email"), name="unique_person_email")],
            },
        ),
        migrations.CreateModel(
            name="PersonIdentity",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("source", models.CharField(help_text="Connector key, or 'csv' / 'manual'.", max_length=60)),
                ("entity_type", models.CharField(blank=True, max_length=80)),
                ("external_id", models.CharField(max_length=255)),
                ("attributes", models.JSONField(blank=True, default=dict, help_text="What this source says about the person.")),
                (
                    "integration",
                    models.ForeignKey(
                        blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="person_identities", to="integrations.integration"
                    ),
                ),
                ("organization", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.organization")),
                ("person", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="identities", to="people.person")),
            ],
            options={
                "db_table": "sync_personidentity",
                "constraints": [
                    models.UniqueConstraint(fields=("organization", "source", "integration", "external_id"), name="unique_person_identity"),
                    models.UniqueConstraint(
                        condition=models.Q(("integration__isnull", True)),
                        fields=("organization", "source", "external_id"),
                        name="unique_person_identity_without_integration",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="SuppressedIdentity",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("kind", models.CharField(choices=[("email", "Email"), ("source_id", "Source id")], max_length=10)),
                (
                    "key_id",
                    models.CharField(help_text="The keyring key the digest was made with; keep it in BASTION_ENCRYPTION_KEYS while rows use it.", max_length=64),
                ),
                ("digest", models.CharField(max_length=64)),
                ("erasure_reference", models.CharField(blank=True, help_text="The data-rights request (erasure) that created it.", max_length=64)),
                ("organization", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="suppressed_identities", to="accounts.organization")),
            ],
            options={
                "verbose_name_plural": "suppressed identities",
                "db_table": "sync_suppressedidentity",
                "ordering": ["-created_at"],
                "indexes": [models.Index(fields=["organization", "erasure_reference"], name="sync_suppre_organiz_dd2bd0_idx")],
                "constraints": [models.UniqueConstraint(fields=("organization", "digest"), name="unique_suppressed_identity")],
            },
        ),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=state_operations, database_operations=[]),
        migrations.RunPython(relabel_content_types, relabel_content_types_back),
    ]
