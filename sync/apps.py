from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Sync engine"

    def ready(self) -> None:
        from sync import checks, signals  # noqa: F401 - registers the database checks and the schedule-row receiver
