"""The Microsoft 365 connector: Teams, Outlook calendar, SharePoint/OneDrive files and Excel behind one Graph connection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.connectors.base import ActionResult, ConnectionTest, Page, TrackedObject
from integrations.connectors.kit.concurrent import invitations_merged
from integrations.connectors.microsoft365.auth import GraphAuth, missing_by_feature, token_claims
from integrations.connectors.microsoft365.calendar import MEETING_KINDS, CalendarMixin
from integrations.connectors.microsoft365.delta import DELTA_ENTITY_KEYS
from integrations.connectors.microsoft365.excel import ExcelMixin
from integrations.connectors.microsoft365.files import FilesMixin
from integrations.connectors.microsoft365.manifest import FEATURE_PERMISSIONS, MANIFEST
from integrations.connectors.microsoft365.notifications import NotificationsMixin
from integrations.connectors.microsoft365.teams import CHANNEL_KINDS, TeamsMixin
from integrations.errors import ApiBadRequest, ApiNotFound

DOCUMENT_KINDS = ("record", "document", "documents")
TEAMS_ENTITIES = ("teams", "channels", "members")


class Microsoft365Connector(NotificationsMixin, FilesMixin, ExcelMixin, TeamsMixin, CalendarMixin, GraphAuth):
    """Microsoft Graph v1.0 as a signed-in delegate (OAuth code + PKCE) or as the application (client credentials)."""

    manifest = MANIFEST

    # Connection --------------------------------------------------------------------------------------------------
    def test_connection(self) -> ConnectionTest:
        """Who Bastion is at Microsoft 365, the permissions granted, and each feature that lacks one (named)."""
        if self.is_application:
            # Not /organization: that would need Organization.Read.All just to show a name. The organizer check needs nothing more.
            organizer = str(self.config.get("organizer") or "").strip()
            if not organizer:  # a connection test reaches Graph with the token, whatever is configured
                self.graph("GET", "users", params={"$top": 1, "$select": "id"})
            user = self.find_user(organizer) if organizer else None
            if organizer and user is None:
                raise ApiNotFound(f"The organizer {organizer} is not in the directory of tenant {self.tenant}.", vendor_code="organizer_not_found")
            who = str((user or {}).get("mail") or (user or {}).get("userPrincipalName") or "")
            identity = f"Application access to {self.tenant}" + (f", acting for {who}" if who else "")
            account = str(token_claims(self.access_token()).get("tid") or self.tenant)
        else:
            me = self.graph("GET", "me", params={"$select": "id,displayName,mail,userPrincipalName"})
            self._me_id = str(me.get("id") or "")
            identity = str(me.get("mail") or me.get("userPrincipalName") or me.get("displayName") or "")
            account = str(token_claims(self.access_token()).get("tid") or self.tenant)
        scopes, source = self.granted_permissions()
        missing = missing_by_feature(FEATURE_PERMISSIONS, set(scopes), application=self.is_application) if source != "unknown" else {}
        detail: dict[str, Any] = {
            "model": "application" if self.is_application else "delegated",
            "permissions_from": source,
            "missing_permissions": missing,
            "team_id": str(self.config.get("team_id") or ""),
        }
        if source == "unknown":
            detail["note"] = "The token does not say which permissions were granted; a refused call will name the one it needs."
        return ConnectionTest(ok=True, identity=identity, scopes=scopes, detail=detail, account_id=account)

    def config_choices(self, name: str) -> list[tuple[str, str]]:
        if name == "team_id":
            return self.teams_choices()
        if name == "organizer":
            return [
                (str(u.get("userPrincipalName") or u["id"]), str(u.get("displayName") or u.get("mail") or u["id"]))
                for u in self.iter_items("users", {"$select": "id,displayName,mail,userPrincipalName", "$top": 100}, max_pages=5)
            ]
        return []

    # Reading -----------------------------------------------------------------------------------------------------
    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        if entity in DELTA_ENTITY_KEYS:
            return self.read_delta(entity, cursor=cursor, page=page)
        if entity not in TEAMS_ENTITIES:
            raise ApiNotFound(f"Microsoft 365 has no entity '{entity}'.")
        records, next_link = self.read_teams_entity(entity, page)
        return Page(records, next_page={"next": next_link} if next_link else None, is_full_scan=True)

    def external_id(self, entity: str, record: Mapping[str, Any]) -> str:
        if entity == "members":
            return str(record.get("userId") or record["id"])
        return str(record["id"])

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "channels":
            return self.channel_record(record)
        if entity == "members":
            return self.member_record(record)
        return dict(record)

    # Acting ------------------------------------------------------------------------------------------------------
    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        """Each action is the method `_act_<action>` of the part of the connector that owns it."""
        try:
            self.manifest.action(action)
        except KeyError:
            raise ApiBadRequest(f"Microsoft 365 has no action '{action}'.", vendor_code="unknown_action") from None
        handler = getattr(self, f"_act_{action}")
        return handler(payload, idempotency_key=idempotency_key, known_new=known_new)

    def perform_bulk(
        self, action: str, payloads: list[Mapping[str, Any]], *, idempotency_keys: list[str], known_new: bool = False
    ) -> list[ActionResult | Exception]:
        """invite_users: every payload's people in one call per channel ($batch inside); other actions one by one."""
        if action == "invite_users":
            return invitations_merged(lambda merged: self._act_invite_users(merged, idempotency_key=idempotency_keys[0]), payloads)
        return super().perform_bulk(action, payloads, idempotency_keys=idempotency_keys, known_new=known_new)

    def undo(
        self, action: str, *, external_id: str, key: str = "", payload: Mapping[str, Any] | None = None, reason: str = "", idempotency_key: str
    ) -> ActionResult:
        """create_channel: archive; create_event: cancel (attendees notified); copy_document: delete the copy."""
        if action == "create_channel":
            return self.undo_channel(external_id, reason)
        if action == "create_event":
            return self.cancel_event(external_id, reason)
        if action == "copy_document":
            return self._undo_copy_document(external_id)
        raise KeyError(f"Microsoft 365 cannot undo '{action}'")

    def fetch_objects(self, kind: str, external_ids: list[str]) -> dict[str, TrackedObject]:
        if kind in CHANNEL_KINDS:
            return self.fetch_channels(external_ids)
        if kind in MEETING_KINDS:
            return self.fetch_meetings(external_ids)
        if kind in DOCUMENT_KINDS:
            return self._fetch_documents(external_ids)
        raise KeyError(f"Microsoft 365 cannot read '{kind}' objects")


CONNECTOR = Microsoft365Connector
