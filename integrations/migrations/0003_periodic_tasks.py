"""Install the integrations' periodic tasks (editable in the admin): token keep-alive and 24-hour health counters."""

from django.db import migrations

TASKS = [
    ("integrations:oauth-keepalive", "integrations.tasks.oauth_keepalive", 600, "Refresh OAuth tokens that expire before the next run."),
    ("integrations:health-refresh", "integrations.tasks.integration_health_refresh", 900, "Recompute calls_24h / failures_24h and prune the call log."),
]


def install(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds, description in TASKS:
        every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "interval": every, "enabled": True, "description": description})


def uninstall(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[t[0] for t in TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0002_health_calls_auth_alerts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
