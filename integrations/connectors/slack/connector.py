"""Slack connector: members and channels in; channels, invites, messages and DMs out; Events API webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.connectors.base import (
    ActionResult,
    ActionSpec,
    BaseConnector,
    ConnectionTest,
    ConnectorManifest,
    CredentialField,
    EntitySpec,
    FieldInfo,
    OAuthSpec,
    Page,
    WebhookEvent,
    WebhookRequest,
    WebhookSpec,
)
from integrations.connectors.kit.once import create_once
from integrations.errors import ApiBadRequest, ApiConflict, ApiError, ApiForbidden, ApiNotFound, WebhookRejected
from integrations.http import BearerAuth, HttpClient

logger = logging.getLogger(__name__)

SCOPE_PURPOSES = {
    "users:read": "List workspace members so stakeholders can be picked from Slack.",
    "users:read.email": "Read members' email addresses to match them to Bastion people and invite them by email.",
    "channels:read": "List public channels for the channel pickers and to find a war-room channel that already exists.",
    "groups:read": "List the private channels Bastion belongs to, for the same reasons.",
    "channels:manage": "Create, set the topic of, invite people to and archive public war-room channels.",
    "groups:write": "Do the same for private war-room channels.",
    "chat:write": "Post playbook updates (Block Kit) to channels.",
    "im:write": "Open direct messages to send a person their playbook tasks.",
}
# Optional: with these Bastion finds a message it already posted (by its metadata) so a retried step never posts twice.
OPTIONAL_SCOPE_PURPOSES = {
    "channels:history": "Check recent messages for one Bastion already posted, so a retry never posts it twice.",
    "groups:history": "The same check in private channels.",
    "im:history": "The same check in direct messages.",
}
INVITE_BATCH = 100  # stay at the historically documented limit; newer docs allow 1000
REPLAY_WINDOW_SECONDS = 300
METADATA_EVENT_TYPE = "bastion_action"
HISTORY_LOOKBACK = 200  # messages scanned for an earlier post of the same action


def channel_name(raw: str) -> str:
    """Slack channel name rules: lowercase letters, digits, '-' and '_', at most 80 characters, no spaces or periods."""
    text = unicodedata.normalize("NFKD", raw or "").encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[\s.]+", "-", text.strip())
    text = re.sub(r"[^a-z0-9_-]", "", text)
    text = re.sub(r"-{2,}", "-", text).strip("-_")
    return text[:80].rstrip("-_") or "bastion"


def _epoch_iso(value: Any) -> str | None:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC).isoformat()
    except (TypeError, ValueError):
        return None


class SlackConnector(BaseConnector):
    """Slack Web API (bot token). Method errors arrive as HTTP 200 `ok:false`; the shared client maps them."""

    manifest = ConnectorManifest(
        key="slack",
        name="Slack",
        category="collaboration",
        description="Read members and channels; create war-room channels, invite stakeholders, post updates and DMs.",
        logo="connectors/slack.svg",
        auth_methods=("oauth2", "api_key"),
        credential_fields=(CredentialField("access_token", "Bot token (xoxb-…)", help_text="From your Slack app's OAuth & Permissions page."),),
        oauth=OAuthSpec(
            authorize_url="https://slack.com/oauth/v2/authorize",
            token_url="https://slack.com/api/oauth.v2.access",
            scopes=tuple(SCOPE_PURPOSES),
            scope_purposes={**SCOPE_PURPOSES, **OPTIONAL_SCOPE_PURPOSES},
            use_pkce=False,
            rotates_refresh_token=True,  # only when the app opts into token rotation; otherwise no refresh token is issued
            scope_separator=",",
        ),
        default_base_url="https://slack.com/api",
        entities=(
            EntitySpec("users", "Members", "Workspace members with email and title.", bastion_type="person"),
            EntitySpec("channels", "Channels", "Public channels and the private channels Bastion is in.", bastion_type="channel"),
        ),
        actions=(
            ActionSpec(
                "create_channel",
                "Create channel",
                "Create (or reuse) a channel by its sanitized name.",
                {"name": "string", "is_private": "boolean", "topic": "string"},
                "natural",
            ),
            ActionSpec(
                "invite_users", "Invite people", "Invite people, looked up by email, to a channel.", {"channel": "string", "emails": "array"}, "natural"
            ),
            ActionSpec("post_message", "Post message", "Post a Block Kit message.", {"channel": "string", "text": "string", "blocks": "array"}, "search"),
            ActionSpec("send_dm", "Send direct message", "DM a person found by email.", {"email": "string", "text": "string", "blocks": "array"}, "search"),
            ActionSpec("archive_channel", "Archive channel", "Archive a channel.", {"channel": "string"}, "natural"),
        ),
        webhook=WebhookSpec(
            signature="Events API v0: X-Slack-Signature = v0=hex(HMAC-SHA256(signing secret, 'v0:{X-Slack-Request-Timestamp}:{body}')), 5-minute window."
        ),
        capabilities=("read", "field_discovery", "actions", "webhooks", "undo"),
        docs_url="https://api.slack.com/web",
    )

    def __init__(self, *, client: HttpClient | None = None, config: Mapping[str, Any] | None = None, credentials: Mapping[str, Any] | None = None):
        super().__init__(client=client, config=config, credentials=credentials)
        token = self.credentials.get("access_token") or self.credentials.get("bot_token")
        if self.client is not None and self.client.auth is None and token:
            self.client.auth = BearerAuth(token)
        self._workspace_url: str | None = None
        self._bot_user: str | None = None

    # ---- calls -------------------------------------------------------------------------------------

    def _get(self, method: str, **params: Any) -> dict[str, Any]:
        return self.client.get(method, params={k: v for k, v in params.items() if v is not None}).json()

    def _post(self, method: str, *, retry: bool = True, **body: Any) -> dict[str, Any]:
        return self.client.post(method, json={k: v for k, v in body.items() if v is not None}, retry=retry).json()

    def _page_size(self) -> int:
        return int(self.config.get("page_size") or 200)

    # ---- connection ------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionTest:
        response = self.client.post("auth.test")
        body = response.json()
        scopes = [s for s in (response.headers.get("x-oauth-scopes") or "").split(",") if s]
        self._workspace_url = body.get("url")
        missing = [s for s in SCOPE_PURPOSES if scopes and s not in scopes]
        return ConnectionTest(
            ok=True,
            identity=f"{body.get('user')} @ {body.get('team')}",
            scopes=scopes,
            account_id=body.get("team_id", ""),
            detail={"team": body.get("team"), "user_id": body.get("user_id"), "bot_id": body.get("bot_id"), "url": body.get("url"), "missing_scopes": missing},
        )

    def _workspace(self) -> str:
        if self._workspace_url is None:
            self._workspace_url = self._post("auth.test").get("url") or ""
        return self._workspace_url

    # ---- reading ------------------------------------------------------------------------------------------

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        """One page of members or channels; Slack has no 'changed since' filter, so every read is a full scan."""
        if entity == "users":
            body = self._get("users.list", limit=self._page_size(), cursor=page or None)
            records = [m for m in body.get("members", []) if not m.get("is_bot") and m.get("id") != "USLACKBOT"]
        elif entity == "channels":
            body = self._get(
                "conversations.list", types="public_channel,private_channel", exclude_archived="false", limit=self._page_size(), cursor=page or None
            )
            records = body.get("channels", [])
        else:
            raise KeyError(f"Slack has no entity '{entity}'")
        next_cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
        return Page(records=records, next_page=next_cursor, is_full_scan=True)

    def iter_records(self, entity: str) -> Iterator[dict[str, Any]]:
        """Every record of an entity, page by page."""
        page: Any = None
        while True:
            result = self.read(entity, page=page)
            yield from result.records
            if not result.next_page:
                return
            page = result.next_page

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        return _epoch_iso(record.get("updated")) if entity == "users" else None

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        """Fields seen on live records (one page), profile fields included."""
        sample = self.read(entity).records[:50]
        seen: dict[str, FieldInfo] = {}
        for record in sample:
            for key, value in record.items():
                if key == "profile" and isinstance(value, dict):
                    for pkey, pvalue in value.items():
                        if pkey.startswith("image_") or pkey == "fields":
                            continue
                        seen.setdefault(
                            f"profile.{pkey}", FieldInfo(f"profile.{pkey}", pkey.replace("_", " ").capitalize(), _kind(pkey, pvalue), f"$.profile.{pkey}")
                        )
                    for field_id, field in (value.get("fields") or {}).items():
                        label = (field or {}).get("label") or field_id
                        seen.setdefault(
                            f"profile.fields.{field_id}",
                            FieldInfo(f"profile.fields.{field_id}", label, "string", f"$.profile.fields.{field_id}.value", is_custom=True),
                        )
                elif not key.startswith("_"):
                    seen.setdefault(key, FieldInfo(key, key.replace("_", " ").capitalize(), _kind(key, value), f"$.{key}"))
        return sorted(seen.values(), key=lambda f: f.name)

    # ---- transformers -------------------------------------------------------------------------------------

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "users":
            profile = record.get("profile") or {}
            department_field = self.config.get("department_field_id")
            department = ((profile.get("fields") or {}).get(department_field) or {}).get("value", "") if department_field else ""
            return {
                "external_id": record["id"],
                "email": (profile.get("email") or "").lower(),
                "name": profile.get("real_name") or record.get("real_name") or record.get("name", ""),
                "given_name": profile.get("first_name", ""),
                "family_name": profile.get("last_name", ""),
                "title": profile.get("title", ""),
                "department": department,
                "phone": profile.get("phone", ""),
                "manager_external_id": "",
                "groups": [],
                "is_active": not record.get("deleted", False),
                "username": record.get("name", ""),
            }
        if entity == "channels":
            return {
                "external_id": record["id"],
                "name": record.get("name", ""),
                "is_private": bool(record.get("is_private")),
                "is_archived": bool(record.get("is_archived")),
                "member_count": int(record.get("num_members") or 0),
                "topic": (record.get("topic") or {}).get("value", ""),
            }
        raise KeyError(f"Slack has no entity '{entity}'")

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Bastion channel → conversations.create arguments."""
        if entity == "channels":
            return {"name": channel_name(data.get("name", "")), "is_private": bool(data.get("is_private", False))}
        raise KeyError(f"Slack cannot write entity '{entity}'")

    # ---- actions ----------------------------------------------------------------------------------------------

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        """Run an action. known_new: the caller guarantees no earlier request used this idempotency key, so a message
        is posted without first scanning the channel history for it (create_once still checks after an ambiguous failure)."""
        if known_new and action in ("post_message", "send_dm"):
            return {"post_message": self._post_message, "send_dm": self._send_dm}[action](payload, idempotency_key, known_new=True)
        handlers = {
            "create_channel": self._create_channel,
            "invite_users": self._invite_users,
            "post_message": self._post_message,
            "send_dm": self._send_dm,
            "archive_channel": self._archive_channel,
        }
        if action not in handlers:
            raise KeyError(f"Slack has no action '{action}'")
        return handlers[action](payload, idempotency_key)

    def _channel_url(self, channel_id: str) -> str:
        base = self._workspace()
        return f"{base.rstrip('/')}/archives/{channel_id}" if base else ""

    def _find_channel(self, name: str) -> dict[str, Any] | None:
        for channel in self.iter_records("channels"):
            if channel.get("name") == name:
                return channel
        return None

    # An archived channel Bastion created (an undone activation) keeps its name; the playbook's next activation takes the
    # next free successor name (-2, -3…) instead, because Slack does not let a bot token unarchive (`user_is_bot`).
    MAX_SUCCESSOR_NAMES = 9

    def _bot_user_id(self) -> str:
        if self._bot_user is None:
            self._bot_user = str(self._post("auth.test").get("user_id") or "")
        return self._bot_user

    def _create_channel(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        args = self.from_bastion("channels", payload)
        topic = str(payload.get("topic") or "")
        base = args["name"]
        for attempt in range(1, self.MAX_SUCCESSOR_NAMES + 1):
            name = base if attempt == 1 else f"{base[: 80 - len(str(attempt)) - 1]}-{attempt}"
            created = True
            try:
                # Retrying a create that succeeded answers name_taken, handled below: the name is the idempotency marker.
                channel = self._post("conversations.create", name=name, is_private=args["is_private"])["channel"]
            except ApiConflict as exc:
                if exc.vendor_code != "name_taken":
                    raise
                channel = self._find_channel(name)
                if channel is None:
                    raise ApiConflict(
                        f"Slack says #{name} is taken but Bastion cannot see it (a private channel it is not in?). Pick another name.",
                        vendor_code="name_taken",
                        path=exc.path,
                    ) from exc
                if channel.get("is_archived"):
                    if channel.get("creator") and channel.get("creator") == self._bot_user_id():
                        continue  # Bastion's own channel from an undone activation: take the next name
                    raise ApiConflict(f"#{name} exists but is archived; unarchive it in Slack or pick another name.", vendor_code="is_archived") from exc
                created = False
            if topic and (channel.get("topic") or {}).get("value") != topic:
                channel = self._post("conversations.setTopic", channel=channel["id"], topic=topic).get("channel", channel)
            return ActionResult(
                external_id=channel["id"],
                url=self._channel_url(channel["id"]),
                data={"name": channel.get("name"), "is_private": channel.get("is_private")},
                created=created,
            )
        raise ApiConflict(f"#{base} and its next {self.MAX_SUCCESSOR_NAMES - 1} names are archived channels; pick another name.", vendor_code="is_archived")

    def lookup_user_id(self, email: str) -> str | None:
        """Slack user id for an email, or None (users_not_found, or user_not_found in older API answers)."""
        try:
            return self._get("users.lookupByEmail", email=email)["user"]["id"]
        except ApiNotFound as exc:
            if exc.vendor_code in ("users_not_found", "user_not_found"):
                return None
            raise

    def _invite_users(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        channel = str(payload["channel"])
        invited: list[str] = []
        not_found: list[str] = []
        user_ids: list[str] = []
        for email in dict.fromkeys(str(e).strip().lower() for e in payload.get("emails", []) if str(e).strip()):
            user_id = self.lookup_user_id(email)
            if user_id is None:
                not_found.append(email)
            else:
                user_ids.append(user_id)
        added = False
        for start in range(0, len(user_ids), INVITE_BATCH):
            batch = user_ids[start : start + INVITE_BATCH]
            try:
                # force=true: invite the valid ids even if some are already members (a retry after a partial run).
                body = self._post("conversations.invite", channel=channel, users=",".join(batch), force=True)
            except ApiConflict as exc:
                if exc.vendor_code != "already_in_channel":
                    raise
                body = {"errors": [{"user": uid, "error": "already_in_channel"} for uid in batch]}
            skipped = {e.get("user") for e in body.get("errors", []) if e.get("error") == "already_in_channel"}
            added = added or any(uid not in skipped for uid in batch)
            invited.extend(batch)
        return ActionResult(external_id=channel, url=self._channel_url(channel), data={"invited": invited, "not_found": not_found}, created=added)

    def _find_posted(self, channel: str, idempotency_key: str) -> dict[str, Any] | None:
        """An earlier message of this action in the channel's recent history, found by its metadata."""
        scanned = 0
        cursor = None
        try:
            while scanned < HISTORY_LOOKBACK:
                body = self._get("conversations.history", channel=channel, include_all_metadata="true", limit=100, cursor=cursor)
                for message in body.get("messages", []):
                    payload = (message.get("metadata") or {}).get("event_payload") or {}
                    if (message.get("metadata") or {}).get("event_type") == METADATA_EVENT_TYPE and payload.get("idempotency_key") == idempotency_key:
                        return message
                scanned += len(body.get("messages", []))
                cursor = (body.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return None
        except ApiForbidden as exc:
            # Without a history scope the check is impossible; say so rather than fail the step.
            logger.warning("slack.history_unavailable", extra={"channel": channel, "code": exc.vendor_code})
        return None

    def _message_result(self, channel: str, ts: str, created: bool) -> ActionResult:
        base = self._workspace()
        url = f"{base.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}" if base else ""
        return ActionResult(external_id=ts, url=url, data={"channel": channel, "ts": ts}, created=created)

    def _post_once(self, channel: str, text: str, blocks: Any, idempotency_key: str, *, known_new: bool = False) -> ActionResult:
        # A key never tried before cannot have a message yet: skip the history scan (one call saved per first attempt).
        existing = None if known_new else self._find_posted(channel, idempotency_key)
        if existing is not None:
            return self._message_result(channel, existing["ts"], created=False)
        metadata = {"event_type": METADATA_EVENT_TYPE, "event_payload": {"idempotency_key": idempotency_key}}

        def send() -> ActionResult:
            body = self._post("chat.postMessage", retry=False, channel=channel, text=text, blocks=blocks or None, metadata=metadata, unfurl_links=False)
            return self._message_result(body.get("channel", channel), body["ts"], created=True)

        def find() -> ActionResult | None:
            found = self._find_posted(channel, idempotency_key)
            return self._message_result(channel, found["ts"], created=True) if found else None

        return create_once(self.client, send, find, what="slack message")

    def _post_message(self, payload: Mapping[str, Any], idempotency_key: str, *, known_new: bool = False) -> ActionResult:
        text = str(payload.get("text") or "")
        blocks = payload.get("blocks")
        if not text and not blocks:
            raise ApiBadRequest("A Slack message needs text or blocks.", vendor_code="no_text")
        return self._post_once(str(payload["channel"]), text, blocks, idempotency_key, known_new=known_new)

    def _send_dm(self, payload: Mapping[str, Any], idempotency_key: str, *, known_new: bool = False) -> ActionResult:
        email = str(payload["email"]).strip().lower()
        user_id = self.lookup_user_id(email)
        if user_id is None:
            raise ApiNotFound(f"No Slack member has the email {email}.", vendor_code="users_not_found")
        dm = self._post("conversations.open", users=user_id)["channel"]["id"]
        result = self._post_once(dm, str(payload.get("text") or ""), payload.get("blocks"), idempotency_key, known_new=known_new)
        result.data["user"] = user_id
        return result

    def _archive_channel(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        channel = str(payload["channel"])
        try:
            self._post("conversations.archive", channel=channel)
            created = True
        except ApiError as exc:
            if exc.vendor_code != "already_archived":
                raise
            created = False
        return ActionResult(external_id=channel, url=self._channel_url(channel), data={"is_archived": True}, created=created)

    # ---- tracked objects: status polling and undo ----------------------------------------------------------------

    UNDO_ACTIONS: dict[str, str] = {"create_channel": "Archive the channel (members keep its history; it can be unarchived in Slack)."}

    def fetch_object(self, kind: str, external_id: str) -> dict[str, Any]:
        """conversations.info → Bastion's channel shape (the polling backstop); a channel Slack no longer knows reads as deleted."""
        if kind not in ("slack_channel", "channel", "channels"):
            raise KeyError(f"Slack cannot read '{kind}' objects")
        try:
            channel = self._get("conversations.info", channel=external_id)["channel"]
        except ApiNotFound as exc:
            if exc.vendor_code != "channel_not_found":
                raise
            return {"external_id": external_id, "status": "deleted"}
        return self.to_bastion("channels", channel)

    def undo(
        self, action: str, *, external_id: str, key: str = "", payload: Mapping[str, Any] | None = None, reason: str = "", idempotency_key: str
    ) -> ActionResult:
        """Undo what `action` created: a channel is told why, then archived (already archived or deleted counts as undone)."""
        if action != "create_channel":
            raise KeyError(f"Slack cannot undo '{action}'")
        if reason:
            try:
                self._post_once(external_id, reason, None, f"{idempotency_key}:note")
            except ApiError as exc:
                # An archived or deleted channel cannot take the note; archiving below tells which.
                if exc.vendor_code not in ("is_archived", "channel_not_found", "not_in_channel"):
                    raise
        try:
            return self._archive_channel({"channel": external_id}, idempotency_key)
        except ApiNotFound as exc:
            if exc.vendor_code != "channel_not_found":
                raise
            return ActionResult(external_id=external_id, data={"status": "deleted"}, created=False)

    # ---- webhooks -----------------------------------------------------------------------------------------------

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        """Slack v0 signature over the raw body, compared in constant time, then the 5-minute window."""
        signature = request.header("X-Slack-Signature")
        timestamp = request.header("X-Slack-Request-Timestamp")
        if not signature or not timestamp:
            raise WebhookRejected(400, "missing_signature", "X-Slack-Signature and X-Slack-Request-Timestamp are required.")
        if not timestamp.strip().isdigit():
            raise WebhookRejected(400, "bad_timestamp", "X-Slack-Request-Timestamp must be epoch seconds.")
        base = b"v0:" + timestamp.strip().encode() + b":" + request.body
        expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
            raise WebhookRejected(401, "bad_signature", "The Slack signature does not match this integration's signing secret.")
        if abs(request.received_at.timestamp() - int(timestamp)) > REPLAY_WINDOW_SECONDS:
            raise WebhookRejected(409, "stale_timestamp", "The Slack request is older than 5 minutes (possible replay).")

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise WebhookRejected(400, "invalid_json", "The Slack event body is not JSON.") from exc
        if not isinstance(body, dict) or "type" not in body:
            raise WebhookRejected(400, "invalid_payload", "The Slack event has no type.")
        if body["type"] == "url_verification":
            return [
                WebhookEvent(
                    delivery_id=hashlib.sha256(request.body).hexdigest(),
                    event_type="url_verification",
                    action="sync",
                    challenge_response={"challenge": str(body.get("challenge", ""))},
                )
            ]
        if body["type"] != "event_callback":
            return []
        event = body.get("event")
        if not isinstance(event, dict) or not body.get("event_id"):
            raise WebhookRejected(400, "invalid_payload", "An event_callback needs event and event_id.")
        return _events_from_callback(body["event_id"], event, body.get("event_time"))


def _events_from_callback(delivery_id: str, event: dict[str, Any], event_time: Any) -> list[WebhookEvent]:
    kind = str(event.get("type", ""))
    occurred = datetime.fromtimestamp(int(event_time), tz=UTC) if str(event_time or "").isdigit() else None
    channel = event.get("channel")
    channel_id = channel.get("id") if isinstance(channel, dict) else channel
    if kind in ("channel_archive", "group_archive"):
        record = {"status": "archived", "is_archived": True, "user": event.get("user", "")}
        return [WebhookEvent(delivery_id, kind, "channels", str(channel_id), "status", record, occurred)]
    if kind in ("channel_unarchive", "group_unarchive"):
        record = {"status": "active", "is_archived": False, "user": event.get("user", "")}
        return [WebhookEvent(delivery_id, kind, "channels", str(channel_id), "status", record, occurred)]
    if kind in ("channel_deleted", "group_deleted"):
        return [WebhookEvent(delivery_id, kind, "channels", str(channel_id), "delete", None, occurred)]
    if kind in ("channel_created", "channel_rename", "group_rename") and isinstance(channel, dict):
        return [WebhookEvent(delivery_id, kind, "channels", str(channel_id), "upsert", channel, occurred)]
    if kind in ("member_joined_channel", "member_left_channel"):
        # Membership changed: re-read the channel (its member count) rather than guess.
        record = {"user": event.get("user", ""), "inviter": event.get("inviter", ""), "channel_type": event.get("channel_type", "")}
        return [WebhookEvent(delivery_id, kind, "channels", str(channel_id), "sync", record, occurred)]
    if kind in ("user_change", "team_join") and isinstance(event.get("user"), dict):
        user = event["user"]
        return [WebhookEvent(delivery_id, kind, "users", str(user.get("id", "")), "upsert", user, occurred)]
    return []


def _kind(name: str, value: Any) -> str:
    if name == "email":
        return "email"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


CONNECTOR = SlackConnector
