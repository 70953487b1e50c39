"""A partner's connector living outside Bastion's tree; it only imports the public SDK."""

from __future__ import annotations

from typing import Any

from integrations.connectors.base import BaseConnector, ConnectionTest, ConnectorManifest, CredentialField, EntitySpec, FieldInfo, Page


class WidgetsConnector(BaseConnector):
    manifest = ConnectorManifest(
        key="partner_widgets",
        name="Widgets Inc.",
        category="crm",
        description="Widget orders from Widgets Inc. (installed as a pip package).",
        auth_methods=("api_key",),
        credential_fields=(CredentialField("api_key", "API key"),),
        entities=(EntitySpec("widgets", "Widgets", bastion_type="other"),),
    )

    def test_connection(self) -> ConnectionTest:
        return ConnectionTest(ok=bool(self.credentials.get("api_key")), identity="widgets-partner")

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        return [FieldInfo("id", "Id"), FieldInfo("name", "Name")]

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        return Page(records=[{"id": "w1", "name": "Sprocket"}])
