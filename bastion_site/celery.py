"""Celery application for Bastion workers and beat."""

import os
import warnings

from celery import Celery, signals
from celery.exceptions import CPendingDeprecationWarning

from bastion_site.broker import transport_register

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion_site.settings")

transport_register()

app = Celery("bastion")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.celeryd_after_setup.connect
def _quiet_cancel_on_connection_loss_warning(**_) -> None:
    """Settings choose worker_cancel_long_running_tasks_on_connection_loss=False on purpose; Celery warns at every reconnect."""
    # Added after the worker's logging setup, which turns Celery's pending-deprecation warnings to "always".
    warnings.filterwarnings("ignore", message=r"(?s).*worker_cancel_long_running_tasks_on_connection_loss", category=CPendingDeprecationWarning)
