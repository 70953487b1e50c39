"""Active Directory / LDAP: people, groups and reporting lines over a service-account bind (its own socket, not HttpClient)."""

from integrations.connectors.ldap.connector import LdapConnector
from integrations.connectors.ldap.errors import _ldap_errors
from integrations.connectors.ldap.manifest import MANIFEST
from integrations.connectors.ldap.schema import FLAVORS, Flavor, guid_to_str, normalize_dn

CONNECTOR = LdapConnector

__all__ = ["CONNECTOR", "FLAVORS", "MANIFEST", "Flavor", "LdapConnector", "_ldap_errors", "guid_to_str", "normalize_dn"]
