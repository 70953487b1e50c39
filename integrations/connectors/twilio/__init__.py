"""Twilio SMS, declared in spec.yaml: send through the Messages API and verify signed delivery-status callbacks."""

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from integrations.connectors.base import WebhookRequest
from integrations.connectors.declarative import load_spec_file
from integrations.connectors.declarative.webhooks import webhook_signature

CONNECTOR = TwilioConnector = load_spec_file(Path(__file__).with_name("spec.yaml"))
MANIFEST = CONNECTOR.manifest
FINAL_STATUSES = tuple(CONNECTOR.spec["constants"]["final_statuses"])


def twilio_signature(auth_token: str, url: str, params: Mapping[str, Any]) -> str:
    """base64(HMAC-SHA1(auth token, full URL + every POST parameter as name+value, sorted by name)), as the spec declares it."""
    request = WebhookRequest("POST", url, {}, urlencode(params, doseq=True).encode(), datetime.now(UTC))
    return webhook_signature(CONNECTOR, auth_token, request)


__all__ = ["CONNECTOR", "FINAL_STATUSES", "MANIFEST", "TwilioConnector", "twilio_signature"]
