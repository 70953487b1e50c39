"""Re-enable schedules the old auth-failure path disabled: a pause for reconnecting is now the integration's status, not the row."""

from django.db import migrations


def enable(apps, schema_editor):
    DataSource = apps.get_model("integrations", "DataSource")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    paused = DataSource.objects.filter(is_enabled=True, stale_reason__startswith="Authorization failed").values_list("pk", flat=True)
    PeriodicTask.objects.filter(name__in=[f"sync:{pk}" for pk in paused], enabled=False).update(enabled=True)


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0009_scan_seen"),
        ("integrations", "0003_periodic_tasks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(enable, migrations.RunPython.noop)]
