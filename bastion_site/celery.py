"""Celery application for Bastion workers and beat."""

import os
import warnings

from celery import Celery, signals
from celery.exceptions import CPendingDeprecationWarning
from celery.fixups.django import DjangoFixup

from bastion_site.broker import transport_register

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion_site.settings")


class DjangoSetupOnceFixup(DjangoFixup):
    """Celery's Django fixup, minus a second `django.setup()` in a process where Django is already set up."""

    def on_import_modules(self, **kwargs) -> None:
        from django.apps import apps

        # The django-celery-beat admin lists tasks through `import_default_modules()` in the web process; setting Django
        # up again there re-runs its logging config, whose new handlers write to whatever stderr is current (in tests, a
        # capture pytest closes later) and re-runs every system check on each page view.
        if apps.ready:
            return
        super().on_import_modules(**kwargs)


def django_fixup(app: Celery) -> DjangoFixup:
    return DjangoSetupOnceFixup(app).install()


transport_register()

app = Celery("bastion", fixups=[f"{__name__}:django_fixup"])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.celeryd_after_setup.connect
def _quiet_cancel_on_connection_loss_warning(**_) -> None:
    """Settings choose worker_cancel_long_running_tasks_on_connection_loss=False on purpose; Celery warns at every reconnect."""
    # Added after the worker's logging setup, which turns Celery's pending-deprecation warnings to "always".
    warnings.filterwarnings("ignore", message=r"(?s).*worker_cancel_long_running_tasks_on_connection_loss", category=CPendingDeprecationWarning)


@signals.worker_process_init.connect(weak=False)
def _tracing_in_pool_process(**_) -> None:
    """Each prefork pool process starts its own span exporter (its thread would not survive the fork)."""
    from common.telemetry import tracing_configure

    tracing_configure(service_name="bastion-worker")


@signals.worker_init.connect(weak=False)
def _tracing_in_worker(sender=None, **_) -> None:
    """Thread and solo pools run tasks in the worker's own process: configure it there."""
    pool = str(getattr(sender, "pool_cls", "") or "")
    if "prefork" in pool.lower() or pool.endswith("processes"):
        return
    from common.telemetry import tracing_configure

    tracing_configure(service_name="bastion-worker")


@signals.beat_init.connect(weak=False)
def _tracing_in_beat(**_) -> None:
    from common.telemetry import tracing_configure

    tracing_configure(service_name="bastion-beat")


@signals.worker_process_shutdown.connect(weak=False)
def _flush_telemetry(pid=None, **_) -> None:
    """Export buffered spans, and let Prometheus drop this process's live gauges, before a pool process exits."""
    from common.metrics import multiprocess_dir
    from common.telemetry import tracing_flush

    tracing_flush()
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
