"""SCIM 2.0 (RFC 7643/7644): people and groups from any identity provider that speaks it."""

from integrations.connectors.scim.client import ENTERPRISE, LIST_SCHEMA, USER_SCHEMA, classify_scim_response, scim_quote
from integrations.connectors.scim.connector import ScimConnector
from integrations.connectors.scim.manifest import MANIFEST

CONNECTOR = ScimConnector

__all__ = ["CONNECTOR", "ENTERPRISE", "LIST_SCHEMA", "MANIFEST", "USER_SCHEMA", "ScimConnector", "classify_scim_response", "scim_quote"]
