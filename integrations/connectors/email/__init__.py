"""E-mail over SMTP: one package for everything Bastion knows about it (the registry reads CONNECTOR)."""

from integrations.connectors.email.connector import CONNECTOR, EmailConnector, message_id_for
from integrations.connectors.email.smtp import VettedEmailBackend, smtp_error, smtp_port

__all__ = ["CONNECTOR", "EmailConnector", "VettedEmailBackend", "message_id_for", "smtp_error", "smtp_port"]
