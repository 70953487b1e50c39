"""A separate worker process for the single-refresh test: build the connector, wait for "go", make one API call."""

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion_site.settings")
django.setup()

from integrations.models import Integration  # noqa: E402
from integrations.services import build_connector  # noqa: E402

connector = build_connector(Integration.objects.get(pk=sys.argv[1]))  # holds the expiring token, like a long-lived worker
print("ready", flush=True)
sys.stdin.readline()
result = connector.test_connection()
print(json.dumps({"ok": result.ok, "token": connector.client.auth.access_token[-6:]}), flush=True)
