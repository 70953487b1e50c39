"""Install the reaper: a periodic task resuming sync jobs whose worker died (editable in the admin)."""

from django.db import migrations


def install(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.update_or_create(
        name="sync:reaper",
        defaults={"task": "sync.tasks.sync_jobs_reap", "interval": every, "enabled": True, "description": "Resume sync jobs with a stale heartbeat."},
    )


def uninstall(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name="sync:reaper").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0003_engine_jobs_inbox_people"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
