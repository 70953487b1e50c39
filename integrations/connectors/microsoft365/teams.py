"""Teams: channels in the configured team, members, Adaptive Card posts (delegated, or an incoming webhook), online meetings."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from integrations.connectors.base import ActionResult, TrackedObject
from integrations.connectors.entities import BastionChannel, BastionPerson
from integrations.connectors.kit.markers import idempotency_marker
from integrations.connectors.kit.once import create_once
from integrations.connectors.kit.text import single_line
from integrations.connectors.microsoft365.cards import CARD_CONTENT_TYPE, adaptive_card, plain_text
from integrations.connectors.microsoft365.client import GraphBase
from integrations.errors import ApiBadRequest, ApiConflict, ApiError, ApiForbidden, ApiNotFound
from integrations.http import HttpClient

logger = logging.getLogger(__name__)

CHANNEL_NAME_LIMIT = 50  # Graph: a channel's displayName is at most 50 characters
# Characters Teams refuses in a channel name; each run becomes one "-".
FORBIDDEN_NAME_CHARS = frozenset("~#%&*{}+/\\:<>?|'\",")
CHANNEL_KINDS = ("channel", "teams_channel", "channels")
MAX_SUCCESSOR_NAMES = 9  # "-2" … "-9" after names held by Bastion's archived channels
POSTED_LOOKBACK_PAGES = 2  # pages of recent messages scanned for an earlier post of the same step
MEMBER_TYPE = "#microsoft.graph.aadUserConversationMember"
GRAPH_USERS = "https://graph.microsoft.com/v1.0/users"  # Graph's own form of user@odata.bind, whatever host Bastion talks to


def channel_display_name(raw: Any, *, fallback: str = "Bastion") -> str:
    """A name Teams accepts: no ~#%&*{}+/\\:<>?|'", no leading '_' or '.', no trailing '.', one line, at most 50 characters."""
    text = single_line(str(raw.get("name", "") if isinstance(raw, Mapping) else raw or ""))
    out: list[str] = []
    for char in text:
        if char in FORBIDDEN_NAME_CHARS:
            if out and out[-1] != "-":
                out.append("-")
        else:
            out.append(char)
    name = "".join(out)
    while ".." in name:  # Teams refuses two dots in a row
        name = name.replace("..", ".")
    name = name.strip(" -").lstrip("_.")[:CHANNEL_NAME_LIMIT].rstrip(" .-")
    return name or fallback


def successor_name(base: str, attempt: int) -> str:
    """The name itself first, then "name-2", "name-3"… within Teams' 50 characters."""
    if attempt == 1:
        return base
    suffix = f"-{attempt}"
    return base[: CHANNEL_NAME_LIMIT - len(suffix)].rstrip(" .-") + suffix


def rendered_channel_name(value: Any) -> str:
    """The create_channel `name` FieldShape transform."""
    return channel_display_name(value, fallback="Bastion channel")


def channel_state(channel: Mapping[str, Any]) -> TrackedObject:
    """A channel as the war room tracks it: done once archived."""
    archived = bool(channel.get("isArchived"))
    name = str(channel.get("displayName") or "")
    return TrackedObject(title=f"#{name}" if name else "", status="archived" if archived else "active", is_done=archived, url=channel.get("webUrl", ""))


def _emails(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else str(value or "").replace(";", ",").split(",")
    return list(dict.fromkeys(str(e.get("email", "") if isinstance(e, Mapping) else e).strip().lower() for e in items if e))


class TeamsMixin(GraphBase):
    """Teams actions, reads and tracked channels."""

    @property
    def team_id(self) -> str:
        team = str(self.config.get("team_id") or "").strip()
        if not team:
            raise ApiBadRequest("Pick the team incident channels go into (setting 'Team').")
        return team

    def _team(self, suffix: str = "") -> str:
        return f"teams/{quote(self.team_id, safe='')}{suffix}"

    def _channel_path(self, channel_id: str, suffix: str = "") -> str:
        return self._team(f"/channels/{quote(channel_id, safe='@:.')}{suffix}")

    def _channels(self) -> list[dict[str, Any]]:
        return list(self.iter_items(self._team("/channels")))

    def _find_channel(self, name: str) -> dict[str, Any] | None:
        wanted = name.casefold()
        return next((c for c in self._channels() if str(c.get("displayName") or "").casefold() == wanted), None)

    def resolve_channel(self, value: Any) -> str:
        """A channel id ('19:…@thread…') as is; a name ('#war-room') looked up in the team."""
        text = str(value or "").strip()
        if not text:
            raise ApiBadRequest("Which channel? The payload's 'channel' is empty.")
        if text.startswith("19:"):
            return text
        found = self._find_channel(text.lstrip("#"))
        if found is None:
            raise ApiNotFound(f"The team has no channel named {text}.", vendor_code="channel_not_found")
        return str(found["id"])

    # Actions -----------------------------------------------------------------------------------------------------
    def _act_create_channel(self, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        base = channel_display_name(payload.get("name"))
        private = bool(payload.get("is_private"))
        body: dict[str, Any] = {"description": single_line(str(payload.get("topic") or ""))[:1024], "membershipType": "private" if private else "standard"}
        if private and self.is_application:
            # An application is nobody: a private channel it creates needs a named owner.
            body["members"] = [{"@odata.type": MEMBER_TYPE, "user@odata.bind": f"{GRAPH_USERS}('{self._owner_id()}')", "roles": ["owner"]}]
        for attempt in range(1, MAX_SUCCESSOR_NAMES + 1):
            name = successor_name(base, attempt)
            channel = None if known_new and attempt == 1 else self._find_channel(name)
            if channel is not None and not channel.get("isArchived"):
                return self._channel_result(channel, created=False)
            if channel is None:
                made = self._create_named({**body, "displayName": name})
                if made is not None:
                    existing = bool(made.pop("_existing", False))
                    return self._channel_result(made, created=not existing)
            # An undone run's archived channel (or a deleted one) keeps its name: the next activation takes the next name.
        raise ApiConflict(
            f"#{base} and its next {MAX_SUCCESSOR_NAMES - 1} names are taken by archived or deleted channels; pick another name.",
            vendor_code="NameAlreadyExists",
        )

    def _create_named(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create the channel once; None when its name is taken by a channel Bastion cannot reuse (archived, deleted)."""
        name = str(body["displayName"])

        def send() -> dict[str, Any]:
            try:
                return self.client.post(self._path(self._team("/channels")), json=body, retry=False).json()
            except (ApiConflict, ApiBadRequest) as exc:
                if exc.vendor_code != "NameAlreadyExists" and "already exist" not in exc.message.lower():
                    raise
                # The name is taken: an earlier attempt of this step made it (reused), or an archived or deleted channel holds it.
                existing = self._find_channel(name)
                if existing is None or existing.get("isArchived"):
                    return {"_taken": True}
                logger.info("microsoft365.channel_exists", extra={"code": exc.vendor_code})
                return {**existing, "_existing": True}

        made = create_once(self.client, send, lambda: self._find_channel(name), what="teams channel")
        return None if made.get("_taken") else made

    def _channel_result(self, channel: Mapping[str, Any], *, created: bool) -> ActionResult:
        # The invitation step that follows asks for the channel's membership type: this worker already knows it.
        self.__dict__.setdefault("_channels_seen", {})[str(channel["id"])] = {k: channel.get(k) for k in ("id", "displayName", "membershipType", "webUrl")}
        named = str(channel.get("displayName") or "")
        return ActionResult(
            external_id=str(channel["id"]),
            url=channel.get("webUrl", ""),
            data={"name": named, "membership_type": channel.get("membershipType", ""), "team_id": self.team_id},
            created=created,
            tracked=TrackedObject(title=f"#{named}", url=channel.get("webUrl", "")),
            link_text=f"#{named}",
        )

    def _owner_id(self) -> str:
        organizer = str(self.config.get("organizer") or "").strip()
        if not organizer:
            raise ApiBadRequest("A private channel created with application permissions needs an owner: set 'Organizer (user or mailbox)'.")
        user = self.find_user(organizer) if "@" in organizer else {"id": organizer}
        if not user:
            raise ApiNotFound(f"The organizer {organizer} is not in the directory.", vendor_code="user_not_found")
        return str(user["id"])

    def _act_invite_users(self, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        channel_id = self.resolve_channel(payload.get("channel"))
        channel = self.__dict__.get("_channels_seen", {}).get(channel_id) or self.graph(
            "GET", self._channel_path(channel_id), params={"$select": "id,displayName,membershipType,webUrl"}
        )
        private = channel.get("membershipType") in ("private", "shared")
        emails = _emails(payload.get("emails"))
        users = self.find_users(emails)
        not_found = [email for email, user in users.items() if user is None]
        found = [u for u in users.values() if u]
        # A private channel takes only the team's members: everyone joins the team first (never as owner), then the channel.
        added, already = self._add_members(self._team("/members"), found)
        if private:
            added, already = self._add_members(self._channel_path(channel_id, "/members"), found)
        by_id = {str(user["id"]): email for email, user in users.items() if user}
        summary = f"{len(emails) - len(not_found)} invited" + (f", {len(not_found)} not found" if not_found else "")
        return ActionResult(
            external_id=channel_id,
            url=channel.get("webUrl", ""),
            data={
                "added": len(added),
                "already_members": [by_id[user_id] for user_id in already],
                "not_found": not_found,
                "scope": "channel" if private else "team",
            },
            created=bool(added),
            summary=summary,
        )

    def _add_members(self, target: str, users: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
        """Add users as conversation members through $batch: (ids added, ids already members)."""
        calls = [
            {
                "id": str(i + 1),
                "method": "POST",
                "url": target,
                "body": {"@odata.type": MEMBER_TYPE, "roles": [], "user@odata.bind": f"{GRAPH_USERS}('{u['id']}')"},
            }
            for i, u in enumerate(users)
        ]
        added: list[str] = []
        already: list[str] = []
        for user, result in zip(users, self.batch(calls) if calls else [], strict=True):
            if result.error is None:
                added.append(str(user["id"]))
            elif isinstance(result.error, ApiConflict) or (isinstance(result.error, ApiBadRequest) and "already" in result.error.message.lower()):
                already.append(str(user["id"]))  # a retry after a partial run: they are members
            else:
                raise result.error
        return added, already

    def _act_post_message(self, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False, importance: str = "normal") -> ActionResult:
        text = str(payload.get("text") or "")
        title = str(payload.get("title") or "")
        if not text.strip() and not title.strip():
            raise ApiBadRequest("A Teams message needs text.", vendor_code="no_text")
        card = adaptive_card(text, title=title)
        link_text = "Notification sent" if importance != "normal" else "Briefing posted"
        if self.is_application:
            return self._post_by_webhook(card, link_text)
        channel_id = self.resolve_channel(payload.get("channel"))
        marker = idempotency_marker(idempotency_key)
        existing = None if known_new else self._find_posted(channel_id, marker)
        if existing is not None:
            return self._message_result(channel_id, existing, created=False, link_text=link_text)
        body = {
            "body": {"contentType": "html", "content": f'<attachment id="{marker}"></attachment>'},
            "attachments": [{"id": marker, "contentType": CARD_CONTENT_TYPE, "content": json.dumps(card)}],
            "importance": importance,
            "summary": plain_text(title or text)[:200],
        }

        def send() -> ActionResult:
            message = self.client.post(self._path(self._channel_path(channel_id, "/messages")), json=body, retry=False).json()
            return self._message_result(channel_id, message, created=True, link_text=link_text)

        def find() -> ActionResult | None:
            found = self._find_posted(channel_id, marker)
            return self._message_result(channel_id, found, created=True, link_text=link_text) if found else None

        return create_once(self.client, send, find, what="teams message")

    def _act_send_notification(self, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        return self._act_post_message(payload, idempotency_key=idempotency_key, known_new=known_new, importance="high")

    def _message_result(self, channel_id: str, message: Mapping[str, Any], *, created: bool, link_text: str) -> ActionResult:
        return ActionResult(
            external_id=str(message.get("id") or ""),
            url=message.get("webUrl", ""),
            data={"channel": channel_id, "team_id": self.team_id, "message_id": message.get("id")},
            created=created,
            link_text=link_text,
        )

    def _find_posted(self, channel_id: str, marker: str) -> dict[str, Any] | None:
        """An earlier message of this step among the channel's recent ones, found by its card's attachment id."""
        try:
            for messages in self.iter_pages(self._channel_path(channel_id, "/messages"), {"$top": 50}, max_pages=POSTED_LOOKBACK_PAGES):
                for message in messages:
                    if any(a.get("id") == marker for a in message.get("attachments") or []):
                        return message
        except ApiForbidden as exc:
            # Without ChannelMessage.Read.All the check is impossible; say so in the log rather than fail the step.
            logger.warning("microsoft365.messages_unreadable", extra={"channel": channel_id, "code": exc.vendor_code})
        return None

    def _post_by_webhook(self, card: Mapping[str, Any], link_text: str) -> ActionResult:
        """Application permissions cannot post to a channel: the connection's incoming webhook can, into its own channel."""
        url = str(self.credentials.get("incoming_webhook_url") or "").strip()
        if not url:
            raise ApiForbidden(
                "Microsoft Graph lets application permissions only import channel messages, not post them: connect Microsoft 365 "
                "with a signed-in delegate (ChannelMessage.Send), or add a Teams incoming webhook URL to the connection.",
                vendor_code="needs_delegate",
            )
        # A client of its own: the Graph token must never travel to the webhook's host.
        webhook = HttpClient(
            url, timeout=self.client.timeout, url_guard=self.client.url_guard, recorder=self.client.recorder, sleep=self.client.sleep, max_retries=0
        )
        message = {"type": "message", "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}]}
        webhook.post(url, json=message, retry=False)
        return ActionResult(
            external_id="",
            data={"via": "incoming_webhook"},
            created=True,
            link_text=link_text,
            summary=f"{link_text} through the incoming webhook (its own channel): application permissions cannot post to the new channel",
        )

    def _act_create_online_meeting(self, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        subject = single_line(str(payload.get("subject") or "War room"))[:255]
        body: dict[str, Any] = {
            "externalId": idempotency_marker(idempotency_key),
            "subject": subject,
            "startDateTime": str(payload.get("start") or ""),
            "endDateTime": str(payload.get("end") or ""),
        }
        attendees = _emails(payload.get("attendees"))
        if attendees:
            body["participants"] = {"attendees": [{"upn": email, "role": "attendee"} for email in attendees]}
        response = self.client.post(self._path(f"{self.user_path()}/onlineMeetings/createOrGet"), json=body)
        meeting = response.json()
        url = meeting.get("joinWebUrl") or (meeting.get("joinInformation") or {}).get("joinUrl", "")
        return ActionResult(
            external_id=str(meeting.get("id") or ""),
            url=url,
            data={"join_url": url, "subject": subject},
            created=response.status_code == 201,
            link_text="Teams meeting",
        )

    # Reads -------------------------------------------------------------------------------------------------------
    def list_teams(self) -> list[dict[str, Any]]:
        """The teams the delegate joined, or every team for the application."""
        path = "teams" if self.is_application else f"{self.user_path()}/joinedTeams"
        return list(self.iter_items(path, {"$select": "id,displayName,description"}))

    def teams_choices(self) -> list[tuple[str, str]]:
        return [(str(t["id"]), str(t.get("displayName") or t["id"])) for t in self.list_teams()]

    def read_teams_entity(self, entity: str, page: Mapping[str, Any] | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of teams, channels or members: (records, next link)."""
        if page and page.get("next"):
            body = self.graph("GET", self.next_link(str(page["next"])))
        elif entity == "teams":
            path = "teams" if self.is_application else f"{self.user_path()}/joinedTeams"
            body = self.graph("GET", path, params={"$select": "id,displayName,description"})
        elif entity == "channels":
            body = self.graph("GET", self._team("/channels"))
        else:
            body = self.graph("GET", self._team("/members"))
        return list(body.get("value") or []), body.get("@odata.nextLink")

    @staticmethod
    def channel_record(record: Mapping[str, Any]) -> dict[str, Any]:
        return dict(
            BastionChannel(
                external_id=str(record["id"]),
                name=str(record.get("displayName") or ""),
                topic=str(record.get("description") or ""),
                is_private=record.get("membershipType") in ("private", "shared"),
                is_archived=bool(record.get("isArchived")),
                url=str(record.get("webUrl") or ""),
            )
        )

    @staticmethod
    def member_record(record: Mapping[str, Any]) -> dict[str, Any]:
        return dict(
            BastionPerson(
                external_id=str(record.get("userId") or record["id"]),
                email=str(record.get("email") or "").lower(),
                name=str(record.get("displayName") or ""),
                is_active=True,
            )
        )

    # Tracked channels --------------------------------------------------------------------------------------------
    def fetch_channels(self, external_ids: list[str]) -> dict[str, TrackedObject]:
        found: dict[str, TrackedObject] = {}
        for channel_id in dict.fromkeys(i for i in external_ids if i):
            try:
                found[channel_id] = channel_state(self.graph("GET", self._channel_path(channel_id)))
            except ApiNotFound:
                found[channel_id] = TrackedObject(status="deleted", is_done=True)
        return found

    def undo_channel(self, channel_id: str, reason: str) -> ActionResult:
        """Archive the channel (Graph archives asynchronously: 202); a channel already gone counts as undone."""
        try:
            self.client.post(self._path(self._channel_path(channel_id, "/archive")), json={"shouldSetSpoSiteReadOnlyForMembers": False})
        except ApiNotFound:
            if self.fetch_channels([channel_id])[channel_id].status != "deleted":
                raise  # the channel is there: it is the archive call Graph did not find, not the channel
            return ActionResult(external_id=channel_id, data={"status": "deleted"}, created=False, tracked=TrackedObject(status="deleted", is_done=True))
        except ApiError as exc:
            if "archived" not in exc.message.lower():
                raise
            return ActionResult(external_id=channel_id, data={"status": "archived"}, created=False, tracked=TrackedObject(status="archived", is_done=True))
        return ActionResult(
            external_id=channel_id, data={"status": "archived", "reason": reason}, created=True, tracked=TrackedObject(status="archived", is_done=True)
        )
