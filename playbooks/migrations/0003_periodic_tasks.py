"""Schedule the playbook backstops in django-celery-beat (editable in the admin): status polling and stalled-run resume."""

from django.db import migrations

SCHEDULES = [
    ("playbooks: poll open task status", "playbooks.tasks.playbook_tasks_poll", 120),
    ("playbooks: resume stalled runs", "playbooks.tasks.playbook_runs_resume_stalled", 60),
]


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval, "enabled": True})


def unschedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("playbooks", "0002_shipped_templates"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(schedule, unschedule)]
