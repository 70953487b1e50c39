"""Twilio SMS: send through the Messages API and verify signed delivery-status callbacks."""

from integrations.connectors.twilio.client import classify_twilio_response
from integrations.connectors.twilio.connector import TwilioConnector
from integrations.connectors.twilio.manifest import MANIFEST
from integrations.connectors.twilio.webhooks import FINAL_STATUSES, twilio_signature

CONNECTOR = TwilioConnector

__all__ = ["CONNECTOR", "FINAL_STATUSES", "MANIFEST", "TwilioConnector", "classify_twilio_response", "twilio_signature"]
