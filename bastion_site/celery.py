"""Celery application for Bastion workers and beat."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion_site.settings")

app = Celery("bastion")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
