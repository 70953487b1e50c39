"""Scheduled syncs go through one dispatcher entry instead of one beat entry per data source.

Beat's DatabaseScheduler walks every enabled entry each tick and sends about 3 tasks a second; at tens of thousands of
data sources it falls behind. The per-source PeriodicTask rows stay (ops edit schedules in the admin) but beat skips them
(sync.scheduler.SyncDispatchingScheduler); the dispatcher starts the due ones from an indexed next_sync_at.
"""

from django.db import migrations, models

DISPATCHER = "sync:dispatch-due-schedules"


def install(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    PeriodicTask.objects.update_or_create(
        name=DISPATCHER,
        defaults={
            "task": "sync.tasks.sync_schedules_dispatch",
            "interval": every,
            "enabled": True,
            "description": "Start the scheduled syncs that are due (every data source's own schedule is edited on its sync:<id> row).",
        },
    )


def uninstall(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=DISPATCHER).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0004_webhook_refresh_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="datasource",
            name="next_sync_at",
            field=models.DateTimeField(blank=True, db_index=True, help_text="Next scheduled sync; set from the schedule.", null=True),
        ),
        migrations.RunPython(install, uninstall),
    ]
