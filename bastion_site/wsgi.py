"""WSGI entry point."""

import os

from django.core.wsgi import get_wsgi_application

from common.telemetry import tracing_configure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion_site.settings")
# Before the handler loads its middleware: the Django instrumentation adds its own (a no-op unless an endpoint is set).
tracing_configure(service_name="bastion-web")
application = get_wsgi_application()
