"""The webhook inbox keeps only what each delivery's INSERT must pay for: no check of the organization (the integration's
foreign key covers it), no single-column indexes that a composite index already begins with, no LIKE index on status."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_invitations"),
        ("integrations", "0006_custom_connectors"),
        ("sync", "0012_people_move_to_their_app"),
    ]

    operations = [
        # Only the index goes: AlterField would drop and re-add the foreign key, validating every stored delivery again.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="webhookdelivery",
                    name="integration",
                    field=models.ForeignKey(
                        db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="webhook_deliveries", to="integrations.integration"
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "sync_webhookdelivery_integration_id_908924dd"',
                    reverse_sql='CREATE INDEX IF NOT EXISTS "sync_webhookdelivery_integration_id_908924dd" ON "sync_webhookdelivery" ("integration_id")',
                ),
            ],
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="organization",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="webhook_deliveries",
                to="accounts.organization",
            ),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="status",
            field=models.CharField(choices=[("received", "Received"), ("processed", "Processed"), ("failed", "Failed")], default="received", max_length=10),
        ),
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(fields=["status"], name="sync_webhook_status_idx"),
        ),
    ]
