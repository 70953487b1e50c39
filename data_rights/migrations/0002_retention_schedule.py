from django.db import migrations


def schedule_retention(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_day, _ = IntervalSchedule.objects.get_or_create(every=1, period="days")
    PeriodicTask.objects.get_or_create(name="Enforce data retention", defaults={"task": "data_rights.tasks.enforce_retention", "interval": every_day})


def unschedule_retention(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name="Enforce data retention").delete()


class Migration(migrations.Migration):
    dependencies = [("data_rights", "0001_initial"), ("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [migrations.RunPython(schedule_retention, unschedule_retention)]
