"""Salesforce: opportunities with their deal team, contacts, users and accounts; records created and updated from playbooks."""

from integrations.connectors.salesforce.client import (
    ApiUsage,
    classify_salesforce_response,
    parse_limit_info,
    soql_datetime,
    soql_string,
)
from integrations.connectors.salesforce.connector import SalesforceConnector
from integrations.connectors.salesforce.manifest import MANIFEST
from integrations.connectors.salesforce.reader import split_emails

CONNECTOR = SalesforceConnector

__all__ = [
    "CONNECTOR",
    "MANIFEST",
    "ApiUsage",
    "SalesforceConnector",
    "classify_salesforce_response",
    "parse_limit_info",
    "soql_datetime",
    "soql_string",
    "split_emails",
]
