"""Slack actions: channels (created once, successor names past Bastion's archived ones), invitations, messages posted once, undo."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from integrations.connectors.base import ActionResult, TrackedObject
from integrations.connectors.kit.concurrent import invitations_merged, map_concurrently, normalized_emails
from integrations.connectors.kit.once import create_once
from integrations.connectors.kit.progress import output_ready
from integrations.connectors.slack.reader import SlackReader
from integrations.errors import ApiBadRequest, ApiConflict, ApiError, ApiForbidden, ApiNotFound

logger = logging.getLogger(__name__)

INVITE_BATCH = 100  # stay at the historically documented limit; newer docs allow 1000
METADATA_EVENT_TYPE = "bastion_action"
LOOKUP_CONCURRENCY = 10  # users.lookupByEmail is Tier 3 (50+ a minute, bursts allowed); a 429 waits its Retry-After
USER_ID_TTL_SECONDS = 600  # a member's id never changes; the TTL only bounds how long a removed member stays known
HISTORY_LOOKBACK = 200  # messages scanned for an earlier post of the same action
CHANNEL_KINDS = ("channel", "slack_channel", "channels")  # TrackedKind.CHANNEL, and the war room's older task kind


def channel_state(name: str, is_archived: bool) -> TrackedObject:
    """A channel as the war room tracks it: done once archived."""
    return TrackedObject(title=f"#{name}" if name else "", status="archived" if is_archived else "active", is_done=is_archived)


class SlackActions(SlackReader):
    """perform/undo/fetch_objects over the Web API."""

    # An archived channel Bastion created (an undone activation) keeps its name; the playbook's next activation takes the
    # next free successor name (-2, -3…) instead, because Slack does not let a bot token unarchive (`user_is_bot`).
    MAX_SUCCESSOR_NAMES = 9

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

    def _find_channel(self, name: str) -> dict[str, Any] | None:
        for channel in self.iter_records("channels"):
            if channel.get("name") == name:
                return channel
        return None

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
            url = self._channel_url(channel["id"])
            # What Slack named it wins over what was asked for (a successor name past an archived channel).
            named = str(channel.get("name") or name)
            result = ActionResult(
                external_id=channel["id"],
                url=url,
                data={"name": channel.get("name"), "is_private": channel.get("is_private")},
                created=created,
                tracked=TrackedObject(title=f"#{named}", url=url),
                link_text=f"#{named}",
            )
            output_ready(result)  # invitations and the briefing need the channel, not its topic
            if topic and (channel.get("topic") or {}).get("value") != topic:
                self._post("conversations.setTopic", channel=channel["id"], topic=topic)
            return result
        raise ApiConflict(f"#{base} and its next {self.MAX_SUCCESSOR_NAMES - 1} names are archived channels; pick another name.", vendor_code="is_archived")

    def perform_bulk(
        self, action: str, payloads: list[Mapping[str, Any]], *, idempotency_keys: list[str], known_new: bool = False
    ) -> list[ActionResult | Exception]:
        """invite_users: every payload's addresses in one lookup round and one conversations.invite per channel."""
        if action == "invite_users":
            return invitations_merged(lambda merged: self._invite_users(merged, idempotency_keys[0]), payloads)
        return super().perform_bulk(action, payloads, idempotency_keys=idempotency_keys, known_new=known_new)

    def lookup_user_id(self, email: str) -> str | None:
        """Slack user id for an email, or None (users_not_found, or user_not_found in older API answers)."""
        try:
            return self._get("users.lookupByEmail", email=email)["user"]["id"]
        except ApiNotFound as exc:
            if exc.vendor_code in ("users_not_found", "user_not_found"):
                return None
            raise

    def user_ids_for(self, emails: list[str]) -> dict[str, str | None]:
        """Slack user ids for e-mails: known ones from this connector's cache, the rest looked up side by side."""
        cache = self._user_ids
        now = time.monotonic()
        ids: dict[str, str | None] = {e: hit[0] for e in emails if (hit := cache.get(e)) and hit[1] > now}
        missing = [e for e in emails if e not in ids]
        for email, found in zip(missing, map_concurrently(self.lookup_user_id, missing, limit=LOOKUP_CONCURRENCY), strict=True):
            if isinstance(found, Exception):
                raise found
            ids[email] = found
            if found:  # an unknown address is asked again next time: the person may have joined since
                cache[email] = (found, now + USER_ID_TTL_SECONDS)
        return ids

    def _invite_users(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        channel = str(payload["channel"])
        invited: list[str] = []
        emails = normalized_emails(payload.get("emails", []))
        ids = self.user_ids_for(emails)
        not_found = [e for e in emails if not ids.get(e)]
        user_ids = [uid for e in emails if (uid := ids.get(e))]
        added = False
        refused: dict[str, str] = {}  # user id → Slack's per-user error (force=true invites the others)
        already: set[str] = set()
        for start in range(0, len(user_ids), INVITE_BATCH):
            batch = user_ids[start : start + INVITE_BATCH]
            try:
                # force=true: invite the valid ids even if some are already members (a retry after a partial run).
                body = self._post("conversations.invite", channel=channel, users=",".join(batch), force=True)
            except ApiConflict as exc:
                if exc.vendor_code != "already_in_channel":
                    raise
                body = {"errors": [{"user": uid, "error": "already_in_channel"} for uid in batch]}
            # Slack's per-user codes ("user_not_found") reach the war room's summary: bounded, whatever the answer holds.
            errors = {str(e.get("user")): str(e.get("error") or "")[:60] for e in body.get("errors", []) if isinstance(e, dict)}
            refused.update({uid: error for uid, error in errors.items() if error != "already_in_channel"})
            already.update(uid for uid, error in errors.items() if error == "already_in_channel")
            added = added or any(uid not in errors for uid in batch)
            invited.extend(uid for uid in batch if uid not in refused)
        by_id = {ids[e]: e for e in emails if ids.get(e)}
        refused_emails = {by_id.get(uid, uid): error for uid, error in refused.items()}
        already_members = [by_id.get(uid, uid) for uid in sorted(already)]
        cache = self._user_ids
        for email in refused_emails:
            cache.pop(email, None)  # a removed or deactivated member: look the address up again next time
        summary = f"{len(emails) - len(not_found) - len(refused_emails)} invited" + (f", {len(not_found)} not found" if not_found else "")
        if refused_emails:
            summary += f", {len(refused_emails)} refused by Slack ({', '.join(sorted(set(refused_emails.values())))})"
        return ActionResult(
            external_id=channel,
            url=self._channel_url(channel),
            data={"invited": invited, "not_found": not_found, "refused": refused_emails, "already_members": already_members},
            created=added,
            summary=summary,
        )

    def _find_posted(self, channel: str, idempotency_key: str) -> dict[str, Any] | None:
        """An earlier message of this action in the channel's recent history, found by its metadata."""
        scanned = 0
        pages = self.client.paginate_cursor(
            "conversations.history",
            items_key="messages",
            next_cursor=lambda body: (body.get("response_metadata") or {}).get("next_cursor"),
            params={"channel": channel, "include_all_metadata": "true", "limit": 100},
        )
        try:
            for messages, _response in pages:
                for message in messages:
                    payload = (message.get("metadata") or {}).get("event_payload") or {}
                    if (message.get("metadata") or {}).get("event_type") == METADATA_EVENT_TYPE and payload.get("idempotency_key") == idempotency_key:
                        return message
                scanned += len(messages)
                if scanned >= HISTORY_LOOKBACK:
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
        result = self._post_once(str(payload["channel"]), text, blocks, idempotency_key, known_new=known_new)
        result.link_text = "Briefing posted"
        return result

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

    def fetch_objects(self, kind: str, external_ids: list[str]) -> dict[str, TrackedObject]:
        """conversations.info per channel (the polling backstop): archived is done; a channel Slack no longer knows reads as deleted."""
        if kind not in CHANNEL_KINDS:
            raise KeyError(f"Slack cannot read '{kind}' objects")
        found: dict[str, TrackedObject] = {}
        for external_id in dict.fromkeys(i for i in external_ids if i):
            try:
                channel = self._get("conversations.info", channel=external_id)["channel"]
            except ApiNotFound as exc:
                if exc.vendor_code != "channel_not_found":
                    raise
                found[external_id] = TrackedObject(status="deleted", is_done=True)
                continue
            found[external_id] = channel_state(str(channel.get("name") or ""), bool(channel.get("is_archived")))
        return found

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
            result = self._archive_channel({"channel": external_id}, idempotency_key)
        except ApiNotFound as exc:
            if exc.vendor_code != "channel_not_found":
                raise
            return ActionResult(external_id=external_id, data={"status": "deleted"}, created=False, tracked=TrackedObject(status="deleted", is_done=True))
        result.tracked = channel_state("", is_archived=True)
        return result
