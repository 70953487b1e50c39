"""Install the periodic refresh of expiring vendor webhook registrations (Jira dynamic webhooks), editable in the admin."""

from django.db import migrations

NAME = "integrations:webhook-refresh"


def install(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=6 * 3600, period="seconds")
    PeriodicTask.objects.update_or_create(
        name=NAME,
        defaults={
            "task": "integrations.tasks.integration_webhooks_refresh",
            "interval": every,
            "enabled": True,
            "description": "Extend vendor webhook registrations that expire within 7 days (Jira dynamic webhooks live 30 days).",
        },
    )


def uninstall(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("integrations", "0003_periodic_tasks")]

    operations = [migrations.RunPython(install, uninstall)]
