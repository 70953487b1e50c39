"""Delta queries, the polling backstop of change notifications: events, channel messages, drive items; deltaLink as the cursor."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.connectors.base import BastionType, EntitySpec, Page
from integrations.connectors.microsoft365.client import ID, USER, GraphBase, _route, register_permission_routes
from integrations.connectors.microsoft365.subscriptions import config_value, documents_drive, same_host_link
from integrations.errors import ApiBadRequest, ApiError, ApiNotFound

DELTA_ENTITIES = (
    EntitySpec("events", "Calendar events", "The calendar's events with attendee responses (calendarView delta).", True, BastionType.EVENT),
    EntitySpec("channel_messages", "Channel messages", "Messages of the team's channels (per-channel delta).", True, BastionType.OTHER),
    EntitySpec("drive_items", "Documents", "Files and folders of the incident documents' drive (drive delta).", True, BastionType.DOCUMENT),
)
DELTA_ENTITY_KEYS = tuple(spec.key for spec in DELTA_ENTITIES)
# calendarView delta needs a window: the recent past (meetings still being answered) and the year ahead.
EVENTS_WINDOW_PAST = timedelta(days=30)
EVENTS_WINDOW_AHEAD = timedelta(days=365)
PAGE_SIZE = 100
# Graph answers 410 Gone when a deltaLink's state expired (resyncRequired, syncStateNotFound): read everything again.
DELTA_EXPIRED = 410


def _removed(record: Mapping[str, Any]) -> bool:
    """Graph marks deletions with @removed; drive items also with a deleted facet, messages with deletedDateTime."""
    return "@removed" in record or bool(record.get("deleted")) or bool(record.get("deletedDateTime"))


register_permission_routes(
    [
        _route("GET", rf"{USER}/(?:calendar/)?calendarView/delta", ("Calendars.Read",), ("Calendars.Read",)),
        _route("GET", rf"teams/{ID}/channels/{ID}/messages/delta", ("ChannelMessage.Read.All",), ("ChannelMessage.Read.All",)),
        _route("GET", rf"drives/{ID}/root/delta", ("Files.Read.All",), ("Files.Read.All",)),
    ]
)


class DeltaMixin(GraphBase):
    """read_delta(entity, cursor=, page=) for Microsoft365Connector.read(): one Graph delta page per call."""

    def read_delta(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        """One page of a delta round; the last page's cursor is the deltaLink to start from next time."""
        if self.client is None:
            raise ApiBadRequest("Microsoft 365 reads need a connected client.")
        if entity == "channel_messages":
            return self._channel_messages_delta(cursor if isinstance(cursor, Mapping) else {}, dict(page or {}))
        if entity == "events":
            start = f"{self.user_path()}/calendarView/delta"
            now = datetime.now(UTC).replace(microsecond=0)
            params = {"startDateTime": (now - EVENTS_WINDOW_PAST).isoformat().replace("+00:00", "Z")}
            params["endDateTime"] = (now + EVENTS_WINDOW_AHEAD).isoformat().replace("+00:00", "Z")
        elif entity == "drive_items":
            drive = documents_drive(self.config)
            if not drive:
                raise ApiBadRequest("Choose the documents drive in the Microsoft 365 settings before reading its files.")
            start, params = f"drives/{drive}/root/delta", {"$top": PAGE_SIZE}
        else:
            raise ApiNotFound(f"Microsoft 365 has no delta read for '{entity}'.")
        # A calendarView round covers a window, not every event: never a full scan (deletions come as @removed).
        return self._delta_page(start, params, cursor=str(cursor or ""), state=dict(page or {}), complete=entity != "events")

    def _delta_page(self, start: str, params: dict[str, Any], *, cursor: str, state: dict[str, Any], complete: bool) -> Page:
        incremental = bool(cursor) and not state.get("restarted")
        if state.get("next"):
            url, query = str(same_host_link(self.client, state["next"])), None
        elif incremental:
            url, query = str(same_host_link(self.client, cursor)), None
        else:
            url, query = self._path(start), params
        try:
            body = self.client.get(url, params=query, headers={"Prefer": f"odata.maxpagesize={PAGE_SIZE}"}).json()
        except ApiError as error:
            if error.status != DELTA_EXPIRED or not incremental:
                raise
            # The stored deltaLink expired: a full round again (a full scan, so deletions are detected at its end).
            return self._delta_page(start, params, cursor="", state={"restarted": True}, complete=complete)
        records, deleted = _split(body)
        scan = complete and not incremental
        next_link = same_host_link(self.client, body.get("@odata.nextLink"))
        if next_link:
            return Page(
                records, next_page={"next": next_link, **({"restarted": True} if state.get("restarted") else {})}, is_full_scan=scan, deleted_ids=deleted
            )
        delta_link = same_host_link(self.client, body.get("@odata.deltaLink"))
        if not delta_link:
            raise ApiBadRequest("Graph ended a delta round without @odata.deltaLink.")
        return Page(records, next_page=None, cursor=delta_link, is_full_scan=scan, deleted_ids=deleted)

    def _channel_messages_delta(self, cursor: Mapping[str, Any], state: dict[str, Any]) -> Page:
        """Each channel of the team in turn (Graph has a delta per channel); the cursor maps channel id → its deltaLink."""
        team = config_value(self.config, "team_id")
        if not team:
            raise ApiBadRequest("Choose the team in the Microsoft 365 settings before reading its channel messages.")
        links: dict[str, str] = dict(state.get("links") or cursor.get("links") or {})
        if "channels" not in state:
            state = {"channels": self._channel_ids(team), "links": links, "full": not cursor}
        channels: list[str] = list(state["channels"])
        if not channels:
            return Page([], next_page=None, cursor={"links": links}, is_full_scan=bool(state["full"]))
        channel = channels[0]
        if state.get("next"):
            url, query = str(same_host_link(self.client, state["next"])), None
        elif links.get(channel):
            url, query = str(same_host_link(self.client, links[channel])), None
        else:
            url, query = self._path(f"teams/{team}/channels/{channel}/messages/delta"), {"$top": PAGE_SIZE}
        try:
            body = self.client.get(url, params=query).json()
        except ApiError as error:
            if error.status not in (DELTA_EXPIRED, 404):
                raise
            body = {"value": [], "@odata.deltaLink": ""}  # the channel is gone (404) or its state expired (410): start it again later
        records, deleted = _split(body)
        for record in records:
            record.setdefault("channelIdentity", {"teamId": team, "channelId": channel})
        next_link = same_host_link(self.client, body.get("@odata.nextLink"))
        if next_link:
            return Page(records, next_page={**state, "next": next_link}, is_full_scan=bool(state["full"]), deleted_ids=deleted)
        delta_link = same_host_link(self.client, body.get("@odata.deltaLink"))
        if delta_link:
            links[channel] = delta_link
        else:
            links.pop(channel, None)
        rest = channels[1:]
        if not rest:
            return Page(records, next_page=None, cursor={"links": links}, is_full_scan=bool(state["full"]), deleted_ids=deleted)
        return Page(records, next_page={"channels": rest, "links": links, "full": state["full"]}, is_full_scan=bool(state["full"]), deleted_ids=deleted)

    def _channel_ids(self, team: str) -> list[str]:
        ids: list[str] = []
        url: str | None = self._path(f"teams/{team}/channels")
        query: dict[str, Any] | None = {"$select": "id,displayName,membershipType"}
        while url:
            body = self.client.get(url, params=query).json()
            ids.extend(str(c["id"]) for c in body.get("value") or [] if isinstance(c, dict) and c.get("id"))
            url, query = same_host_link(self.client, body.get("@odata.nextLink")), None
        return ids


def _split(body: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """A delta page's records and the ids Graph reports removed."""
    values = body.get("value") if isinstance(body, dict) else None
    if not isinstance(values, list):
        raise ApiBadRequest("Graph answered a delta query without a value array.")
    records: list[dict[str, Any]] = []
    deleted: list[str] = []
    for item in values:
        if not isinstance(item, dict) or not item.get("id"):
            raise ApiBadRequest("Graph returned a delta item without an id.")
        if _removed(item):
            deleted.append(str(item["id"]))
        else:
            records.append(item)
    return records, deleted
