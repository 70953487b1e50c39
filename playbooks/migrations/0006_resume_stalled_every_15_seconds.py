"""A step whose worker died is resumed within a minute: the stalled-run check runs every 15 seconds (was 60)."""

from django.db import migrations

NAME = "playbooks: resume stalled runs"


def every_15_seconds(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=15, period="seconds")
    # Only the shipped schedule: an interval ops changed in the admin stays theirs.
    PeriodicTask.objects.filter(name=NAME, interval__every=60, interval__period="seconds").update(interval=interval)


def every_60_seconds(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.filter(name=NAME, interval__every=15, interval__period="seconds").update(interval=interval)


class Migration(migrations.Migration):
    dependencies = [("playbooks", "0005_undo_and_status_source")]

    operations = [migrations.RunPython(every_15_seconds, every_60_seconds)]
